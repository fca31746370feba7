"""Literal shapes compared without sympy (`verifiers.math.literal_shapes`): each must
give the verdict the symbolic path gives."""
import pytest

from verifiers import get_verifier
from verifiers.math.literal_shapes import compare_shapes
from verifiers.math.verifier import MathOptions, _numbers_equal


def _same(a, b):
    return _numbers_equal(a, b, MathOptions())


@pytest.mark.parametrize("ref, pred, expected", [
    ("[0, 0.5)", "[ 0, \\frac{1}{2} )", "equal"), ("[0,1)", "(0,1]", "different"), ("[1,2]", "[1,2)", "different"),
    ("(1,2)", "(2,1)", "different"), ("(1,2,3)", "(1,2)", "different"), ("(1, \\frac{1}{2})", "(1, 0.5)", "equal"),
    ("(-\\infty, 3]", "(-\\infty,3]", "equal"), ("(-\\infty, 3]", "(\\infty, 3]", "different"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}", "equal"),
    ("\\begin{pmatrix} 1 & 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "different"),
    ("\\begin{pmatrix} \\frac{1}{2} & 0 \\\\ 0 & 2 \\end{pmatrix}", "\\begin{pmatrix} 0.5 & 0 \\\\ 0 & 2 \\end{pmatrix}", "equal"),
    ("\\pm 2", "2, -2", "equal"), ("\\pm 2", "2", "different"), ("\\pm 2", "\\pm 3", "different"), ("1 \\pm 2", "3, -1", "equal"),
    ("\\infty", "+\\infty", "equal"), ("\\infty", "-\\infty", "different"), ("\\infty", "1000000", "different"),
    # not literal shapes: sympy decides
    ("(1, 2), (2, 1)", "(2, 1), (1, 2)", None), ("(0,1) \\cup (1,2)", "(0,2)", None), ("\\pm\\sqrt{5}", "-\\sqrt{5}, \\sqrt{5}", None),
    ("\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}", "\\begin{vmatrix} 1 & 2 \\\\ 3 & 4 \\end{vmatrix}", None), ("(1, x)", "(1, x)", None),
])
def test_literal_shapes(ref, pred, expected):
    assert compare_shapes(ref, pred, _same) == expected


def test_shapes_agree_with_the_verifier_end_to_end():
    verifier = get_verifier("math")
    assert verifier.verify(completion="\\boxed{(0.5, 3)}", reference="(\\frac{1}{2}, 3)").reward == 1.0
    assert verifier.verify(completion="\\boxed{[0, 2)}", reference="[0, 2]").reward == 0.0
