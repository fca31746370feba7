"""The built-in preference task: determinism, the held-out split, the true rule, the bias knob, the verifier."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from rlvr.data.preference_task import (PreferenceTask, Style, compose, main, prompt_keys, ranked_rows, spec_of)
from verifiers import get_verifier
from verifiers.preference import (failed_dimensions, is_clean, is_concise, is_correct, is_polite, true_preferred,
                                  true_score)

SPEC = spec_of(3, 4)


def test_rows_are_deterministic_for_a_seed_and_differ_across_seeds():
    assert ranked_rows(20, seed=3) == ranked_rows(20, seed=3)
    assert ranked_rows(20, seed=3) != ranked_rows(20, seed=4)


def test_rows_have_the_canonical_shape_and_ranks_follow_the_true_score():
    for row in ranked_rows(50, seed=0, answers_per_prompt=5):
        assert row["messages"][0]["role"] == "user" and len(row["answers"]) == 5
        texts = [a["text"] for a in row["answers"]]
        assert len(set(texts)) == 5
        by_rank = sorted(row["answers"], key=lambda a: a["rank"])
        scores = [true_score(a["text"], row["reference"]) for a in by_rank]
        assert scores == sorted(scores, reverse=True)
        assert all(a["true_score"] == true_score(a["text"], row["reference"]) for a in row["answers"])
        assert len({a["rank"] for a in row["answers"]}) > 1  # never all tied


def test_held_out_prompts_never_appear_in_training_rows_or_stream():
    train, held = set(prompt_keys("train")), set(prompt_keys("eval"))
    assert len(train) == 800 and len(held) == 200 and not train & held
    held_text = {PreferenceTask("eval", 200)[i].messages[0]["content"] for i in range(200)}
    for seed in (0, 1):
        rows = ranked_rows(900, seed=seed)
        assert not {r["messages"][0]["content"] for r in rows} & held_text
        stream = PreferenceTask("train", 2000, seed)
        assert not {stream[i].messages[0]["content"] for i in range(2000)} & held_text
    eval_rows = ranked_rows(50, seed=0, split="eval")
    assert {r["messages"][0]["content"] for r in eval_rows} <= held_text


@pytest.mark.parametrize("text, failed", [
    ("Hi! 3+4 is 7.", []),
    ("Hello, 3+4 is 7.", []),
    ("3+4 is 7.", ["polite"]),
    ("Hi! 3+4 is 8.", ["correct"]),
    ("Hi! As an AI, 3+4 is 7.", ["clean", "concise"]),
    ("Hi! 3+4 is 7. Hope this helps!", ["concise"]),
    ("History! 3+4 is 7.", ["polite"]),
    ("", ["correct", "polite"]),
])
def test_the_rule_on_hand_made_answers(text, failed):
    assert failed_dimensions(text, SPEC) == failed
    assert true_preferred(text, SPEC) == (not failed)


def test_dimension_checks_and_score():
    assert is_correct("so it is 7", SPEC) and not is_correct("7 or 8", SPEC) and not is_correct("seven", SPEC)
    assert not is_clean("AS AN AI I think 7", SPEC) and is_clean("Hi! 7", SPEC)
    assert is_polite("  Sure! 7", SPEC) and not is_polite("Sure 7", SPEC)
    assert is_concise("x" * 20, SPEC) and not is_concise("x" * 21, SPEC)
    assert true_score("Hi! 3+4 is 7.", SPEC) == 5.0
    long1, long2 = "Hi! 3+4 is 7. Math is fun!", "Hi! 3+4 is 7. Math is fun! Have a nice day!"
    assert true_score(long1, SPEC) == pytest.approx(4.0 - 0.02 * (len(long1) - 20))
    assert true_score(long2, SPEC) < true_score(long1, SPEC)  # rambling is worse the longer it gets


def test_length_bias_ranks_longest_first_at_the_given_rate():
    rows = ranked_rows(400, seed=0, length_bias=0.5)
    biased = [r for r in rows if r["origin"] == "preference_task/length_biased"]
    assert 150 < len(biased) < 250
    for row in biased:
        best = min(row["answers"], key=lambda a: a["rank"])
        assert len(best["text"]) == max(len(a["text"]) for a in row["answers"])
    assert all(r["origin"] == "preference_task" for r in ranked_rows(50, seed=0))
    assert all(r["origin"].endswith("length_biased") for r in ranked_rows(20, seed=0, length_bias=1.0))


def test_rows_load_through_the_preference_schema():
    from rlvr.preference import load_preferences

    prefs = load_preferences(ranked_rows(100, seed=0))
    assert prefs.rows_read == 100 and not prefs.dropped and len(prefs.pairs) > 300
    pair = prefs.pairs[0]
    spec = ranked_rows(1, seed=0)[0]["reference"]
    assert true_score(pair.chosen, spec) > true_score(pair.rejected, spec)


def test_sft_solutions_are_mixed_and_held_out_ones_are_true_preferred():
    verifier = get_verifier("preference_rule")
    train = PreferenceTask("train", 3000, seed=0)
    rate = sum(verifier.verify(completion=train[i].solution, reference=train[i].reference).reward
               for i in range(3000)) / 3000
    assert 0.25 < rate < 0.55
    held = PreferenceTask("eval", 50)
    assert all(true_preferred(held[i].solution, held[i].reference) for i in range(50))
    assert train[7] == PreferenceTask("train", 3000, seed=0)[7] and train[7].verifier == "preference_rule"


def test_verifier_reasons():
    v = get_verifier("preference_rule")
    assert v.verify(completion="Hi! 3+4 is 7.", reference=SPEC).reason == "correct"
    verdict = v.verify(completion="As an AI, 3+4 is 9. Hope this helps!", reference=SPEC)
    assert (verdict.reward, verdict.reason) == (0.0, "wrong_answer")
    assert verdict.details["failed"] == ["correct", "clean", "polite", "concise"]
    assert v.verify(completion="3+4 is 7.", reference=SPEC).reason == "impolite"
    assert v.verify(completion="Hi! 3+4 is 7. Math is fun!", reference=SPEC).reason == "too_long"
    assert v.verify(completion="Hi! As an AI, 7", reference=SPEC).reason == "banned_phrase"
    assert v.verify(completion="Hi! 3+4 is 7.", reference=json.dumps(SPEC)).reason == "correct"
    assert v.verify(completion="Hi! 7", reference={"max_chars": 3}).reason == "bad_reference"
    assert v.verify(completion="Hi! 7", reference="not json").reason == "bad_reference"
    assert v.verify(completion=None, reference=SPEC).reason == "bad_input"


def test_compose_and_bad_arguments():
    assert compose(3, 4, Style("Hi! ", True, 1, (" Math is fun!",))) == "Hi! As an AI, 3+4 is 8. Math is fun!"
    with pytest.raises(ValueError, match="at least 2 answers"):
        ranked_rows(3, 0, answers_per_prompt=1)
    with pytest.raises(ValueError, match="length_bias"):
        ranked_rows(3, 0, length_bias=1.5)
    with pytest.raises(ValueError, match="eval_size=500"):
        PreferenceTask("eval", 500)


def test_cli_dumps_rows(tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    assert main(["--out", str(out), "--n", "7", "--length-bias", "0.5"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and rows == ranked_rows(7, 0, length_bias=0.5)
    assert main(["--out", str(out), "--n", "5", "--prompts", "--split", "eval"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["verifier"] == "preference_rule" and rows[0]["reference"]["answer"] >= 0
    assert main(["--out", str(out), "--n", "3", "--answers", "1"]) == 2
    assert "at least 2 answers" in capsys.readouterr().err


def test_data_source_is_registered_and_builds():
    from rlvr.config import DataConfig
    from rlvr.data import build_prompt_sets

    train, held = build_prompt_sets(DataConfig(source="preference", verifier="preference_rule", eval_size=16))
    assert len(held) == 16 and len(train) == 100_000
    assert Counter(p.verifier for p in (train[i] for i in range(10))) == {"preference_rule": 10}
