"""The `judge_verdict` verifier on hand-written judgements: every reason, both reference forms."""
from __future__ import annotations

import pytest

from tests.verifiers.growth import assert_linear
from verifiers import Verdict, available_verifiers, get_verifier
from verifiers.judge import parse_judgement, preferred_letter

GOOD = "<rubric>correct,clean,polite,concise</rubric><eval>A:1011=4 B:1110=3</eval><verdict>A</verdict>"


def judge(completion, reference="A") -> Verdict:
    verdict = get_verifier("judge_verdict").verify(completion=completion, reference=reference)
    assert isinstance(verdict, Verdict)
    return verdict


def test_registered():
    assert "judge_verdict" in available_verifiers()


@pytest.mark.parametrize("completion, reference, reason, reward", [
    (GOOD, "A", "correct", 1.0),
    (GOOD, {"preferred": "A", "order": "chosen_first"}, "correct", 1.0),
    (GOOD, "b", "wrong_verdict", 0.0),
    (GOOD, {"preferred": "B", "order": "chosen_second"}, "wrong_verdict", 0.0),
    # free-form rubric and eval (a user's task), spaces and case in the verdict
    ("<rubric>accuracy; tone</rubric>\n<eval>A gets the fact wrong. B is right and kind.</eval>\n"
     "<verdict> b </verdict>", "B", "correct", 1.0),
    ("<rubric>correct,clean,polite,concise</rubric><eval>A:1011=4 B:1110=3</eval>", "A", "no_verdict", 0.0),
    ("<rubric>x</rubric><eval>A:1 B:0</eval><verdict>A", "A", "no_verdict", 0.0),  # not closed
    ("<rubric>x</rubric><eval>A:1 B:1</eval><verdict>tie</verdict>", "A", "no_verdict", 0.0),
    ("<rubric>x</rubric><eval>A:1 B:0</eval><verdict>C</verdict>", "A", "no_verdict", 0.0),
    ("", "A", "no_verdict", 0.0),
    ("<verdict>A</verdict>", "A", "missing_blocks", 0.0),  # a bare letter earns nothing
    ("<eval>A:1 B:0</eval><verdict>A</verdict>", "A", "missing_blocks", 0.0),  # no rubric
    ("<rubric>x</rubric><verdict>A</verdict>", "A", "missing_blocks", 0.0),  # no eval
    ("<rubric> </rubric><eval>A:1 B:0</eval><verdict>A</verdict>", "A", "missing_blocks", 0.0),  # empty rubric
    ("<rubric>x</rubric><eval>A is fine</eval><verdict>A</verdict>", "A", "missing_blocks", 0.0),  # B not evaluated
    # out of order: a judge that decides (or evaluates) before it states the rubric earns nothing
    ("<eval>A:1 B:0</eval><rubric>x</rubric><verdict>A</verdict>", "A", "blocks_out_of_order", 0.0),
    ("<verdict>A</verdict><rubric>x</rubric><eval>A:1 B:0</eval>", "A", "blocks_out_of_order", 0.0),
    ("<rubric>x</rubric><verdict>A</verdict><eval>A:1 B:0</eval>", "A", "blocks_out_of_order", 0.0),
    ("<verdict>B</verdict><rubric>x</rubric><eval>A:1 B:0</eval><verdict>A</verdict>", "A", "blocks_out_of_order",
     0.0),
    (GOOD, "C", "bad_reference", 0.0),
    (GOOD, None, "bad_reference", 0.0),
    (GOOD, {"order": "chosen_first"}, "bad_reference", 0.0),
    (None, "A", "bad_input", 0.0),
    (42, "A", "bad_input", 0.0),
])
def test_reasons(completion, reference, reason, reward):
    verdict = judge(completion, reference)
    assert (verdict.reason, verdict.reward) == (reason, reward), verdict


def test_the_last_verdict_counts():
    text = GOOD.replace("<verdict>A</verdict>", "<verdict>A</verdict> on reflection <verdict>B</verdict>")
    assert judge(text, "B").reason == "correct"
    assert judge(text, "A").details["verdict"] == "B"


@pytest.mark.parametrize("completion, problem", [
    ("<eval>A:1 B:0</eval><rubric>x</rubric><verdict>A</verdict>", "the eval block comes before the rubric block"),
    ("<verdict>A</verdict><rubric>x</rubric><eval>A:1 B:0</eval>", "the verdict block comes before the rubric block"),
    ("<rubric>x</rubric><verdict>A</verdict><eval>A:1 B:0</eval>", "the verdict block comes before the eval block"),
])
def test_blocks_out_of_order_name_the_order(completion, problem):
    verdict = judge(completion)
    assert verdict.details["problem"] == f"{problem} (the order is rubric, eval, verdict)"
    from verifiers.judge import verdict_outcome

    assert verdict_outcome(completion) is None  # a served judge's out-of-order answer is unparsed, too
    assert verdict_outcome(GOOD) == 1.0


def test_parse_and_reference_helpers():
    j = parse_judgement(GOOD)
    assert (j.rubric, j.eval, j.verdict) == ("correct,clean,polite,concise", "A:1011=4 B:1110=3", "A")
    assert parse_judgement("no blocks").verdict is None
    assert preferred_letter(" a ") == "A" and preferred_letter({"preferred": "B"}) == "B"
    with pytest.raises(ValueError):
        preferred_letter("AB")


def test_linear_in_the_completion_length():
    assert_linear(lambda text: judge(text), lambda n: "<rubric><eval>A B " * n + "<verdict>", 2000)
