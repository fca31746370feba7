"""Answer and reference forms that state a value around it, reduced to the value.

String rules, each linear-time, applied after `normalize` has cleaned the LaTeX:

* a multiple-choice letter with its value, ``(B) 12`` -> letter B, value 12
  (`choice_with_value`; the verifier accepts either);
* an exact value with its approximation, ``\\frac{\\sqrt2}{2} \\approx 0.7071``
  (`approximation`; the verifier accepts either side);
* a dangling degree mark, ``60^`` -> ``60``;
* set-builder notation, ``\\{x \\mid x \\geq 3\\}`` / ``\\{x \\in \\mathbb{R} : x > 2\\}``
  -> its condition, which compares as the set it describes;
* a quantifier tail, ``f(x) = 3x for all x \\in \\mathbb{R}`` -> ``f(x) = 3x``;
* ``\\bmod`` -> ``\\mod``; a remark in parentheses at the end (``7 (seven)``), a
  ``radians`` unit, a number word (``three``);
* trigonometric functions of angles in degrees, ``\\sin 30^\\circ`` -> ``\\sin(30\\pi/180)``
  (`trig_degrees`, run before degree marks are dropped).
"""
from __future__ import annotations

import re

from verifiers.latex_text import split_top_level
from verifiers.math.markers import has_words

__all__ = ["choice_with_value", "approximation", "reduce_forms", "trig_degrees"]

_CHOICE_VALUE_RE = re.compile(r"^\(([A-J])\)\s*[.:]?\s*(\S.*)$|^([A-J])[).:]\s*(\S.*)$", re.DOTALL)
_DANGLING_DEGREE_RE = re.compile(r"(?<=\d)\s*\^\s*(?:\{\s*\})?$")
_SET_VARIABLE_RE = re.compile(r"^\s*[A-Za-z](?:_\{?\w+\}?)?\s*(?:\\in\s*\\mathbb\s*\{?[RZNQC]\}?\s*)?$")
_FORALL_RE = re.compile(r"(?:\\forall|\bfor\s+(?:all|every|any|each)\b|\bwhere\b|\bfor\s+[a-z]\s*\\in).*$", re.DOTALL)
_REMARK_RE = re.compile(r"\(([^()]{0,80})\)$")
_RADIANS_RE = re.compile(r"\s*\b(?:radians?|rad)\b\.?$")
_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
                 "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty")
_TRIG_RE = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![a-z])")
_TRIG_DEGREE_RE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*\^\s*\{?\s*\\circ\s*\}?")


def choice_with_value(text: str) -> tuple[str, str] | None:
    """``(B) 12`` -> ("B", "12"); None for anything else (``(2, 3)`` included)."""
    match = _CHOICE_VALUE_RE.match(text.strip())
    if not match:
        return None
    letter, value = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    return letter, value.strip()


def approximation(text: str) -> tuple[str, str] | None:
    """``<exact> \\approx <decimal>`` -> (exact, decimal); None without ``\\approx`` or when
    the left side is a name (``x \\approx 2`` states a value for x)."""
    if "\\approx" not in text:
        return None
    left, right = (part.strip() for part in text.split("\\approx", 1))
    if not left or not right or "=" in left or re.fullmatch(r"\\?[A-Za-z]+(?:_\{?\w+\}?)?", left):
        return None
    return left, right


def _set_builder(text: str) -> str:
    if not (text.startswith("\\{") and text.endswith("\\}")):
        return text
    inner = text[2:-2]
    for separator in ("|", ":"):
        parts = split_top_level(inner, separator)
        if len(parts) >= 2 and _SET_VARIABLE_RE.match(parts[0]):
            return separator.join(parts[1:]).strip()
    return text


def _remark(text: str) -> str:
    """``7 (seven)``, ``\\frac{\\sqrt3}{2} (or about 0.866)`` -> the value before the remark."""
    match = _REMARK_RE.search(text)
    if match and match.start() > 0 and has_words(match.group(1)):
        return text[: match.start()].rstrip()
    return text


def reduce_forms(text: str) -> str:
    """The value an answer states, with the forms above removed."""
    if text.lower() in _NUMBER_WORDS:
        return str(_NUMBER_WORDS.index(text.lower()))
    if text.endswith(")"):
        text = _remark(text)
    if "radian" in text:
        text = _RADIANS_RE.sub("", text).strip() or text
    if "\\bmod" in text:
        text = text.replace("\\bmod", "\\mod ")
    text = _DANGLING_DEGREE_RE.sub("", text)
    if "for" in text or "where" in text:
        text = _FORALL_RE.sub("", text).strip().rstrip(",;").strip() or text
    if "\\{" in text:
        text = _set_builder(text)
    return text


def trig_degrees(text: str) -> str:
    """``\\cos 60^\\circ`` -> ``\\cos (60\\pi/180)``: degrees inside trigonometric functions
    become radians (elsewhere a degree mark is only a unit and is dropped)."""
    if not _TRIG_RE.search(text):
        return text
    return _TRIG_DEGREE_RE.sub(lambda m: f"({m.group(1)}\\pi/180)", text)
