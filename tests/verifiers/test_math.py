"""Unit tests of the math verifier's stages; the broad case file is test_math_cases.py."""
import threading
import time

import pytest

from tests.verifiers.growth import assert_linear
from verifiers import get_verifier
from verifiers.math.extract import extract_candidates, last_boxed
from verifiers.math.literals import parse_number
from verifiers.math.normalize import normalize_answer

HOSTILE = {
    "tower": r"\boxed{9^{9^{9^9}}}",
    "factorial": r"\boxed{(10^{10^{10}})!}",
    "long": r"\boxed{" + "7" * 100_000 + "}",
    "braces": r"\boxed{" + "{" * 500 + "1" + "}" * 500 + "}",
    "nul": "\x00\\boxed{\x001\x00/\x002}\x00",
    "unclosed_boxes": "\\boxed{" * 10_000,  # once quadratic in brace matching
    "deep_fraction": r"\boxed{" + r"\frac{1}{" * 200 + "2" + "}" * 200 + "}",
}


def test_last_boxed_wins():
    assert last_boxed(r"first \boxed{3} ... corrected: \boxed{4}") == "4"
    assert last_boxed(r"\fbox{\frac{1}{2}}") == r"\frac{1}{2}"
    assert last_boxed(r"\boxed 7 is it") == "7"
    assert last_boxed(r"\boxed{cut off") == "cut off"  # a truncated last box takes the rest
    assert last_boxed("no box here") is None


@pytest.mark.parametrize(
    "text, answer, method",
    [
        ("so the final answer is $\\frac{3}{4}$.", "\\frac{3}{4}", "final_answer"),
        ("blah\n#### 1,234", "1,234", "hashes"),
        ("**Answer:** 12 apples", "12", "answer_colon"),  # the number, not its unit word
        ("we get 3 then 7 as the result", "7", "last_number"),
    ],
)
def test_extraction_markers(text, answer, method):
    first = extract_candidates(text)[0]
    assert (first.answer, first.method) == (answer, method)


def test_last_number_fallback_can_be_turned_off():
    verifier = get_verifier("math", last_number_fallback=False)
    assert verifier.verify(completion="it is 15 apples", reference="15").reason == "no_answer"
    assert get_verifier("math").verify(completion="it is 15 apples", reference="15").reward == 1.0


@pytest.mark.parametrize(
    "raw, text, percent",
    [
        ("\\left( 1, 2 \\right)", "( 1, 2 )", False),
        ("\\dfrac{1}{2}", "\\frac{1}{2}", False),
        ("5\\text{ cm}", "5", False),
        ("30^\\circ", "30", False),
        ("12\\%", "12", True),
        ("\\$1{,}000", "1000", False),
        ("\u22123", "-3", False),
        ("1,234,567.5", "1234567.5", False),
    ],
)
def test_normalization(raw, text, percent):
    assert normalize_answer(raw) == type(normalize_answer(raw))(text, percent)


def test_exact_literals():
    assert parse_number("0.\\overline{3}").value * 3 == 1
    assert parse_number("3\\frac{1}{2}").value == parse_number("7/2").value
    assert parse_number("1" * 5000) is None  # refuses instead of converting a huge literal
    assert parse_number("1e999999") is None


def test_tolerance_option():
    assert get_verifier("math").verify(completion="\\boxed{3.1416}", reference="\\pi").reward == 0.0
    assert get_verifier("math", tolerance=1e-4).verify(completion="\\boxed{3.1416}", reference="\\pi").reward == 1.0


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_answers_score_zero_within_the_deadline(name):
    timeout = 5.0
    verifier = get_verifier("math", timeout=timeout)
    for completion, reference in ((HOSTILE[name], "3"), ("\\boxed{3}", HOSTILE[name].replace("\\boxed", ""))):
        start = time.monotonic()
        verdict = verifier.verify(completion=completion, reference=reference)
        assert verdict.reward == 0.0, verdict
        # the enforced deadline: the symbolic stage's helper process is killed past `timeout`; the slack
        # covers starting that helper on a loaded machine (the stages before it are size-capped linear
        # scans: see test_unclosed_boxes_are_matched_in_linear_time and test_math_markers.py)
        assert time.monotonic() - start < timeout + 15.0


def test_unclosed_boxes_are_matched_in_linear_time():
    assert_linear(extract_candidates, lambda n: "\\boxed{" * n, 1250)  # once quadratic in brace matching


def test_hostile_answers_from_a_thread():
    verifier = get_verifier("math", timeout=5.0)
    out = {}

    def work():
        out.update({name: verifier.verify(completion=text, reference="3").reward for name, text in HOSTILE.items()})

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and set(out.values()) == {0.0}


def test_non_text_completion_is_zero_not_a_crash():
    assert get_verifier("math").verify(completion=None, reference="1").reward == 0.0
    assert get_verifier("math").verify(completion="\\boxed{1}", reference="").reason == "bad_reference"


# Answers that exercise every way `latex_convert` drives the grammar; each must give
# exactly the tree latex2sympy's own full-LL parse from its top rule gives.
SAME_AS_LATEX2SYMPY = [
    r"x^2+2x-1", r"(x+1)^2", r"(1+i)^2", r"-2 x^{2}+4 x+3", r"y_{1}", r"a_1 a_2", r"F_n", r"x_1^2",
    r"\frac{\sqrt{\sqrt{11}+\sqrt{194}}}{15+2\sqrt{33}}", r"\sum_{k=0}^{n-1} F_k F_{n-k-1}", r"10^{\frac{-5+\sqrt{13}}{6}}",
    r"(x+1)", r"[x]", r"{x}", r"\{1\}", r"\boxed{2}", r"1 < x < 3", r"(a+5)(b+2)", r"f^{-1}(x)", r"\pi^2",
    r"(\begin{pmatrix}1\\2\end{pmatrix})", r"1, 2", r"x \in (0, 1)", r"1 \pm \sqrt{2}", r"[0,1) \cup (2,3]",
    r"(x, y)", r"\emptyset", r"\mathbb{R}", r"3:4", r"\ln 2 \cdot \ln 3", r"\text{Yes}", r"x = 1", r"",
]


@pytest.mark.parametrize("text", SAME_AS_LATEX2SYMPY)
def test_parse_strategy_gives_latex2sympys_tree(text):
    import sympy
    from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
    from verifiers.math import latex_convert

    def tree(parse):
        try:
            return sympy.srepr(parse(text))
        except Exception:  # both must fail alike
            return "error"

    reference = tree(_Latex2Sympy(config=latex_convert._CONVERSION).parse)
    assert tree(latex_convert._convert_expression) == reference
