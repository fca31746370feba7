"""The small built-in verifiers: exact, choice, format."""
from __future__ import annotations

import pytest

from tests.verifiers.growth import assert_linear
from verifiers import OptionsError, Verdict, get_verifier
from verifiers.simple import extract_answer, last_boxed, normalize_text


def check(name: str, completion, reference, **options) -> Verdict:
    verdict = get_verifier(name, **options).verify(completion=completion, reference=reference)
    assert isinstance(verdict, Verdict)
    return verdict


# -- helpers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("  Hello   World  ", "hello world"),
        ("$42$.", "42"),
        ("\\(x+1\\)", "x+1"),
        ("\\text{Paris}", "paris"),
        ("$\\text{New York}$.", "new york"),
        ("\\boxed{7}", "7"),
        ("3.", "3"),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_last_boxed_takes_the_last_complete_one_and_handles_nesting():
    assert last_boxed("\\boxed{3} ... corrected: \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{5} then \\boxed{unclosed") == "5"
    assert last_boxed("no box here") is None
    assert last_boxed("\\fbox{x}") == "x"


def test_extract_answer_modes():
    text = "<answer>A</answer> and \\boxed{B}"
    assert extract_answer(text, "auto") == "A"
    assert extract_answer(text, "boxed") == "B"
    assert extract_answer("plain", "auto") == "plain"
    assert extract_answer("x = 1\n#### 72", "regex", r"####\s*(\S+)") == "72"
    assert extract_answer("nothing", "answer_tag") is None


# -- exact --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion, reference, reason",
    [
        ("<answer> Paris. </answer>", "paris", "correct"),
        ("so the capital is \\boxed{\\text{Paris}}", "Paris", "correct"),
        ("  New\n York ", "new york", "correct"),
        ("$42$.", "42", "correct"),
        ("\\boxed{17}", 17, "correct"),
        ("London", "Paris", "wrong_answer"),
        ("<answer>  </answer>", "Paris", "no_answer"),
        ("", "Paris", "no_answer"),
        ("ans", ["x", "ANS"], "correct"),
        ("Paris", None, "bad_reference"),
    ],
)
def test_exact(completion, reference, reason):
    verdict = check("exact", completion, reference)
    assert verdict.reason == reason
    assert verdict.reward == (1.0 if reason == "correct" else 0.0)


def test_exact_options():
    assert check("exact", "Paris", "paris", case_sensitive=True).reason == "wrong_answer"
    assert check("exact", "Paris", "Paris", case_sensitive="true").reason == "correct"
    assert check("exact", "steps\n#### 72", "72", pattern=r"####\s*(\S+)").reason == "correct"
    assert check("exact", "steps, no marker", "72", pattern=r"####\s*(\S+)").reason == "no_answer"
    assert check("exact", "<answer>A</answer>", "<answer>a</answer>", extract="none").reason == "correct"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"extract": "magic"}, "extract must be one of"),
        ({"extract": "regex"}, "needs a pattern"),
        ({"pattern": "(unclosed"}, "not a valid regex"),
        ({"nope": 1}, "valid options"),
    ],
)
def test_exact_bad_options_are_clear_errors(options, message):
    with pytest.raises(OptionsError, match=message):
        get_verifier("exact", **options)


# -- choice -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion",
    [
        "The answer is (C)",
        "**C**",
        "so \\boxed{C}",
        "Answer: c)",
        "$\\text{(C)}$",
        "The correct option is C.",
        "Final Answer: (c)",
        "<answer>C</answer>",
        "answer is: **C**",
        "\\boxed{\\text{C}}",
        "Let me think.\n(A) is too small, (B) too.\n\nC",
        "The answer is C, and A is wrong.",
        "\\boxed{C) 42}",
        "Answer: the correct one is C",
    ],
)
def test_choice_finds_the_letter(completion):
    verdict = check("choice", completion, "(C)", letters="ABCDE")
    assert (verdict.reason, verdict.reward) == ("correct", 1.0), verdict


@pytest.mark.parametrize(
    "completion, reason",
    [
        ("The answer is (B)", "wrong_answer"),
        ("The answer is A or C", "ambiguous"),
        ("\\boxed{A, C}", "ambiguous"),
        ("(A) 3 (B) 4 (C) 5", "ambiguous"),
        ("I have no idea.", "no_answer"),
        ("The answer is a triangle.", "no_answer"),
        ("", "no_answer"),
        (None, "no_answer"),
        (5, "bad_input"),
    ],
)
def test_choice_zero_reward_cases(completion, reason):
    verdict = check("choice", completion, "C")
    assert (verdict.reason, verdict.reward) == (reason, 0.0), verdict


def test_choice_reference_forms():
    assert check("choice", "answer: B", "b").reason == "correct"
    assert check("choice", "answer: B", "\\text{(B)}").reason == "correct"
    assert check("choice", "answer: B", 1).reason == "correct"  # integer references are 0-based indexes
    assert check("choice", "answer: B", "Z", letters="ABCD").reason == "bad_reference"
    assert check("choice", "answer: B", None).reason == "bad_reference"


def test_choice_bad_letters_option():
    with pytest.raises(OptionsError, match="distinct letters"):
        get_verifier("choice", letters="AAB")


# -- format -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "completion, ok",
    [
        ("<think>hm</think><answer>4</answer>", True),
        ("\n<think>a\nb</think>\n\n<answer>4</answer>\n", True),
        ("<answer>4</answer>", False),
        ("<think>a</think><answer>4</answer> trailing", False),
        ("preamble <think>a</think><answer>4</answer>", False),
        ("<think>a<think>b</think><answer>4</answer>", False),
        ("<think>a</think><answer>4</answer><answer>5</answer>", False),
        ("<think>a</think><answer>4", False),
        (None, False),
    ],
)
def test_format_default_tags(completion, ok):
    verdict = check("format", completion, None)
    assert verdict.reward == (1.0 if ok else 0.0)
    assert verdict.reason == "correct" if ok else verdict.reason in ("bad_format", "no_answer")


def test_format_options():
    assert check("format", "<answer>1</answer>", None, tags="answer").reward == 1.0
    assert check("format", "x = 4", None, pattern=r"x = \d+").reward == 1.0
    assert check("format", "x = 4 and more", None, pattern=r"x = \d+").reason == "bad_format"
    assert check("format", "line1\nline2", None, pattern=r"line1.line2").reward == 1.0  # DOTALL
    assert check("format", "<think></think><answer>1</answer>", None, reward="0.5").reward == 0.5
    with pytest.raises(OptionsError):
        get_verifier("format", pattern="[")


# -- hostile input ------------------------------------------------------------------------------
HOSTILE = {  # n -> a hostile completion of about n characters
    "unclosed_boxes": lambda n: "\\boxed{" * (n // 7),
    "open_braces": lambda n: "{" * n,
    "answer_repeated": lambda n: "answer " * (n // 7),
    "choices_repeated": lambda n: "(A) " * (n // 4),
    "answer_tags": lambda n: "<answer>" * (n // 8),
    "unclosed_think_tags": lambda n: "<think>" * (n // 7) + "</think>",
    "text_commands": lambda n: "\\text{" * (n // 6),
    "letters_then_nul": lambda n: "a" * n + "\0",
    "dollars": lambda n: "$" * n,
    "dots_then_x": lambda n: "." * n + "x",
    "nuls": lambda n: "\0" * n,
    "nested_braces": lambda n: "{" * (n // 200) + "x" + "}" * (n // 200),
    "the_answer_is_parens": lambda n: "The answer is " + "(" * (n // 2),
}


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
@pytest.mark.parametrize("name", ["exact", "choice", "format"])
def test_hostile_completions_never_raise_and_stay_linear(name, hostile):
    verifier = get_verifier(name)

    def verify(completion):
        assert isinstance(verifier.verify(completion=completion, reference="C"), Verdict)

    # up to 100k characters (8 x 12_500): a linear scan takes milliseconds there, a quadratic one minutes
    assert_linear(verify, HOSTILE[hostile], 12_500)
