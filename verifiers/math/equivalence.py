"""Are two parsed answers the same mathematical object?

Rules, from cheap to expensive:
* numbers: exact when both are exact; when either was written as a decimal, both are
  rounded to ``float_rounding`` places; ``tolerance`` (relative) when set;
* expressions without symbols: evaluated to 30 significant digits and compared;
* expressions with symbols: the same symbols on both sides, then equal values at
  several deterministic random points, then ``simplify(a - b) == 0`` as last resort;
* equations: ``x = 4`` matches ``4``; two equations match when one is a nonzero
  multiple of the other (rearranged); inequalities in one variable compare as the
  sets they describe (``5 \\leq x`` = ``x \\geq 5`` = ``[5, \\infty)``);
* sets and lists: unordered, element by element; tuples, intervals, matrices: in order.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import mpmath
import sympy
from sympy.core.function import AppliedUndef
from sympy.core.relational import Relational
from sympy.logic.boolalg import And

from verifiers.math.inequalities import solution_set

__all__ = ["Tolerance", "equivalent"]

_DIGITS = 30
_EXACT_REL = mpmath.mpf(sympy.Float("1e-20", _DIGITS)._mpf_)
_POINTS = 3  # deterministic random points; two different expressions agreeing on all is negligible
_TINY, _TINY_REL = mpmath.mpf("1e-3"), mpmath.mpf("5e-3")  # see _close_real


@dataclass(frozen=True)
class Tolerance:
    float_rounding: int = 6  # decimal places kept when either side is a decimal
    relative: float = 0.0  # extra relative tolerance for numbers (0: off)


def _numeric(expr: sympy.Basic) -> sympy.Expr | None:
    try:
        value = sympy.N(expr, _DIGITS)
    except Exception:
        return None
    return value if value.is_number else None


# not sampled at points: symbolic operations, and Mod/floor, whose values at the
# (non-integer) sample points say nothing (n mod 5 equals n at every point below 5)
_UNEVALUATED = (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.Derivative, sympy.Mod, sympy.floor,
                sympy.ceiling)


def _numeric_at(expr: sympy.Expr, point: dict) -> sympy.Expr | None:
    try:
        value = expr.evalf(_DIGITS, subs=point)
    except Exception:
        return None
    return value if value.is_number else None


def _rebuild(expr: sympy.Basic) -> sympy.Basic:
    """The same tree with sympy's evaluation applied (canonical argument order)."""
    if not expr.args or isinstance(expr, AppliedUndef):
        return expr
    try:
        return expr.func(*[_rebuild(arg) for arg in expr.args])
    except Exception:
        return expr


def _canonically_equal(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal after sympy re-evaluates both (argument order, trivial rewrites)."""
    ra, rb = _rebuild(a), _rebuild(b)
    if ra == rb:
        return True
    try:
        return sympy.expand(ra - rb) == 0
    except Exception:
        return False


def _has_float(expr: sympy.Basic) -> bool:
    return any(node.is_Float for node in sympy.preorder_traversal(expr))


def _close(a: sympy.Expr, b: sympy.Expr, tol: Tolerance, rounded: bool) -> bool:
    if a.has(sympy.oo, -sympy.oo, sympy.zoo) or b.has(sympy.oo, -sympy.oo, sympy.zoo):
        return a == b
    if a.has(sympy.nan) or b.has(sympy.nan):
        return False
    ar, ai = a.as_real_imag()
    br, bi = b.as_real_imag()
    return _close_real(ar, br, tol, rounded) and _close_real(ai, bi, tol, rounded)


def _close_real(a: sympy.Expr, b: sympy.Expr, tol: Tolerance, rounded: bool) -> bool:
    try:  # in mpmath at the same precision: sympy Float arithmetic cost ~0.3 ms a pair
        x, y = (mpmath.mpf(sympy.Float(v, _DIGITS)._mpf_) for v in (a, b))
    except (TypeError, ValueError):
        return False
    with mpmath.workdps(_DIGITS):
        diff, top = abs(x - y), max(abs(x), abs(y))
        scale = max(top, 1)
        if (rounded or tol.relative) and top < _TINY and diff > top * max(tol.relative, _TINY_REL):
            return False  # below 10^-3 neither six places nor an absolute tolerance tell 1e-8 from 2e-8
        if tol.relative and diff <= tol.relative * scale:
            return True
        if rounded:  # compare as if both were written with float_rounding decimal places
            step = mpmath.mpf(10) ** (-tol.float_rounding)
            return diff <= step / 2 * (1 + mpmath.mpf("1e-9")) or diff <= scale * mpmath.mpf("1e-9")
        # exact values: relative to their own size, so 1/2^99 and 1/2^98 stay apart
        return diff <= _EXACT_REL * max(abs(x), abs(y))


def _exact_rationals(a: sympy.Expr, b: sympy.Expr) -> bool | None:
    """Compare exactly when both sides evaluate to rationals (no floats involved)."""
    if _has_float(a) or _has_float(b):
        return None
    try:
        ea, eb = a.doit(), b.doit()
    except Exception:
        return None
    if ea.is_Rational and eb.is_Rational:
        return bool(ea == eb)
    return None


def _sample_points(symbols: list[sympy.Symbol], seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{s: sympy.Rational(rng.randint(11, 97), rng.randint(7, 31)) for s in symbols} for _ in range(_POINTS)]


def _expr_equal(a: sympy.Expr, b: sympy.Expr, tol: Tolerance) -> bool:
    if a == b:
        return True
    fa, fb = a.free_symbols, b.free_symbols
    rounded = _has_float(a) or _has_float(b)
    if not fa and not fb:
        exact = _exact_rationals(a, b)
        if exact is not None:
            return exact
        va, vb = _numeric(a), _numeric(b)
        return va is not None and vb is not None and _close(va, vb, tol, rounded)
    if a.has(*_UNEVALUATED) or b.has(*_UNEVALUATED) or a.atoms(AppliedUndef) or b.atoms(AppliedUndef):
        return _canonically_equal(a, b)  # a symbolic sum or an unknown f(x) cannot be sampled
    symbols = sorted(fa | fb, key=str)  # sin^2 x + cos^2 x = 1 although the symbols differ
    evaluated = 0
    for point in _sample_points(symbols, seed=len(symbols)):
        va, vb = _numeric_at(a, point), _numeric_at(b, point)
        if va is None or vb is None or va.has(sympy.nan, sympy.zoo) or vb.has(sympy.nan, sympy.zoo):
            continue
        if not _close(va, vb, tol, rounded):
            return False
        evaluated += 1
    if evaluated >= 2:
        return True
    try:
        return sympy.simplify(a - b) == 0
    except Exception:
        return False


# -- relations --------------------------------------------------------------------
def _symbols_only(expr: sympy.Basic) -> bool:
    """A name-like left side: symbols, applied functions, their products and ratios."""
    if isinstance(expr, (sympy.Symbol, AppliedUndef)):
        return True
    if isinstance(expr, sympy.Abs):  # |AB| = 1
        return _symbols_only(expr.args[0])
    if isinstance(expr, (sympy.Mul, sympy.Pow)):
        return all(_symbols_only(a) or (a.is_Integer and isinstance(expr, sympy.Pow)) for a in expr.args)
    return False


def _is_symbol_tuple(value: sympy.Basic) -> bool:
    if isinstance(value, sympy.Tuple):
        return all(isinstance(v, sympy.Symbol) for v in value)
    if isinstance(value, sympy.Interval):  # "(x, y)" parses as an open interval
        return isinstance(value.start, sympy.Symbol) and isinstance(value.end, sympy.Symbol)
    return False


def _assignment_value(rel: sympy.Basic) -> sympy.Basic | None:
    """``x = 4`` (or ``4 = x``) -> 4: the value a one-symbol equation assigns."""
    if not isinstance(rel, sympy.Eq):
        return None
    lhs, rhs = rel.lhs, rel.rhs
    if isinstance(lhs, sympy.Symbol) or (_symbols_only(lhs) and not rhs.free_symbols):
        return rhs  # x = 4, f(x) = 3, AB = 4, V_1 : V_2 = 11 : 21
    if _is_symbol_tuple(lhs):  # (x, y) = (3, 4)
        return rhs
    if not lhs.free_symbols and not rhs.free_symbols:  # a computation: 1/2 + 1/3 = 5/6
        return rhs
    if isinstance(rhs, sympy.Symbol) and not lhs.free_symbols:
        return lhs
    if isinstance(lhs, AppliedUndef) and all(isinstance(arg, sympy.Symbol) for arg in lhs.args):
        return rhs  # a function definition: g(x) = 2x + 5
    return None


def _chain_value(rel: sympy.Basic) -> sympy.Basic | None:
    """``(x+3)^2 = x^2 + 6x + 9`` -> its right side: an identity states a simplification."""
    if isinstance(rel, sympy.Eq) and isinstance(rel.lhs, sympy.Expr) and isinstance(rel.rhs, sympy.Expr):
        return rel.rhs if _expr_equal(rel.lhs, rel.rhs, Tolerance()) else None
    return None


def _same_name(a: sympy.Basic, b: sympy.Basic) -> bool:
    """Left sides naming the same thing: equal, or the same function W(n) / W(x)."""
    return a == b or (isinstance(a, AppliedUndef) and isinstance(b, AppliedUndef) and a.func == b.func)


def _equations_equal(a: sympy.Eq, b: sympy.Eq, tol: Tolerance) -> bool:
    da, db = a.lhs - a.rhs, b.lhs - b.rhs
    if _expr_equal(da, db, tol) or _expr_equal(da, -db, tol):
        return True
    if da.free_symbols != db.free_symbols or not da.free_symbols or db == 0:
        return False
    if _ratio_varies(da, db):
        return False  # not proportional at the sample points: no need for cancel (~4 ms)
    ratio = sympy.cancel(da / db)
    return ratio != 0 and not ratio.free_symbols


def _ratio_varies(da: sympy.Expr, db: sympy.Expr) -> bool:
    """True when da/db takes clearly different values at two sample points."""
    values = []
    for point in _sample_points(sorted(da.free_symbols, key=str), seed=7):
        va, vb = _numeric_at(da, point), _numeric_at(db, point)
        if va is None or vb is None or vb == 0 or va.has(sympy.nan, sympy.zoo) or vb.has(sympy.nan, sympy.zoo):
            continue
        values.append(complex(va / vb))
    return any(abs(v - values[0]) > 1e-9 * max(1.0, abs(values[0])) for v in values[1:])


def _relations_equal(a: sympy.Basic, b: sympy.Basic, tol: Tolerance) -> bool:
    for rel, other in ((a, b), (b, a)):
        value = _assignment_value(rel)
        if isinstance(value, sympy.Set) and not isinstance(other, sympy.Eq):
            as_set = solution_set(other)
            return as_set is not None and rel.lhs in other.free_symbols and _sets_equal(value, as_set, tol)
    if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
        va, vb = _assignment_value(a), _assignment_value(b)
        if va is not None and vb is not None and _same_name(a.lhs, b.lhs):
            return equivalent(va, vb, tol)
        return _equations_equal(a, b, tol)
    sa, sb = solution_set(a), solution_set(b)
    if sa is not None and sb is not None:
        return a.free_symbols == b.free_symbols and _sets_equal(sa, sb, tol)
    if type(a) is type(b) and isinstance(a, Relational):
        return _expr_equal(a.lhs - a.rhs, b.lhs - b.rhs, tol)
    if isinstance(a, Relational) and isinstance(b, Relational):
        return _expr_equal(a.reversed.lhs - a.reversed.rhs, b.lhs - b.rhs, tol) and type(a.reversed) is type(b)
    return False


# -- sets, intervals, sequences ------------------------------------------------------
def _elements(value: sympy.Basic) -> list | None:
    if isinstance(value, sympy.FiniteSet):
        return list(value.args)
    return None


def _unordered_equal(xs: list, ys: list, tol: Tolerance) -> bool:
    if len(xs) != len(ys):
        return False
    remaining = list(ys)
    for x in xs:
        for i, y in enumerate(remaining):
            if equivalent(x, y, tol):
                del remaining[i]
                break
        else:
            return False
    return True


def _sets_equal(a: sympy.Basic, b: sympy.Basic, tol: Tolerance) -> bool:
    if isinstance(a, sympy.Interval) and isinstance(b, sympy.Interval):
        return (
            a.left_open == b.left_open and a.right_open == b.right_open
            and equivalent(a.start, b.start, tol) and equivalent(a.end, b.end, tol)
        )
    if isinstance(a, sympy.Union) and isinstance(b, sympy.Union) and _unordered_equal(list(a.args), list(b.args), tol):
        return True
    if isinstance(a, sympy.FiniteSet) and isinstance(b, sympy.FiniteSet):
        return _unordered_equal(list(a.args), list(b.args), tol)
    return _canonical_set(a) == _canonical_set(b)  # e.g. [0,1] U [1,2] = [0,2]


def _canonical_set(value: sympy.Basic) -> sympy.Basic:
    try:
        if isinstance(value, (sympy.Union, sympy.Intersection, sympy.Complement)):
            return type(value)(*value.args, evaluate=True)
    except Exception:
        pass
    return value


def _sequence_equal(a: sympy.Basic, b: sympy.Basic, tol: Tolerance) -> bool:
    xs, ys = list(a), list(b)
    return len(xs) == len(ys) and all(equivalent(x, y, tol) for x, y in zip(xs, ys))


def _matrix_equal(a: sympy.MatrixBase, b: sympy.MatrixBase, tol: Tolerance) -> bool:
    return a.shape == b.shape and all(equivalent(x, y, tol) for x, y in zip(a, b))


def _open_pair_vs_list(interval: sympy.Basic, other: sympy.Basic, tol: Tolerance = Tolerance()) -> bool | None:
    """``(1,3)`` parses as an open interval but may be the pair (1, 3): then the answer
    ``1, 3`` (a two-element list, in the order written) names the same pair."""
    # the written brackets, not sympy's is_open (which builds an Intersection: ~3 ms)
    if not isinstance(interval, sympy.Interval) or not (interval.left_open and interval.right_open):
        return None
    if isinstance(other, sympy.Tuple) or isinstance(other, sympy.FiniteSet):
        items = list(getattr(other, "_unsorted_args", None) or other.args)
        if len(items) == 2:
            return _sequence_equal(sympy.Tuple(interval.start, interval.end), sympy.Tuple(*items), tol)
    return None


def _written_list(value: sympy.Basic) -> sympy.Tuple | None:
    """A comma list as written (latex2sympy's FiniteSet keeps the written order)."""
    items = getattr(value, "_unsorted_args", None)
    return sympy.Tuple(*items) if isinstance(value, sympy.FiniteSet) and items and len(items) > 1 else None


def _undefined(value: sympy.Basic) -> bool:
    return isinstance(value, sympy.Basic) and value.has(sympy.zoo, sympy.nan)


def _is_relation(value: sympy.Basic) -> bool:
    return isinstance(value, (Relational, And))


def equivalent(a: sympy.Basic, b: sympy.Basic, tol: Tolerance = Tolerance()) -> bool:
    """True when ``a`` and ``b`` denote the same answer."""
    if _undefined(a) or _undefined(b):
        return False  # 12:00 parses as 12/0; two undefined values are not "equal"
    if a == b:
        return True
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        both = isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)
        return both and _matrix_equal(a, b, tol)
    if _is_relation(a) or _is_relation(b):
        return _relation_vs_any(a, b, tol)
    pair = _open_pair_vs_list(a, b, tol) if isinstance(a, sympy.Interval) else _open_pair_vs_list(b, a, tol)
    if pair is not None:
        return pair
    if isinstance(a, sympy.Tuple) or isinstance(b, sympy.Tuple):
        if isinstance(a, sympy.Tuple) and isinstance(b, sympy.Tuple):
            return _sequence_equal(a, b, tol)
        listed = _written_list(b if isinstance(a, sympy.Tuple) else a)  # (1, 2, 3) vs 1, 2, 3
        return listed is not None and _sequence_equal(a if isinstance(a, sympy.Tuple) else b, listed, tol)
    ea, eb = _elements(a), _elements(b)
    if ea is not None and eb is None:
        return len(ea) == 1 and equivalent(ea[0], b, tol)
    if eb is not None and ea is None:
        return len(eb) == 1 and equivalent(a, eb[0], tol)
    if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
        return isinstance(a, sympy.Set) and isinstance(b, sympy.Set) and _sets_equal(a, b, tol)
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        return _expr_equal(a, b, tol)
    return False


def _relation_vs_any(a: sympy.Basic, b: sympy.Basic, tol: Tolerance) -> bool:
    if _is_relation(a) and _is_relation(b):
        return _relations_equal(a, b, tol)
    rel, other = (a, b) if _is_relation(a) else (b, a)
    value = _assignment_value(rel)
    if value is None:
        value = _chain_value(rel)
    if value is not None:
        return equivalent(value, other, tol)
    if isinstance(other, sympy.Set):
        as_set = solution_set(rel)
        return as_set is not None and _sets_equal(as_set, other, tol)
    return False
