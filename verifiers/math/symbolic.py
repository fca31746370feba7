"""LaTeX -> sympy, with guards against answers that would make sympy hang.

Parsing uses latex2sympy2_extended (an ANTLR grammar maintained for exactly this
job; its ANTLR 4.9 runtime is the one hydra-core pins), run by `latex_convert`.
We never hand-parse LaTeX.
Parsed values are cached: a reference is typically checked against G completions.
"""
from __future__ import annotations

import functools
import math
import re
from typing import Iterator

import sympy
from verifiers.math.latex_convert import convert_latex
from verifiers.math.literals import parse_number

__all__ = ["parse_latex", "TooLarge", "ParseFailure", "check_size", "MAX_CHARS"]

MAX_CHARS = 1500  # longer answers are not parsed symbolically (no honest final answer is this long)
MAX_DEPTH = 40  # brace/paren nesting the parser is allowed to recurse into
MAX_NODES = 3000
MAX_LOG10 = 10_000  # numbers above 10^10000 are refused rather than evaluated
MAX_FACTORIAL = 5_000

_IMAGINARY = sympy.Symbol("i")
_DEPTH_RE = re.compile(r"[{(\[]|[})\]]")


class ParseFailure(ValueError):
    """The text is not a math expression latex2sympy can read."""


class TooLarge(ValueError):
    """The expression denotes a number too large to evaluate safely."""


def _nesting(text: str) -> int:
    depth = best = 0
    for match in _DEPTH_RE.finditer(text):
        depth += 1 if match.group(0) in "{([" else -1
        best = max(best, depth)
    return best


def _int_log10(n: int) -> float:
    n = abs(n)
    if n < 2:
        return 0.0
    bits = n.bit_length()
    return math.log10(n) if bits < 1000 else bits * 0.30103


def _small_value(expr: sympy.Basic) -> float:
    """|expr| for an expression already known to be small; 1000 if it cannot be evaluated."""
    if expr.is_Rational:  # most exponents: no need for evalf
        return abs(float(expr))
    try:
        return abs(complex(sympy.N(expr, 15)))
    except (TypeError, ValueError, OverflowError):
        return 1000.0


def _log10_magnitude(expr: sympy.Basic) -> float:
    """Upper bound of log10(max(|expr|, 1)) for numeric sub-expressions; raises TooLarge."""
    if expr.is_Integer or expr.is_Rational:
        return max(0.0, _int_log10(int(expr.p)) - _int_log10(int(expr.q)) + 1e-9)
    if expr.is_Float:
        return max(0.0, math.log10(abs(float(expr)) or 1.0))
    if expr.is_Pow:
        return _pow_magnitude(expr)
    if isinstance(expr, (sympy.factorial, sympy.gamma, sympy.factorial2)):
        arg = _log10_magnitude(expr.args[0])
        if arg > math.log10(MAX_FACTORIAL):
            raise TooLarge(f"{str(expr)[:60]} is too large to evaluate")
        n = min(10**arg, MAX_FACTORIAL) + 1  # n! < n^n: the digits of the largest argument allowed
        return n * math.log10(n)
    parts = [_log10_magnitude(a) for a in expr.args if isinstance(a, sympy.Basic)]
    if not parts:
        return 1.0  # symbols and constants
    if expr.is_Mul:
        total = sum(parts)
    elif expr.is_Add:
        total = max(parts) + math.log10(len(parts))
    else:  # functions, relations, containers
        total = 1.0 + max(parts)
    if total > MAX_LOG10:
        raise TooLarge(f"{str(expr)[:60]} is too large to evaluate")
    return total


def _pow_magnitude(expr: sympy.Pow) -> float:
    base = _log10_magnitude(expr.base)
    exp_bound = _log10_magnitude(expr.exp)
    if exp_bound > 7:  # exponent above 10^7: any base other than 0/±1 is out of range
        if expr.base in (sympy.Integer(0), sympy.Integer(1), sympy.Integer(-1)):
            return 0.0
        raise TooLarge(f"exponent too large in {str(expr)[:60]}")
    exponent = _small_value(expr.exp) if exp_bound < 3 else 10**exp_bound
    if exponent < 0:
        exponent = -exponent
    value = max(base, 1.0) * max(exponent, 1.0)
    if value > MAX_LOG10:
        raise TooLarge(f"{str(expr)[:60]} has over {MAX_LOG10} digits")
    return value


def check_size(expr: sympy.Basic) -> None:
    """Raise TooLarge if evaluating ``expr`` numerically could blow up."""
    if sum(1 for _ in sympy.preorder_traversal(expr)) > MAX_NODES:
        raise TooLarge("expression has too many nodes")
    if isinstance(expr, sympy.Basic):
        for node in sympy.preorder_traversal(expr):
            if node.is_Pow or isinstance(node, (sympy.factorial, sympy.gamma, sympy.factorial2)):
                _log10_magnitude(node)


def _fix_symbols(expr: sympy.Basic) -> sympy.Basic:
    """``i`` is the imaginary unit in a final answer."""
    if isinstance(expr, sympy.Basic) and _IMAGINARY in getattr(expr, "free_symbols", ()):
        return expr.xreplace({_IMAGINARY: sympy.I})
    return expr


@functools.lru_cache(maxsize=4096)
def parse_latex(text: str) -> sympy.Basic:
    """Parse an answer; raises ParseFailure or TooLarge, never anything else."""
    if len(text) > MAX_CHARS:
        raise TooLarge(f"answer of {len(text)} characters is too long to parse")
    literal = parse_number(text)
    if literal is not None:  # a plain number needs no grammar
        if literal.decimal_places is not None:
            return sympy.Float(text.strip(), 30)
        return sympy.Rational(literal.value.numerator, literal.value.denominator)
    if _nesting(text) > MAX_DEPTH:
        raise TooLarge("answer is nested too deeply")
    try:
        expr = convert_latex(text)
    except RecursionError:
        raise TooLarge("answer is nested too deeply") from None
    except Exception as exc:
        raise ParseFailure(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if expr is None or isinstance(expr, (list, str)):
        raise ParseFailure(f"not a single math value: {text[:60]!r}")
    check_size(expr)
    return _evaluate_matrices(_fix_symbols(expr))


def _evaluate_matrices(expr: sympy.Basic) -> sympy.Basic:
    """``A + B`` of explicit matrices -> their sum."""
    if isinstance(expr, sympy.MatrixExpr) and not isinstance(expr, sympy.MatrixBase):
        try:
            return expr.doit()
        except Exception:
            return expr
    return expr


# Typical answer shapes: parsing them once fills ANTLR's prediction cache, which
# otherwise makes the first parse of each construct 10-100x slower than later ones.
_WARM_UP = (
    # numbers, fractions, roots, constants
    r"\frac{1}{2}", r"-\frac{3\sqrt{2}}{4}", r"2\sqrt{5}+1", r"\sqrt[3]{8}", r"3\pi/4", r"\frac{7\pi}{6}",
    r"\frac{\sqrt{a+b}}{2c+1}", r"1.5\times10^{3}", r"2.5", r"-0.75", r"10^{-3}", r"e^{2}", r"e^{-x}",
    # algebra and functions
    r"x^2+2x-1", r"(x+1)^2", r"\frac{x+2}{7}", r"x^{2/3}", r"\frac{1}{3x^{2}}", r"|x-1|", r"|ab|",
    r"\log_2 8", r"\ln(3)", r"\log(x+1)", r"\sin\left(\frac{\pi}{6}\right)", r"\cos(2x)", r"\tan^2(y)+1",
    r"\sec^2 x", r"\arcsin(1)", r"f(x)", r"g(t)", r"f(x)=x^2+1", r"\binom{5}{2}", r"(10)!", r"n!",
    r"\sum_{k=1}^{n} k", r"\sum_{i=0}^{n-1} a_i b_{n-i}", r"\int_0^1 x\,dx", r"\lim_{x\to 0} x",
    # subscripts, names, ratios
    r"a_1", r"a_{12}", r"x_{1}=3", r"x_1 = 2, x_2 = 5", r"y_{1}=2x+1, y_{2}=x-3", r"AB=4", r"\frac{AB}{CD}=2",
    r"a:b=3:4", r"3:4", r"S_{ABC}=6", r"|AB|=5",
    # relations
    r"x=4", r"y = 2x+1", r"2x+3y=6", r"x^2/4+y^2/9=1", r"5 \leq x", r"x > -2", r"1 < x < 3", r"-3 \le x \le 3",
    r"x \neq 1", r"0<f(x)<1", r"x \in [-2,7]", r"x \in (0, \infty)", r"1 \leq |z| \leq 2", r"k = 1, 2, 3",
    r"p = -1, p = \frac{1}{2}", r"(x, y) = (1, 2)",
    # sets, intervals, tuples, matrices
    r"[0,1) \cup (2,\infty)", r"(-\infty, 3]", r"(1,2)", r"(1,2,3)", r"(1, 2), (3, 4)", r"\{1, 2\}",
    r"\{-1, 0, 1\}", r"1, 2, 3", r"\pm 3", r"1 \pm \sqrt{2}", r"3+4i", r"2-i", r"\infty", r"-\infty",
    r"\varnothing", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{bmatrix}1\\0\end{bmatrix}",
    r"\begin{pmatrix}\frac{1}{2}&0\\-\sin(x)&1\end{pmatrix}", r"\begin{pmatrix}1&0\\0&1\end{pmatrix}+\begin{pmatrix}1&1\\1&1\end{pmatrix}",
    r"\begin{pmatrix}1&0\\0&1\end{pmatrix}\begin{pmatrix}2&1\\1&3\end{pmatrix}", r"2\begin{pmatrix}1\\-1\end{pmatrix}",
    r"\begin{array}{cc}1&2\\3&4\end{array}", r"\text{yes}", r"1112_3",
    # one-word answers reach the parser as letters (e is its own token: Yes, None, True)
    "Yes", "No", "None", "True", "False", "Even", "Odd", "Never", "Always",
)


_ATOMS = ("x", "2", "\\pi", "\\sqrt{2}", "\\frac{1}{2}", "a_1", "3x", "x^2", "(x+1)", "|x|", "\\sin x", "\\ln 2", "0.5", "n",
          "\\frac{\\sqrt{3}}{2}")
_SHAPES = (
    "{a}+{b}", "{a}-{b}", "{a}\\cdot {b}", "{a}{b}", "{a} {b}", "\\frac{{{a}}}{{{b}}}", "{a}/{b}", "{a}^{{{b}}}",
    "\\sqrt{{{a}}}", "-{a}", "\\left({a}\\right)", "\\sin({a})", "\\cos^2 {a}", "\\log_{{2}} {a}", "e^{{{a}}}",
    "{a} = {b}", "{a} \\leq {b}", "{a} < {b}", "({a}, {b})", "[{a}, {b})", "\\{{{a}, {b}\\}}", "{a}, {b}",
)


# Outer shapes answers take as a whole: lists, tuples, intervals, unions, sets, relations
_TOP_SHAPES = (
    "({a}, {b})", "({a}, {b}, {a})", "[{a}, {b}]", "({a}, {b}]", "({a}, {b}) \\cup ({b}, \\infty)",
    "(-\\infty, {a}] \\cup [{b}, \\infty)", "{a}, {b}", "{a}, {b}, {a}", "\\{{{a}, {b}\\}}", "{{{a}, {b}}}",
    "{a} \\pm {b}", "x = {a}, {b}", "{a} = {b}", "{a} \\leq x \\leq {b}", "x \\in [{a}, {b}]", "{a} > {b}",
    "({a})", "{a}", "-{a}", "\\ln {a} \\cdot \\ln {b}", "{a}!", "\\sqrt[3]{{{a}}}", "\\tan {a}", "{a}\\sqrt{{{b}}}",
    "\\binom{{{a}}}{{{b}}}", "\\text{{{a}}}", "\\begin{{pmatrix}}{a} & {b}\\\\ {b} & {a}\\end{{pmatrix}}",
)


# Intervals, their unions and memberships over typical endpoints (signed numbers,
# fractions, radicals): the top rule looks ahead over the whole union to choose a reading
_ENDPOINTS = ("-1", "0", "2", "-\\frac{1}{2}", "\\frac{3}{2}", "\\sqrt{3}", "-\\sqrt{2}", "-3", "\\frac{\\pi}{2}", "5")
_SET_SHAPES = (
    "[{a}, {b}]", "({a}, {b}]", "[{a}, {b}) \\cup ({b}, {c}]", "({a}, {b}) \\cup ({b}, {c}) \\cup ({c}, \\infty)",
    "[{a}, {b}] \\cup [{c}, {d}]", "z \\in [{a}, {b}] \\cup [{c}, {d}]", "x \\in ({a}, {b})", "(-\\infty, {a}) \\cup ({b}, {c}]",
    "\\{{{a}, {b}, {c}\\}}", "({a}, {b}), ({c}, {d})",
)


def _generated_answers() -> list[str]:
    """Every shape over a rotating pair of atoms, then the outer shapes over those
    (an expression inside a list, a fraction inside a tuple, ...): a thousand or so
    token patterns, each a different path through the parser's prediction cache."""
    out = []
    for i, shape in enumerate(_SHAPES):
        for j, a in enumerate(_ATOMS):
            b = _ATOMS[(i + 3 * j + 1) % len(_ATOMS)]
            out.append(shape.format(a=a, b=b))
    inner = out[: len(_SHAPES) * len(_ATOMS) - 4 * len(_ATOMS)]  # expression-level shapes only
    for i, shape in enumerate(_TOP_SHAPES):
        for j in range(24):
            a, b = inner[(37 * i + 11 * j) % len(inner)], _ATOMS[(i + j) % len(_ATOMS)]
            out.append(shape.format(a=a, b=b) if j % 2 else shape.format(a=b, b=a))
    points = _ENDPOINTS
    for i, shape in enumerate(_SET_SHAPES):
        for j in range(len(points)):
            a, b, c, d = (points[(i + j + 3 * k) % len(points)] for k in range(4))
            out.append(shape.format(a=a, b=b, c=c, d=d))
    return out


_warmed = False


def warm_up_steps() -> Iterator[None]:
    """Parse typical answers and a generated spread of token patterns, one per step
    (a few seconds in all, once per process), so that later parses find ANTLR's
    prediction cache filled. Workers run the steps while idle."""
    global _warmed
    if _warmed:
        return
    for text in (*_WARM_UP, *_generated_answers()):
        if _warmed:  # another pass (an explicit warm_up) finished first
            return
        try:
            convert_latex(text)
        except Exception:
            pass
        yield
    _warmed = True


def warm_up() -> None:
    for _ in warm_up_steps():
        pass
