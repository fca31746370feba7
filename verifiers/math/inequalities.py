"""The solution set of a one-variable inequality, without sympy's (slow) solver where
possible: ``5 \\leq x`` -> [5, oo), ``1 <= |z| <= 3/2``, ``-x > -1``; sympy's
``as_set`` only for the rest. Used by `equivalence` to compare inequalities as sets.
"""
from __future__ import annotations

import sympy
from sympy.core.function import AppliedUndef
from sympy.core.relational import Relational
from sympy.logic.boolalg import And

__all__ = ["solution_set"]


_OPEN_ON = {sympy.StrictLessThan: (True, False), sympy.LessThan: (False, False),
            sympy.StrictGreaterThan: (True, True), sympy.GreaterThan: (False, True)}


def _simple_interval(rel: Relational, symbol: sympy.Symbol) -> sympy.Set | None:
    """``x < 3`` / ``5 <= x`` -> an Interval, without sympy's (slow) solver."""
    if type(rel) not in _OPEN_ON:
        return None
    strict, greater = _OPEN_ON[type(rel)]
    if rel.lhs == symbol and not rel.rhs.free_symbols:
        bound = rel.rhs
    elif rel.rhs == symbol and not rel.lhs.free_symbols:
        bound, greater = rel.lhs, not greater
    else:
        return None
    if greater:
        return sympy.Interval(bound, sympy.oo, left_open=strict, right_open=True)
    return sympy.Interval(-sympy.oo, bound, left_open=True, right_open=strict)


def _subject(parts: tuple) -> sympy.Basic | None:
    """The one non-constant side every inequality of a chain shares (x, or f(x))."""
    sides = {side for part in parts if isinstance(part, Relational) for side in (part.lhs, part.rhs) if side.free_symbols}
    return next(iter(sides)) if len(sides) == 1 else None


def solution_set(rel: sympy.Basic) -> sympy.Set | None:
    """The solution set of a one-variable inequality (or chain of them)."""
    if isinstance(rel, sympy.Eq) or not rel.free_symbols:
        return None
    parts = rel.args if isinstance(rel, And) else (rel,)
    symbol = _subject(parts)
    if isinstance(symbol, sympy.Abs) and isinstance(symbol.args[0], sympy.Symbol):
        return _abs_set(parts, symbol)
    if not isinstance(symbol, (sympy.Symbol, AppliedUndef)):
        symbol = None  # e.g. -x > -1: let sympy's solver handle it below
    intervals = [_simple_interval(part, symbol) for part in parts if isinstance(part, Relational)] if symbol else []
    if intervals and len(intervals) == len(parts) and all(i is not None for i in intervals):
        return sympy.Intersection(*intervals) if len(intervals) > 1 else intervals[0]
    if len(rel.free_symbols) != 1:
        return None
    linear = _linear_set(parts, next(iter(rel.free_symbols)))
    if linear is not None:
        return linear
    try:
        return rel.as_set()  # sympy's solver: slow, but general
    except Exception:
        return None


def _abs_set(parts: tuple, subject: sympy.Abs) -> sympy.Set | None:
    """``1 <= |z| <= 3/2`` -> [-3/2, -1] U [1, 3/2] without sympy's solver."""
    bounds = [_simple_interval(part, subject) for part in parts if isinstance(part, Relational)]
    if len(bounds) != len(parts) or any(b is None for b in bounds):
        return None
    magnitude = sympy.Intersection(*bounds, sympy.Interval(0, sympy.oo))
    if not isinstance(magnitude, sympy.Interval):
        return None
    mirrored = sympy.Interval(-magnitude.end, -magnitude.start, magnitude.right_open, magnitude.left_open)
    return sympy.Union(mirrored, magnitude)


_FLIP = {sympy.StrictLessThan: sympy.StrictGreaterThan, sympy.LessThan: sympy.GreaterThan,
         sympy.StrictGreaterThan: sympy.StrictLessThan, sympy.GreaterThan: sympy.LessThan}


def _linear_set(parts: tuple, symbol: sympy.Symbol) -> sympy.Set | None:
    """Solve ``a*x + b op c`` chains directly (``-x > -1`` -> x < 1)."""
    intervals = []
    for part in parts:
        if type(part) not in _FLIP:
            return None
        poly = (part.lhs - part.rhs).as_poly(symbol)
        if poly is None or poly.degree() != 1:
            return None
        a, b = poly.all_coeffs()
        if not a.is_number or not b.is_number or a == 0:
            return None
        op = type(part) if a > 0 else _FLIP[type(part)]
        intervals.append(_simple_interval(op(symbol, -b / a), symbol))
    return sympy.Intersection(*intervals) if len(intervals) > 1 else intervals[0]
