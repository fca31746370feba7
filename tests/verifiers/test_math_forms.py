"""Reference and answer forms that state a value (`verifiers.math.answer_forms`), the
comparison rules for sets, degrees, tiny magnitudes and chains, and the size guard."""
import pytest

from tests.verifiers.growth import assert_linear
from verifiers import get_verifier
from verifiers.math.answer_forms import approximation, choice_with_value, reduce_forms, trig_degrees
from verifiers.math.reorder import same_terms

# (answer in the completion's box, reference, expected reward)
PAIRS = [
    # named function vs its expression
    ("2x + 5", "g(x) = 2x + 5", 1), ("5 + 2x", "g(x) = 2x + 5", 1), ("2x - 5", "g(x) = 2x + 5", 0),
    # exact value with an approximation attached: either side
    ("\\frac{\\sqrt{2}}{2}", "\\frac{\\sqrt{2}}{2} \\approx 0.7071", 1), ("0.7071", "\\frac{\\sqrt{2}}{2} \\approx 0.7071", 1),
    ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2} \\approx 0.7071", 0), ("0.7072", "\\frac{\\sqrt{2}}{2} \\approx 0.7071", 0),
    # a choice letter with its value: the letter or the value
    ("24", "(C) 24", 1), ("C", "(C) 24", 1), ("\\text{(C)}", "(C) 24", 1), ("(B)", "(C) 24", 0), ("18", "(C) 24", 0),
    # a dangling degree mark
    ("60", "60^", 1), ("60^\\circ", "60^", 1), ("120", "60^", 0),
    # set-builder vs interval / inequality
    ("[3, \\infty)", "\\{x \\mid x \\geq 3\\}", 1), ("x \\geq 3", "\\{x \\mid x \\geq 3\\}", 1),
    ("(3, \\infty)", "\\{x \\mid x \\geq 3\\}", 0), ("(2, \\infty)", "\\{x \\in \\mathbb{R} : x > 2\\}", 1),
    # a named tuple vs the list of its values, in order
    ("(x, y, z) = (1, 2, 3)", "1, 2, 3", 1), ("(x, y, z) = (1, 3, 2)", "1, 2, 3", 0),
    # a function stated for all x
    ("f(x) = 3x \\text{ for all } x \\in \\mathbb{R}", "3x", 1), ("f(x) = 3x \\quad \\forall x", "f(x) = 3x", 1),
    ("f(x) = x + 3 \\text{ for all } x", "3x", 0),
    # a chain: compare the side that is the answer
    ("\\frac{6}{8} = \\frac{3}{4}", "\\frac{3}{4}", 1), ("(x+3)^2 = x^2 + 6x + 9", "x^2 + 6x + 9", 1),
    ("(x+3)^2 = x^2 + 9", "x^2 + 6x + 9", 0), ("\\frac{6}{8} = \\frac{2}{3}", "\\frac{3}{4}", 0),
    # sets: repeated elements count once in braces; lists are multisets
    ("\\{1, 1, 2\\}", "\\{1, 2\\}", 1), ("\\{2, 1\\}", "\\{1, 2\\}", 1), ("1, 1, 2", "1, 2", 0), ("\\{1, 3\\}", "\\{1, 2\\}", 0),
    # trigonometric values of special angles in degrees
    ("\\sin 30^\\circ", "\\frac{1}{2}", 1), ("\\cos 60^{\\circ}", "0.5", 1), ("\\sin 60^\\circ", "\\frac{1}{2}", 0),
    ("\\tan 45^\\circ", "1", 1),
    # tiny magnitudes: six decimal places are not enough to call them equal
    ("0.000000012", "1.2 \\times 10^{-8}", 1), ("0.000000024", "1.2 \\times 10^{-8}", 0),
    ("0.00000002", "0.00000001", 0), ("0.000123", "0.0001234", 1), ("0.333333", "\\frac{1}{3}", 1),
    # harmless factorials and binomials are evaluated, not refused
    ("\\frac{10!}{3!\\,7!}", "120", 1), ("\\binom{10}{3}", "120", 1), ("\\frac{10!}{3!}", "120", 0),
    # n mod k is not n (sample points below k made them agree)
    ("n \\mod 5", "n", 0), ("n \\bmod 3", "n", 0), ("17 \\bmod 5 = 2", "2", 1), ("17 \\mod 5", "2", 1),
    # terms in another order (decided without sympy)
    ("4i + 3", "3 + 4i", 1), ("x^2 + y^2 = 25", "y^2 + x^2 = 25", 1), ("2^{-1} - 3", "2^{-3} - 1", 0),
]


@pytest.mark.parametrize("answer, reference, expected", PAIRS, ids=[f"{i}" for i in range(len(PAIRS))])
def test_forms(answer, reference, expected):
    verdict = get_verifier("math").verify(completion=f"so the result is $\\boxed{{{answer}}}$", reference=reference)
    assert verdict.reward == expected, verdict


def test_string_rules():
    assert choice_with_value("(B) 12") == ("B", "12") and choice_with_value("B) 12") == ("B", "12")
    assert choice_with_value("(2, 3)") is None and choice_with_value("(B)") is None
    assert approximation("\\frac{1}{3} \\approx 0.333") == ("\\frac{1}{3}", "0.333")
    assert approximation("x \\approx 2") is None  # a value for x, not an exact form
    assert reduce_forms("60^") == "60" and reduce_forms("\\{x | x > 2\\}") == "x > 2"
    assert reduce_forms("\\{1, 2\\}") == "\\{1, 2\\}" and reduce_forms("\\{(1, 2) : 3\\}") == "\\{(1, 2) : 3\\}"
    assert trig_degrees("\\sin 30^\\circ") == "\\sin (30\\pi/180)" and trig_degrees("30^\\circ") == "30^\\circ"


def test_reordering_never_moves_an_operand():
    assert same_terms("3+4i", "4i+3") and same_terms("x=2", "2=x") and same_terms("1-x", "-x+1")
    assert not same_terms("2^-3-1", "2^-1-3") and not same_terms("2-3", "3-2")
    assert not same_terms("a\\cdot -b+c", "a\\cdot +c-b") and not same_terms("x < 1+y", "x < y+1")


HOSTILE_FORMS = {  # n -> a text of about n characters that a backtracking pattern would take quadratic time on
    "digits_then_caret": lambda n: "1" * n + " ^",
    "words_then_spaces": lambda n: "for " * (n * 3 // 10) + " " * n,
    "sin_of_digits": lambda n: "\\sin " + "1" * n,
    "set_builder_bars": lambda n: "\\{" + "x|" * (n // 2) + "\\}",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_FORMS))
def test_form_rules_stay_linear_on_hostile_text(name):
    def both(text):
        reduce_forms(text)
        trig_degrees(text)

    assert_linear(both, HOSTILE_FORMS[name], 10_000)


def test_a_list_reference_keeps_multiplicities():
    verifier = get_verifier("math")
    assert verifier.verify(completion="\\boxed{\\{1, 2\\}}", reference="1, 1, 2").reward == 0.0  # roots with multiplicity
    assert verifier.verify(completion="\\boxed{1, 1, 2}", reference="\\{1, 2\\}").reward == 1.0  # a set: repeats count once


@pytest.mark.parametrize("answer, reference, expected", [
    ("12", "It is 12", 1), ("5", "The answer is 5", 1), ("(1,2)", "the point (1,2)", 1), ("(2,1)", "the point (1,2)", 0),
    ("\\frac12", "1/2 of the cake", 1), ("45", "45 minutes, or 3/4 hour", 1), ("7", "7 (seven)", 1), ("8", "7 (seven)", 0),
    ("\\frac{\\sqrt3}{2}", "\\frac{\\sqrt{3}}{2} (or about 0.866)", 1), ("\\pi", "\\pi \\text{ radians}", 1),
    ("3", "three", 1), ("4", "three", 0), ("\\text{Tuesday}", "Tuesday", 1),
    # not prose: words inside braces, commands, intervals ending in a parenthesis
    ("\\frac{1}{\\sqrt{6}}", "\\frac{NO}{BO}=\\frac{1}{\\sqrt{6}}", 1),
    ("(3,\\infty) \\cup (-\\infty, 2)", "(-\\infty, 2) \\cup (3, \\infty)", 1),
    ("\\left(\\frac{1}{5}, \\frac{1}{6}\\right)", "\\left(\\frac{1}{5},\\frac{1}{6}\\right)", 1),
])
def test_short_prose_references(answer, reference, expected):
    verdict = get_verifier("math").verify(completion=f"$\\boxed{{{answer}}}$", reference=reference)
    assert verdict.reward == expected, verdict


def test_tolerance_is_relative_for_tiny_values():
    loose = get_verifier("math", tolerance=1e-6)  # absolute near 1, but not for 1e-8 vs 2e-8
    assert loose.verify(completion="\\boxed{2 \\times 10^{-8}}", reference="10^{-8}").reward == 0.0
    assert loose.verify(completion="\\boxed{1.0000001}", reference="1").reward == 1.0
    percent = get_verifier("math", tolerance=0.02)
    assert percent.verify(completion="\\boxed{1.01 \\times 10^{-8}}", reference="10^{-8}").reward == 1.0


def test_a_tuple_is_not_a_set():
    verifier = get_verifier("math")
    assert verifier.verify(completion="\\boxed{(1, 2, 3)}", reference="\\{1, 2, 3\\}").reward == 0.0
    assert verifier.verify(completion="\\boxed{1, 2, 3}", reference="(1, 2, 3)").reward == 1.0  # a bare list, in order
    assert verifier.verify(completion="\\boxed{3, 2, 1}", reference="(1, 2, 3)").reward == 0.0
