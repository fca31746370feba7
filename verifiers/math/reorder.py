"""The same sum written in another order (``4i + 3`` = ``3 + 4i``), without sympy.

About half of the comparisons that reach the symbolic stage are an answer whose terms
are the reference's in another order. `same_terms` splits both at top-level ``+``/``-``
and compares the terms as multisets. It only ever says "equal": anything it cannot
split safely goes on to sympy. A sign splits only after a letter, digit, ``}`` or ``)``
(never inside an exponent such as ``2^-3``, never after an operator), so each term is
a product of higher-precedence operations and reordering terms cannot change the value.
"""
from __future__ import annotations

import re

__all__ = ["same_terms"]

_UNSAFE_RE = re.compile(
    r"[<>,;!|]|\\(?:pm|mp|leq|geq|neq|le|ge|lt|gt|in|cup|cap|setminus|approx|to|mod|pmod|bmod)(?![a-z])"
    r"|(?:\\cdot|\\times|\\div|[*/^_])\s*[-+]"  # a sign that belongs to an operand, not a term
)
_SPACE_RE = re.compile(r"\s+")


def _terms(side: str) -> list[str] | None:
    terms, depth, start = [], 0, 0
    for index, char in enumerate(side):
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char in "+-" and depth == 0 and index > 0 and (side[index - 1].isalnum() or side[index - 1] in "})"):
            terms.append(side[start:index])
            start = index
    if depth != 0:
        return None
    terms.append(side[start:])
    cleaned = [term[1:] if term.startswith("+") else term for term in terms]
    return sorted(cleaned) if all(cleaned) and len(cleaned) > 1 else None


def same_terms(ref: str, pred: str) -> bool:
    """True when both are the same sum (or equation of sums) up to the order of terms."""
    if _UNSAFE_RE.search(ref) or _UNSAFE_RE.search(pred) or ref.count("=") != pred.count("=") or ref.count("=") > 1:
        return False
    ref_sides = _SPACE_RE.sub("", ref).split("=")
    pred_sides = _SPACE_RE.sub("", pred).split("=")
    ref_terms = [_terms(side) or [side] for side in ref_sides]
    pred_terms = [_terms(side) or [side] for side in pred_sides]
    if ref_terms == pred_terms and ref_sides != pred_sides:
        return True
    return len(ref_terms) == 2 and ref_terms == pred_terms[::-1]
