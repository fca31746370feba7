"""Shapes made of numeric literals, compared without sympy: intervals and tuples
(``[0, \\frac{1}{2})`` vs ``[0, 0.5)``), matrices of numbers, ``\\pm`` of numbers and
``\\pm\\infty``.

About half the comparisons that reach the symbolic helper process are such shapes;
each answer here costs microseconds instead of a parse and an IPC round trip.
`compare_shapes` returns "equal", "different", or None when either side is not a
literal shape of the same family (then sympy decides, as before). Numbers are compared
by the verifier's own rule (rounding, tolerance), passed in as ``same``.
"""
from __future__ import annotations

import re
from fractions import Fraction
from typing import Callable

from verifiers.latex_text import split_top_level
from verifiers.math.literals import Number, parse_number

__all__ = ["compare_shapes"]

Same = Callable[[Number, Number], bool]
_INFINITY = {"\\infty": 1, "+\\infty": 1, "-\\infty": -1}
_BRACKETED_RE = re.compile(r"^([(\[])(.*)([)\]])$", re.DOTALL)
_MATRIX_RE = re.compile(r"^\\begin\{([pb]?matrix)\}(.*)\\end\{\1\}$", re.DOTALL)
_PM_RE = re.compile(r"^(.*?)\\pm(.*)$", re.DOTALL)
_MAX_ITEMS = 100


def _value(text: str) -> Number | int | None:
    """A number, or +1 / -1 for plus / minus infinity, or None."""
    text = text.strip()
    if text in _INFINITY:
        return _INFINITY[text]
    return parse_number(text)


def _items_equal(xs: list, ys: list, same: Same) -> bool:
    if len(xs) != len(ys):
        return False
    for x, y in zip(xs, ys):
        if isinstance(x, int) or isinstance(y, int):  # infinities: only the same one
            if x != y or type(x) is not type(y):
                return False
        elif not same(x, y):
            return False
    return True


def _sequence(text: str) -> tuple[str, list] | None:
    """(brackets, values) for ``(a, b, ...)`` / ``[a, b)`` of literals."""
    match = _BRACKETED_RE.match(text)
    if not match or "," not in match.group(2):
        return None
    items = split_top_level(match.group(2), ",")
    if len(items) > _MAX_ITEMS:
        return None
    values = [_value(item) for item in items]
    return (match.group(1) + match.group(3), values) if all(v is not None for v in values) else None


def _matrix(text: str) -> list[list[Number]] | None:
    match = _MATRIX_RE.match(text)
    if not match:
        return None
    rows = [row for row in match.group(2).split("\\\\") if row.strip()]
    grid = [[parse_number(entry) for entry in row.split("&")] for row in rows[:_MAX_ITEMS]]
    if not grid or len(rows) > _MAX_ITEMS or any(None in row for row in grid):
        return None
    return grid


def _plus_minus(text: str) -> list[Number] | None:
    """``\\pm 2`` -> [2, -2]; ``1 \\pm 2`` -> [3, -1] (literals only)."""
    match = _PM_RE.match(text)
    if not match:
        return None
    base = parse_number(match.group(1)) if match.group(1).strip() else Number(Fraction(0), None)
    offset = parse_number(match.group(2))
    if base is None or offset is None:
        return None
    return [Number(base.value + offset.value, None), Number(base.value - offset.value, None)]


def _number_list(text: str) -> list[Number] | None:
    if "\\pm" in text:
        return _plus_minus(text)
    items = text.split(",")
    values = [parse_number(item) for item in items] if len(items) <= _MAX_ITEMS else [None]
    return values if all(v is not None for v in values) else None


def _unordered_equal(xs: list[Number], ys: list[Number], same: Same) -> bool:
    remaining = list(ys)
    for x in xs:
        match = next((i for i, y in enumerate(remaining) if same(x, y)), None)
        if match is None:
            return False
        del remaining[match]
    return not remaining


def compare_shapes(ref: str, pred: str, same: Same) -> str | None:
    """Compare two literal shapes of the same family; None when sympy must decide."""
    ref_seq, pred_seq = _sequence(ref), _sequence(pred)
    if ref_seq and pred_seq:
        equal = ref_seq[0] == pred_seq[0] and _items_equal(ref_seq[1], pred_seq[1], same)
        return "equal" if equal else "different"
    if ref.startswith("\\begin") and pred.startswith("\\begin"):
        ref_grid, pred_grid = _matrix(ref), _matrix(pred)
        if ref_grid and pred_grid:
            shape_ok = [len(r) for r in ref_grid] == [len(r) for r in pred_grid]
            flat = shape_ok and _items_equal(sum(ref_grid, []), sum(pred_grid, []), same)
            return "equal" if flat else "different"
        return None
    if "\\pm" in ref or "\\pm" in pred:
        ref_list, pred_list = _number_list(ref), _number_list(pred)
        if ref_list and pred_list:
            return "equal" if _unordered_equal(ref_list, pred_list, same) else "different"
        return None
    ref_inf, pred_inf = _INFINITY.get(ref.strip()), _INFINITY.get(pred.strip())
    if ref_inf is not None or pred_inf is not None:
        if ref_inf is not None and pred_inf is not None:
            return "equal" if ref_inf == pred_inf else "different"
        other = pred if ref_inf is not None else ref
        return "different" if parse_number(other) is not None else None
    return None
