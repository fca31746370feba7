"""Exact numbers without sympy: the cheap path that most answers take.

``parse_number`` reads integers, decimals, scientific notation, fractions (``a/b``,
``\\frac{a}{b}``, ``\\frac12``), mixed numbers (``3\\frac{1}{2}``) and repeating
decimals (``0.\\overline{3}``, ``0.1\\bar{6}``, ``0.(3)``) into a `Fraction`. Anything else
returns None and goes to the symbolic path. Digit counts and exponents are bounded
so a hostile literal cannot make this slow.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Number", "parse_number"]

MAX_DIGITS = 4000  # Python refuses int() on longer strings anyway
MAX_EXPONENT = 400  # 10^400 is bigger than any honest answer

_INT = r"[-+]?\d+"
_DEC = r"[-+]?(?:\d+\.\d*|\.\d+|\d+)"
_DEC_RE = re.compile(rf"^({_DEC})$")
_SCI_RE = re.compile(rf"^({_DEC})\s*(?:[eE]\s*([-+]?\d+)|(?:\\times|\\cdot|\*|x)\s*10\s*\^\s*\{{?\s*([-+]?\d+)\s*\}}?)$")
_POW10_RE = re.compile(r"^([-+]?)10\s*\^\s*\{?\s*([-+]?\d+)\s*\}?$")
_SLASH_RE = re.compile(rf"^({_INT})\s*/\s*(\d+)$")
_FRAC_RE = re.compile(r"^([-+]?)\s*\\frac\s*(?:\{\s*([-+]?\d+)\s*\}|(\d))\s*(?:\{\s*(\d+)\s*\}|(\d))$")
_MIXED_RE = re.compile(r"^([-+]?)(\d+)\s*\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}$")
_REPEAT_RE = re.compile(r"^([-+]?)(\d*)\.(\d*)\s*(?:\\overline\s*\{(\d+)\}|\\bar\s*\{(\d+)\}|\\overline\s*(\d)|\\bar\s*(\d)|\\dot\s*\{?(\d)\}?|\((\d+)\))$")


@dataclass(frozen=True)
class Number:
    value: Fraction
    decimal_places: int | None  # set when written as a terminating decimal (for rounding rules)


def _frac(text: str) -> Fraction | None:
    if len(text) > MAX_DIGITS:
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def _places(text: str) -> int | None:
    return len(text.split(".", 1)[1]) if "." in text else None


def _repeating(match: re.Match) -> Fraction:
    sign, whole, fixed = match.group(1), match.group(2) or "0", match.group(3)
    period = next(g for g in match.groups()[3:] if g)
    base = Fraction(int(whole + fixed), 10 ** len(fixed)) if fixed else Fraction(int(whole))
    repeat = Fraction(int(period), (10 ** len(period) - 1) * 10 ** len(fixed))
    value = base + repeat
    return -value if sign == "-" else value


def _sci(match: re.Match) -> Number | None:
    mantissa = _frac(match.group(1))
    exponent = int(match.group(2) or match.group(3))
    if mantissa is None or abs(exponent) > MAX_EXPONENT:
        return None
    return Number(mantissa * Fraction(10) ** exponent, None)


def parse_number(text: str) -> Number | None:
    """The exact value of a numeric literal, or None if ``text`` is not one."""
    text = text.strip()
    if not text or len(text) > MAX_DIGITS:
        return None
    if m := _DEC_RE.match(text):
        value = _frac(m.group(1))
        return Number(value, _places(m.group(1))) if value is not None else None
    if m := _FRAC_RE.match(text):
        num, den = _frac(m.group(2) or m.group(3)), _frac(m.group(4) or m.group(5))
        if num is None or not den:
            return None
        value = num / den
        return Number(-value if m.group(1) == "-" else value, None)
    if m := _SLASH_RE.match(text):
        num, den = _frac(m.group(1)), _frac(m.group(2))
        return Number(num / den, None) if num is not None and den else None
    if m := _MIXED_RE.match(text):
        whole, num, den = int(m.group(2)), int(m.group(3)), int(m.group(4))
        if not den:
            return None
        value = whole + Fraction(num, den)
        return Number(-value if m.group(1) == "-" else value, None)
    if m := _SCI_RE.match(text):
        return _sci(m)
    if m := _POW10_RE.match(text):
        exponent = int(m.group(2))
        if abs(exponent) > MAX_EXPONENT:
            return None
        value = Fraction(10) ** exponent
        return Number(-value if m.group(1) == "-" else value, None)
    if m := _REPEAT_RE.match(text):
        return Number(_repeating(m), None)
    return None
