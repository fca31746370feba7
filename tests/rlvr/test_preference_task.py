"""The built-in preference task: determinism, the held-out split, the true rule, the bias knob, the verifier."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from rlvr.data.preference_task import (DISCLAIMER, EVASIONS, FACTS, FILLERS, GREETINGS, PreferenceTask, Style, compose,
                                       main, prompt_keys, ranked_rows, spec_of)
from verifiers import get_verifier
from verifiers.preference import (failed_dimensions, is_clean, is_concise, is_correct, is_polite, true_preferred,
                                  true_score)

SPEC = spec_of(0)  # What color is the sky? blue (budget 18 + 3 = 21 characters)


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
    assert len(train) == 300 and len(held) == 100 and not train & held
    held_text = {PreferenceTask("eval", 100)[i].messages[0]["content"] for i in range(100)}
    for seed in (0, 1):
        rows = ranked_rows(400, seed=seed)
        assert not {r["messages"][0]["content"] for r in rows} & held_text
        stream = PreferenceTask("train", 2000, seed)
        assert not {stream[i].messages[0]["content"] for i in range(2000)} & held_text
    eval_rows = ranked_rows(50, seed=0, split="eval")
    assert {r["messages"][0]["content"] for r in eval_rows} <= held_text


@pytest.mark.parametrize("text, failed", [
    ("Hi! It is blue.", []),
    ("Hello, it is BLUE", []),
    ("It is blue.", ["polite"]),
    ("Hi! It is green.", ["correct"]),
    ("Hi! Blue or green.", ["correct"]),
    ("Hi! It is blueish.", ["correct"]),
    ("Hi! As an AI, it is blue.", ["clean", "concise"]),
    ("Hi! It is blue. Hope this helps!", ["concise"]),
    ("History! It is blue.", ["polite"]),
    ("", ["correct", "polite"]),
])
def test_the_rule_on_hand_made_answers(text, failed):
    assert failed_dimensions(text, SPEC) == failed
    assert true_preferred(text, SPEC) == (not failed)


def test_dimension_checks_and_score():
    assert is_correct("so it is blue", SPEC) and not is_correct("blue or red", SPEC) and not is_correct("sky", SPEC)
    assert not is_clean("AS AN AI I think blue", SPEC) and is_clean("Hi! blue", SPEC)
    assert is_polite("  Sure! blue", SPEC) and not is_polite("Sure blue", SPEC)
    assert SPEC["max_chars"] == 21 and is_concise("x" * 21, SPEC) and not is_concise("x" * 22, SPEC)
    assert true_score("Hi! It is blue.", SPEC) == 5.0
    long1, long2 = "Hi! It is blue. Glad I could help!", "Hi! It is blue. Glad I could help! Have a nice day!"
    assert true_score(long1, SPEC) == pytest.approx(4.0 - 0.02 * (len(long1) - 21))
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


def test_answers_are_within_budget_exactly_when_they_have_no_filler():
    for fact in range(len(FACTS)):
        spec = spec_of(fact)
        for greeting in ("",) + GREETINGS:
            assert is_concise(compose(fact, Style(greeting)), spec)
            for evasion in range(-1, len(EVASIONS)):  # the budget does not depend on answering
                assert is_concise(compose(fact, Style(greeting, evasion=evasion)), spec)
                assert not is_concise(compose(fact, Style(greeting, evasion=evasion,
                                                          fillers=(min(FILLERS, key=len),))), spec)
                assert is_correct(compose(fact, Style(greeting, evasion=evasion)), spec) == (evasion < 0)
            assert not is_correct(f"{greeting}It is {FACTS[fact][2][0]}.", spec)  # a wrong fact fails too
    surface = " ".join(FILLERS + GREETINGS + EVASIONS + (DISCLAIMER, "it is")).lower()
    surface = surface.replace("!", " ").replace(",", " ").replace(".", " ").replace("?", " ")
    assert not set(surface.split()) & {w.lower() for _, a, wrong in FACTS for w in (a, *wrong)}


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
    assert v.verify(completion="Hi! It is blue.", reference=SPEC).reason == "correct"
    verdict = v.verify(completion="As an AI, it is red. Hope this helps!", reference=SPEC)
    assert (verdict.reward, verdict.reason) == (0.0, "wrong_answer")
    assert verdict.details["failed"] == ["correct", "clean", "polite", "concise"]
    assert v.verify(completion="It is blue.", reference=SPEC).reason == "impolite"
    assert v.verify(completion="Hi! It is blue. Glad I could help!", reference=SPEC).reason == "too_long"
    assert v.verify(completion="Hi! As an AI, blue", reference=SPEC).reason == "banned_phrase"
    assert v.verify(completion="Hi! It is blue.", reference=json.dumps(SPEC)).reason == "correct"
    assert v.verify(completion="Hi! blue", reference={"max_chars": 3}).reason == "bad_reference"
    assert v.verify(completion="Hi! blue", reference={"answer": "blue", "wrong": "red"}).reason == "bad_reference"
    assert v.verify(completion="Hi! blue", reference="not json").reason == "bad_reference"
    assert v.verify(completion=None, reference=SPEC).reason == "bad_input"


def test_compose_and_bad_arguments():
    assert compose(0, Style("Hi! ", True, 1, (" Glad I could help!",))) == "Hi! As an AI, no idea. Glad I could help!"
    assert compose(0, Style()) == "It is blue." and compose(0, Style(disclaimer=True)) == "As an AI, it is blue."
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
    assert rows[0]["verifier"] == "preference_rule" and rows[0]["reference"]["answer"]
    assert main(["--out", str(out), "--n", "3", "--answers", "1"]) == 2
    assert "at least 2 answers" in capsys.readouterr().err


def test_data_source_is_registered_and_builds():
    from rlvr.config import DataConfig
    from rlvr.data import build_prompt_sets

    train, held = build_prompt_sets(DataConfig(source="preference", verifier="preference_rule", eval_size=16))
    assert len(held) == 16 and len(train) == 100_000
    assert Counter(p.verifier for p in (train[i] for i in range(10))) == {"preference_rule": 10}
