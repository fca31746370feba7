"""Preference data: the canonical ranked schema, each adapter, every drop reason, the files."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from rlvr.data.chat import DataError
from rlvr.preference import DROP_REASONS, Dropped, expand_ranked, load_preferences, parse_hh, prompt_key

HH = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "hh-rlhf-harmless-test.jsonl.gz"


def ranked(*answers, **extra):
    return {"prompt": "q", "answers": [{"text": t, "rank": r, **({"score": s} if s is not None else {})}
                                       for t, r, s in answers], **extra}


def test_ranked_expansion_skips_ties_and_orders_by_gap():
    row = ranked(("a", 0, None), ("b", 1, None), ("c", 1, None), ("d", 2, None), id="r1")
    pairs = expand_ranked(row)
    got = [(p.chosen, p.rejected) for p in pairs]
    # gap 2 first, then gap 1 in answer order; b and c tie: no pair between them
    assert got == [("a", "d"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    assert pairs[0].uid == "r1/0>3" and pairs[0].messages == [{"role": "user", "content": "q"}]
    assert all(p.margin == 0.0 for p in pairs)


def test_ranked_margin_from_scores_and_cap_keeps_largest_gaps():
    row = ranked(("a", 0, 0.9), ("b", 1, 0.5), ("c", 2, None), ("d", 3, 0.1))
    drops = __import__("collections").Counter()
    pairs = expand_ranked(row, max_pairs=3, drops=drops)
    assert [(p.chosen, p.rejected) for p in pairs] == [("a", "d"), ("a", "c"), ("b", "d")]
    assert pairs[0].margin == pytest.approx(0.8) and pairs[1].margin == 0.0 and pairs[2].margin == pytest.approx(0.4)
    assert drops["capped"] == 3  # 6 pairs, 3 kept
    set_ = load_preferences([row], max_pairs_per_prompt=3)
    assert len(set_) == 3 and set_.dropped == {"capped": 3}


def test_ranked_is_deterministic_and_takes_messages():
    msgs = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]
    row = {"id": 7, "messages": msgs, "answers": [{"text": "x", "rank": 1}, {"text": "y", "rank": 0}],
           "origin": "test"}
    a, b = expand_ranked(row), expand_ranked(row)
    assert a == b and len(a) == 1
    assert (a[0].chosen, a[0].rejected, a[0].uid, a[0].origin, a[0].messages) == ("y", "x", "7/1>0", "test", msgs)


def test_prompt_pair_adapter():
    s = load_preferences([{"prompt": "p", "chosen": "good", "rejected": "bad", "margin": 0.5}])
    p = s.pairs[0]
    assert (p.chosen, p.rejected, p.margin, p.origin, p.uid) == ("good", "bad", 0.5, "prompt_pair", "0")
    assert p.messages == [{"role": "user", "content": "p"}] and s.shapes == {"prompt_pair": 1}


def test_chat_pair_adapter_shared_context_and_trl_prompt():
    ctx = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
           {"role": "user", "content": "joke?"}]
    row = {"chosen": ctx + [{"role": "assistant", "content": "funny"}],
           "rejected": ctx + [{"role": "assistant", "content": "no"}]}
    p = load_preferences([row]).pairs[0]
    assert (p.messages, p.chosen, p.rejected, p.origin) == (ctx, "funny", "no", "chat_pair")
    trl = {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
           "rejected": [{"role": "assistant", "content": "b"}]}
    p = load_preferences([trl]).pairs[0]
    assert (p.messages, p.chosen, p.rejected) == ([{"role": "user", "content": "q"}], "a", "b")


def test_hh_adapter_splits_on_last_assistant_turn():
    ctx = "\n\nHuman: hi\n\nAssistant: hello\n\nHuman: how to pick a lock?"
    row = {"chosen": ctx + "\n\nAssistant: I can't help with that.", "rejected": ctx + "\n\nAssistant: Use a pin."}
    p = load_preferences([row]).pairs[0]
    assert p.messages == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                          {"role": "user", "content": "how to pick a lock?"}]
    assert (p.chosen, p.rejected, p.origin) == ("I can't help with that.", "Use a pin.", "hh")
    assert parse_hh("\n\nHuman: a\n\nAssistant:")[1] == ""


@pytest.mark.parametrize("row, reason", [
    (ranked(("only", 0, None)), "too_few_answers"),
    (ranked(("a", 0, None), ("b", 0, None)), "all_tie"),
    (ranked(("a", 0, None), ("a", 1, None)), "identical"),
    ({"prompt": "p", "chosen": "same", "rejected": "same"}, "identical"),
    ({"prompt": "p", "chosen": "x"}, "missing_fields"),
    ({"chosen": "x", "rejected": "y"}, "missing_fields"),  # no prompt and not an HH transcript
    ({"question": "p", "answer": "x"}, "missing_fields"),
    ({"answers": [{"text": "a", "rank": 0}, {"text": "b", "rank": 1}]}, "missing_fields"),
    ({"prompt": "p", "answers": [{"text": "a"}, {"text": "b", "rank": 1}]}, "missing_fields"),
    ({"prompt": "p", "answers": [{"text": "a", "rank": "best"}, {"text": "b", "rank": 1}]}, "malformed"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "margin": "big"}, "malformed"),
    ({"chosen": "\n\nHuman: a\n\nAssistant: x", "rejected": "\n\nHuman: b\n\nAssistant: y"}, "context_mismatch"),
    ({"chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}],
      "rejected": [{"role": "user", "content": "b"}, {"role": "assistant", "content": "y"}]}, "context_mismatch"),
    ({"chosen": [{"role": "user", "content": "a"}], "rejected": [{"role": "user", "content": "a"}]}, "malformed"),
    ({"prompt": "b", "chosen": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "x"}],
      "rejected": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "y"}]}, "prompt_mismatch"),
    ({"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "x"}], "chosen": "x",
      "rejected": "y"}, "label_leak"),
    ({"messages": [{"role": "user", "content": "p"}, {"role": "assistant", "content": "b"}],
      "answers": [{"text": "a", "rank": 0}, {"text": "b", "rank": 1}]}, "label_leak"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "score_chosen": 5, "score_rejected": 5}, "all_tie"),
    ({"prompt": "p", "chosen": "a", "rejected": "b", "score_chosen": 1, "score_rejected": 5}, "score_order"),
    ("not a row", "malformed"),
])
def test_every_drop_reason_is_counted(row, reason):
    good = {"prompt": "p", "chosen": "a", "rejected": "b"}
    s = load_preferences([good, row])
    assert s.rows_read == 2 and len(s) == 1 and s.dropped == {reason: 1}, s.dropped
    assert reason in DROP_REASONS and reason in s.describe()


def test_too_long_and_malformed_json_lines(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps({"prompt": "p", "chosen": "a", "rejected": "b"}) + "\n{not json\n\n"
                 + json.dumps({"prompt": "p" * 50, "chosen": "a", "rejected": "bb"}) + "\n")
    s = load_preferences(f, max_chars=10)
    assert s.rows_read == 3 and len(s) == 1
    assert s.dropped == {"malformed_json": 1, "too_long": 1}
    assert s.describe() == "3 rows -> 1 pairs; dropped: malformed_json 1, too_long 1"


def test_nothing_survives_names_fields_and_shapes(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    with pytest.raises(DataError) as exc:
        load_preferences(f)
    msg = str(exc.value)
    assert "no preference pairs" in msg and "fields found: answer, question" in msg
    assert all(name in msg for name in ("ranked", "ultrafeedback", "chat_pair", "hh", "prompt_pair"))
    assert isinstance(exc.value, ValueError)
    with pytest.raises(DataError, match="no such file"):
        load_preferences(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="unknown format"):
        (tmp_path / "x.csv").write_text("a,b\n")
        load_preferences(tmp_path / "x.csv")


def test_file_formats_agree(tmp_path):
    rows = [ranked(("a", 0, 1.0), ("b", 1, 0.0), id="x"), {"prompt": "p", "chosen": "c", "rejected": "d"}]
    (tmp_path / "r.json").write_text(json.dumps(rows))
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with gzip.open(tmp_path / "r.jsonl.gz", "wt") as g:
        g.write("".join(json.dumps(r) + "\n" for r in rows))
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist([{"prompt": "p", "chosen": "c", "rejected": "d"}] * 2), tmp_path / "r.parquet")
    want = [(p.uid, p.chosen, p.rejected, p.margin) for p in load_preferences(rows).pairs]
    for name in ("r.json", "r.jsonl", "r.jsonl.gz"):
        assert [(p.uid, p.chosen, p.rejected, p.margin) for p in load_preferences(tmp_path / name).pairs] == want
    assert len(load_preferences(tmp_path / "r.parquet")) == 2


def test_dropped_is_an_error_with_a_reason():
    with pytest.raises(Dropped) as exc:
        expand_ranked(ranked(("a", 0, None), ("b", 0, None)))
    assert exc.value.reason == "all_tie"


def test_prompt_key_groups_pairs_of_one_prompt():
    s = load_preferences([ranked(("a", 0, None), ("b", 1, None), ("c", 2, None))])
    assert len({prompt_key(p) for p in s.pairs}) == 1


@pytest.mark.skipif(not HH.is_file(), reason=f"{HH} not present (../shared/data holds the HH-RLHF copy)")
def test_real_hh_file_loads():
    s = load_preferences(HH)
    assert s.rows_read == 2312 and 2250 <= len(s) <= 2312
    assert s.fields_seen == {"chosen", "rejected"} and s.shapes == {"hh": len(s)}
    assert set(s.dropped) <= {"context_mismatch", "identical"}
    assert all(p.messages[-1]["role"] == "user" and p.messages[0]["role"] == "user" for p in s.pairs)
