"""String-level clean-up of an answer before it is compared or parsed.

Everything here is a linear-time regex or replace: it runs before any sympy work and
on hostile input (100k characters, NUL bytes) it stays cheap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from verifiers.latex_text import closing_braces
from verifiers.math.answer_forms import reduce_forms, trig_degrees

__all__ = ["Normalized", "normalize_answer", "strip_text_wrappers"]

_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "\\times ", "\u00f7": "/", "\u00b7": "\\cdot ",
    "\u221a": "\\sqrt", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u2264": "\\leq ", "\u2265": "\\geq ",
    "\u2260": "\\neq ", "\u00b0": "^\\circ", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u222a": "\\cup ",
    "\u2229": "\\cap ", "\u00b1": "\\pm ", "\uff0c": ",", "\u2208": "\\in ",
}
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DROP = (
    "\\displaystyle", "\\textstyle", "\\scriptstyle", "\\left.", "\\right.", "\\!", "\\,", "\\;", "\\:",
    "\\quad", "\\qquad", "\\limits", "\\nolimits", "\\bigl", "\\bigr", "\\Bigl", "\\Bigr", "\\big", "\\Big",
)
_RENAME = (
    ("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\cfrac", "\\frac"), ("\\dbinom", "\\binom"),
    ("\\tbinom", "\\binom"), ("\\le ", "\\leq "), ("\\ge ", "\\geq "), ("\\leqslant", "\\leq"),
    ("\\geqslant", "\\geq"), ("\\lbrace", "\\{"), ("\\rbrace", "\\}"), ("\\lbrack", "["), ("\\rbrack", "]"),
    ("\\lvert", "|"), ("\\rvert", "|"), ("\\vert", "|"), ("\\mid", "|"), ("\\ne ", "\\neq "),
    ("<=", "\\leq "), (">=", "\\geq "), ("!=", "\\neq "), ("\\lt ", "<"), ("\\gt ", ">"),
    ("\\emptyset", "\\varnothing"), ("\\infinity", "\\infty"), ("\\dots", "\\ldots"), ("\\cdots", "\\ldots"),
)
_LEFT_RIGHT_RE = re.compile(r"\\(?:left|right|bigg?l?r?|Bigg?l?r?)(?=[\\(\[\]|)\{\}.<>])")
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|textrm|mbox|mathrm|mathbf|mathit|operatorname|textnormal|mathsf|rm|bf)\s*\{")
_DEGREE_RE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}")
_PERCENT_RE = re.compile(r"\s*(?:\\%|%|\\text\{\s*%\s*\}|\bpercent(?:age)?\b|\bpct\b)\s*")
_THOUSANDS_BRACE_RE = re.compile(r"(\d)\{,\}(\d)")
_THOUSANDS_RE = re.compile(r"^(-?[1-9]\d{0,2}(?:,\d{3})+)(?=\.\d+$|$)")  # only a whole-answer number
_THOUSANDS_SPACE_RE = re.compile(r"^(-?[1-9]\d{0,2}(?: \d{3})+)(?=\.\d+$|$)")
_THOUSANDS_THIN_RE = re.compile(r"(\d),\\!\s*(?=\d{3})")  # 11,\!111
_DOUBLED_RE = re.compile(r"(?<!\\)\\\\(?=[A-Za-z])")
_DOLLAR_RE = re.compile(r"\\\$|\$")
_UNIT_WORDS = (
    "cm|mm|km|m|kg|g|mg|lb|lbs|pounds?|ounces?|oz|inch(?:es)?|in|feet|foot|ft|yards?|yd|miles?|mi|meters?|"
    "centimeters?|millimeters?|kilometers?|grams?|kilograms?|liters?|litres?|l|ml|gallons?|seconds?|sec|s|"
    "minutes?|min|hours?|hrs?|h|days?|weeks?|months?|years?|dollars?|cents?|units?|degrees?|deg|"
    "square|sq|cubic|per|sq\\.|mph|km/h|m/s|cm\\^2|m\\^2|cm\\^3|m\\^3|people|students|apples|ways|times|"
    "points?|percent"
)
_UNIT_TAIL_RE = re.compile(rf"(?<=[\d}}])\s*(?:\\text\{{[^{{}}]*\}}|(?:\b(?:{_UNIT_WORDS})\b\.?\s*(?:\^?\{{?[23]\}}?)?\s*)+)\s*$")
_TRAILING_RE = re.compile(r"[\s.;,]+$")
_SPACES_RE = re.compile(r"\s+")


@dataclass(frozen=True)
class Normalized:
    text: str  # cleaned LaTeX
    percent: bool  # a percent sign (or word) was removed


def _replace_text_commands(text: str) -> str:
    """``\\text{abc}`` -> ``abc`` (balanced braces; bounded work)."""
    for _ in range(50):
        match = _TEXT_CMD_RE.search(text)
        if not match:
            break
        end = closing_braces(text).get(match.end() - 1, -1)
        if end == -1:
            text = text[: match.start()] + text[match.end() :]
            continue
        text = text[: match.start()] + text[match.end() : end] + text[end + 1 :]
    return text


def strip_text_wrappers(text: str) -> str:
    return _replace_text_commands(text)


def normalize_answer(raw: str) -> Normalized:
    text = _CONTROL_RE.sub("", raw)
    for src, dst in _UNICODE.items():
        if src in text:
            text = text.replace(src, dst)
    text = _THOUSANDS_THIN_RE.sub(r"\1", text)
    text = _LEFT_RIGHT_RE.sub("", text)
    for token in _DROP:
        text = text.replace(token, " ")
    for src, dst in _RENAME:
        text = text.replace(src, dst)
    text = _DOLLAR_RE.sub("", text)
    if "\\\\" in text:
        text = _DOUBLED_RE.sub(r"\\", text)  # \\frac: an over-escaped command
        if "\\begin" not in text:
            text = text.replace("\\\\", " ")  # a line break outside a matrix separates nothing
    text = _UNIT_TAIL_RE.sub("", text.strip())
    text = _replace_text_commands(text)
    text = _DEGREE_RE.sub("", trig_degrees(text))
    text, n_percent = _PERCENT_RE.subn("", text)
    text = _THOUSANDS_BRACE_RE.sub(r"\1\2", text)
    text = _UNIT_TAIL_RE.sub("", text.strip())
    text = _SPACES_RE.sub(" ", text).strip()
    text = _TRAILING_RE.sub("", text)
    text = _THOUSANDS_RE.sub(lambda m: m.group(1).replace(",", ""), text)
    text = _THOUSANDS_SPACE_RE.sub(lambda m: m.group(1).replace(" ", ""), text)
    return Normalized(reduce_forms(text), n_percent > 0)
