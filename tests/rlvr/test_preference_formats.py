"""Published preference-row shapes, written by hand from each dataset's documented schema (never
downloaded): UltraFeedback-binarized and its variants, and a guard that no adapter ever puts
the chosen or rejected answer into the context (the label must not be readable from the prompt)."""
from __future__ import annotations

import collections
import json

import pytest

from rlvr.preference import ADAPTERS, Dropped, Pair, load_preferences

PROMPT = "Write a haiku about autumn leaves."
CHOSEN = "Crimson leaves drift down,\nwhispering to the cold earth:\nsummer's last goodbye."
REJECTED = "Autumn is the season that comes after summer and before winter."
USER = {"role": "user", "content": PROMPT}

# HuggingFaceH4/ultrafeedback_binarized, splits train_prefs / test_prefs: one row as published.
ULTRAFEEDBACK = {
    "prompt": PROMPT,
    "prompt_id": "c1952c78349c65bd81f5dcf5561dbd54f90e9a5a344190bbba66dfae2cca0e84",
    "chosen": [{"content": PROMPT, "role": "user"}, {"content": CHOSEN, "role": "assistant"}],
    "rejected": [{"content": PROMPT, "role": "user"}, {"content": REJECTED, "role": "assistant"}],
    "messages": [{"content": PROMPT, "role": "user"}, {"content": CHOSEN, "role": "assistant"}],
    "score_chosen": 8.0,
    "score_rejected": 5.0,
}

# A multi-turn conversation pair: the lists share every turn but the last; `prompt` is the last user turn.
TURNS = [{"content": PROMPT, "role": "user"}, {"content": "Leaves of red and gold...", "role": "assistant"},
         {"content": "And now one about winter?", "role": "user"}]
WINTER_CHOSEN = "Silent snow settles,\nthe pond holds its breath in ice:\nthe year sleeps, then wakes."
WINTER_REJECTED = "Winter is cold."
MULTI_TURN = {
    "prompt": "And now one about winter?",
    "prompt_id": "953d0e38ed8abc4ba0f84877ffc0e861c6a4f28858e758531df1572bbe6b97b3",
    "chosen": TURNS + [{"content": WINTER_CHOSEN, "role": "assistant"}],
    "rejected": TURNS + [{"content": WINTER_REJECTED, "role": "assistant"}],
    "messages": TURNS + [{"content": WINTER_CHOSEN, "role": "assistant"}],
    "score_chosen": 9.0,
    "score_rejected": 9.0 - 6.5,
}


def without(row, *keys):
    return {k: v for k, v in row.items() if k not in keys}


def with_(row, **fields):
    return {**row, **fields}


@pytest.mark.parametrize("row, margin, shape", [
    (ULTRAFEEDBACK, 3.0, "ultrafeedback"),
    (without(ULTRAFEEDBACK, "messages"), 3.0, "ultrafeedback"),
    (without(ULTRAFEEDBACK, "prompt"), 3.0, "ultrafeedback"),
    (without(ULTRAFEEDBACK, "prompt", "messages"), 3.0, "ultrafeedback"),
    (without(ULTRAFEEDBACK, "prompt_id", "score_chosen", "score_rejected"), 0.0, "ultrafeedback"),
    (without(ULTRAFEEDBACK, "prompt_id", "score_chosen", "score_rejected", "messages"), 0.0, "ultrafeedback"),
    (with_(ULTRAFEEDBACK, prompt=PROMPT + "\n"), 3.0, "ultrafeedback"),  # whitespace is no disagreement
    # no UltraFeedback field left: TRL's implicit-prompt shape, read by chat_pair to the same context
    (without(ULTRAFEEDBACK, "prompt", "prompt_id", "score_chosen", "score_rejected"), 0.0, "chat_pair"),
    (without(ULTRAFEEDBACK, "prompt", "prompt_id", "score_chosen", "score_rejected", "messages"), 0.0, "chat_pair"),
])
def test_ultrafeedback_context_is_the_user_prompt_alone(row, margin, shape):
    s = load_preferences([row])
    assert s.pairs == [Pair(uid="0", messages=[USER], chosen=CHOSEN, rejected=REJECTED, margin=margin, origin=shape)]
    assert s.shapes == {shape: 1} and not s.dropped


@pytest.mark.parametrize("row", [MULTI_TURN, without(MULTI_TURN, "messages"), without(MULTI_TURN, "prompt"),
                                 without(MULTI_TURN, "prompt_id", "score_chosen", "score_rejected")])
def test_multi_turn_context_is_the_shared_prefix(row):
    pair = load_preferences([row]).pairs[0]
    assert pair.messages == TURNS and (pair.chosen, pair.rejected) == (WINTER_CHOSEN, WINTER_REJECTED)
    assert pair.origin == "ultrafeedback" and pair.margin == (6.5 if "score_chosen" in row else 0.0)


def test_messages_that_is_a_real_context_is_kept():
    row = with_(ULTRAFEEDBACK, messages=[USER])  # not a copy of an answer: the lists' opening, so no doubling
    assert load_preferences([row]).pairs[0].messages == [USER]
    system = {"role": "system", "content": "You are a poet."}
    row = {"prompt": [system, USER], "chosen": [{"role": "assistant", "content": CHOSEN}],
           "rejected": [{"role": "assistant", "content": REJECTED}], "score_chosen": 2, "score_rejected": 1}
    pair = load_preferences([row]).pairs[0]  # TRL's explicit prompt: the lists continue it
    assert (pair.messages, pair.margin, pair.origin) == ([system, USER], 1.0, "chat_pair")


@pytest.mark.parametrize("row, reason", [
    (with_(ULTRAFEEDBACK, prompt="Write a limerick about spring."), "prompt_mismatch"),
    (without(with_(ULTRAFEEDBACK, prompt="Write a limerick."), "messages", "prompt_id"), "prompt_mismatch"),
    (with_(MULTI_TURN, prompt=PROMPT), "prompt_mismatch"),  # the first user turn, not the one answered
    (with_(ULTRAFEEDBACK, score_rejected=8.0), "all_tie"),  # tied scores make no pair, as tied ranks
    (with_(ULTRAFEEDBACK, score_chosen=4.0), "score_order"),
    (with_(ULTRAFEEDBACK, score_chosen="8"), "malformed"),
    (with_(ULTRAFEEDBACK, rejected=[{"content": "Another prompt", "role": "user"},
                                    {"content": REJECTED, "role": "assistant"}]), "context_mismatch"),
])
def test_ultrafeedback_rows_that_disagree_are_dropped_and_counted(row, reason):
    s = load_preferences([ULTRAFEEDBACK, row])
    assert len(s) == 1 and s.dropped == {reason: 1} and s.shapes == {"ultrafeedback": 1}, s.dropped


def test_load_ultrafeedback_jsonl(tmp_path):
    rows = [ULTRAFEEDBACK, without(ULTRAFEEDBACK, "messages", "prompt_id"), MULTI_TURN,
            with_(ULTRAFEEDBACK, score_rejected=8.0), with_(ULTRAFEEDBACK, prompt="Something else")]
    f = tmp_path / "ultrafeedback_binarized.test_prefs.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = load_preferences(f)
    assert s.pairs == [
        Pair(uid="0", messages=[USER], chosen=CHOSEN, rejected=REJECTED, margin=3.0, origin="ultrafeedback"),
        Pair(uid="1", messages=[USER], chosen=CHOSEN, rejected=REJECTED, margin=3.0, origin="ultrafeedback"),
        Pair(uid="2", messages=TURNS, chosen=WINTER_CHOSEN, rejected=WINTER_REJECTED, margin=6.5,
             origin="ultrafeedback"),
    ]
    assert s.shapes == {"ultrafeedback": 3} and s.dropped == {"all_tie": 1, "prompt_mismatch": 1}
    assert s.describe() == "5 rows -> 3 pairs; dropped: all_tie 1, prompt_mismatch 1"


def test_scores_are_margins_for_every_pair_shape():
    row = {"prompt": "p", "chosen": "good", "rejected": "bad", "score_chosen": 7, "score_rejected": 2}
    assert load_preferences([row]).pairs[0].margin == 5.0
    assert load_preferences([with_(row, margin=0.5)]).pairs[0].margin == 0.5  # an explicit margin wins
    assert load_preferences([with_(row, score_rejected=float("nan"))]).pairs[0].margin == 0.0  # unknown


HH_CONTEXT = "\n\nHuman: Can you recommend a poem?\n\nAssistant: Which season?\n\nHuman: Autumn."
# One or more rows of every shape, each with answers found nowhere else in the row but in their own turn.
EVERY_SHAPE = [
    {"id": "r", "prompt": PROMPT, "answers": [{"text": CHOSEN, "rank": 0, "score": 0.9},
                                              {"text": REJECTED, "rank": 1, "score": 0.1},
                                              {"text": WINTER_REJECTED, "rank": 2}]},
    {"messages": TURNS, "answers": [{"text": WINTER_CHOSEN, "rank": 0}, {"text": WINTER_REJECTED, "rank": 1}]},
    ULTRAFEEDBACK, without(ULTRAFEEDBACK, "messages"), without(ULTRAFEEDBACK, "prompt"), MULTI_TURN,
    without(MULTI_TURN, "prompt"),
    {"chosen": ULTRAFEEDBACK["chosen"], "rejected": ULTRAFEEDBACK["rejected"]},  # TRL implicit prompt
    {"chosen": ULTRAFEEDBACK["chosen"], "rejected": ULTRAFEEDBACK["rejected"], "messages": ULTRAFEEDBACK["chosen"]},
    {"chosen": ULTRAFEEDBACK["chosen"], "rejected": ULTRAFEEDBACK["rejected"], "messages": ULTRAFEEDBACK["rejected"]},
    {"prompt": [USER], "chosen": [{"role": "assistant", "content": CHOSEN}],  # TRL explicit prompt
     "rejected": [{"role": "assistant", "content": REJECTED}]},
    {"chosen": HH_CONTEXT + "\n\nAssistant: " + CHOSEN, "rejected": HH_CONTEXT + "\n\nAssistant: " + REJECTED},
    {"prompt": PROMPT, "chosen": CHOSEN, "rejected": REJECTED},
    {"prompt": PROMPT, "messages": ULTRAFEEDBACK["chosen"], "chosen": CHOSEN, "rejected": REJECTED},
    {"messages": ULTRAFEEDBACK["rejected"], "chosen": CHOSEN, "rejected": REJECTED},  # only an answer's transcript
    {"messages": ULTRAFEEDBACK["chosen"], "answers": [{"text": CHOSEN, "rank": 0}, {"text": REJECTED, "rank": 1}]},
]


def test_no_adapter_puts_an_answer_into_the_context():
    """Every adapter that accepts a row (not only the first) is run on it: none may leak the label."""
    converted, drops = collections.Counter(), collections.Counter()
    for index, row in enumerate(EVERY_SHAPE):
        for adapter in ADAPTERS.values():
            if not adapter.detect(row):
                continue
            try:
                pairs = adapter.convert(row, str(index), 16, drops)
            except Dropped as exc:
                drops[exc.reason] += 1
                continue
            converted[adapter.name] += len(pairs)
            for pair in pairs:
                for m in pair.messages:
                    assert pair.chosen not in m["content"] and pair.rejected not in m["content"], (adapter.name, row)
    assert set(converted) == set(ADAPTERS), converted  # the guard covered every adapter
    # the two rows whose only context is an answer's transcript; other drops are adapters refusing a foreign shape
    assert drops["label_leak"] == 2
    s = load_preferences(EVERY_SHAPE)
    assert s.dropped == {"label_leak": 2} and set(s.shapes) == set(ADAPTERS)


def test_a_named_format_takes_only_the_rows_it_fits_and_an_unknown_one_is_refused(tmp_path):
    import json

    import pytest

    from rlvr.data.chat import DataError
    from rlvr.preference import load_preferences

    rows = [{"prompt": "2+2?", "chosen": "4", "rejected": "5"},
            {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert set(load_preferences(path).shapes) == {"prompt_pair", "hh"}
    only_hh = load_preferences(path, format="hh")
    assert dict(only_hh.shapes) == {"hh": 1} and only_hh.dropped["missing_fields"] == 1
    with pytest.raises(DataError, match="unknown preference format 'squad'"):
        load_preferences(path, format="squad")
