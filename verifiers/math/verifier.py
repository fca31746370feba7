"""The ``math`` verifier: extract -> normalize -> compare (cheap paths first)."""
from __future__ import annotations

import gc
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterator

from verifiers.base import BaseVerifier, Verdict
from verifiers.latex_text import split_top_level
from verifiers.math.answer_forms import approximation, choice_with_value
from verifiers.math.extract import extract_candidates, extract_reference
from verifiers.math.literal_shapes import compare_shapes
from verifiers.math.literals import Number, parse_number
from verifiers.math.normalize import Normalized, normalize_answer
from verifiers.math.reorder import same_terms
from verifiers.registry import register

__all__ = ["MathVerifier", "MathOptions", "compare_symbolic"]

MAX_INPUT_CHARS = 200_000  # longer completions are cut to their last 200k characters
MAX_ANSWER_CHARS = 10_000  # an extracted final answer longer than this is not an answer
_CHOICE_RE = re.compile(r"^\(?\s*([A-J])\s*\)?[.:]?$")
_CHOICE_PRED_RE = re.compile(r"^\(?\s*([A-Ja-j])\s*\)(?:\s.*)?$|^([A-J])$|^([A-J])[.:]\s", re.DOTALL)
_WORDS_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]*[A-Za-z]$")
_MATH_WORDS = {"pi", "infty", "sqrt", "frac", "sin", "cos", "tan", "log", "ln", "exp"}
_DECIMAL_COMMA_RE = re.compile(r"^(-?\d+),(\d+)$")
_TINY, _TINY_REL = Fraction(1, 1000), Fraction(5, 1000)  # see _numbers_equal


@dataclass(frozen=True)
class MathOptions:
    last_number_fallback: bool = True  # with no marker (boxed, "Answer:", ...), use the last number
    float_rounding: int = 6  # decimal places compared when either side is written as a decimal
    tolerance: float = 0.0  # extra relative tolerance for numbers (0: exact / rounding rules only)
    percent_equivalence: bool = True  # "28%" also matches 0.28 (28 always matches)
    timeout: float = 5.0  # seconds for the symbolic stage of a direct call (workers have their own)

    def __post_init__(self) -> None:
        if not 0 <= self.float_rounding <= 30:
            raise ValueError(f"float_rounding must be in 0..30, got {self.float_rounding}")
        if self.tolerance < 0 or self.timeout <= 0:
            raise ValueError("tolerance must be >= 0 and timeout > 0")


def _numbers_equal(ref: Number, pred: Number, opts: MathOptions) -> bool:
    a, b = ref.value, pred.value
    if a == b:
        return True
    diff, top = abs(a - b), max(abs(a), abs(b))
    if top < _TINY and diff > top * max(Fraction(opts.tolerance), _TINY_REL):
        return False  # below 10^-3 neither six places nor an absolute tolerance tell 1e-8 from 2e-8
    scale = max(top, Fraction(1))
    if opts.tolerance and diff <= Fraction(opts.tolerance) * scale:
        return True
    if ref.decimal_places is not None or pred.decimal_places is not None:
        step = Fraction(1, 10**opts.float_rounding)
        return diff <= step / 2 or diff <= scale * Fraction(1, 10**9)
    return False


def _decimal_comma(text: str) -> str | None:
    match = _DECIMAL_COMMA_RE.match(text)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _is_words(text: str) -> bool:
    return bool(_WORDS_RE.match(text)) and text.lower() not in _MATH_WORDS and " " in text or (
        bool(_WORDS_RE.match(text)) and len(text) > 3 and text.lower() not in _MATH_WORDS
    )


_NAME_RE = re.compile(r"^\\?[A-Za-z]+(?:_\{?\w+\}?)?(?:\(\w\))?$")  # x, \\zzz, a_{1}, f(x)
_AND_RE = re.compile(r"\s+(?:and|or)\s+|(?<=[\d)}])(?:and|or)(?=[A-Za-z\\(])")


def _last_link(text: str) -> str:
    """Reduce chains to what they conclude.

    ``x = 5+5+1 = 11`` -> ``x = 11``; ``1 = y = 0`` -> ``0``; ``x = 1/3 \\approx 0.33`` ->
    ``x = 1/3``; ``x \\approx 11`` -> ``x = 11``; ``p = -1 and p = 2`` -> ``p = -1, p = 2``.
    """
    if "\\approx" in text:
        exact = approximation(text)
        left, right = text.split("\\approx", 1)
        text = exact[0] if exact else left.strip() if "=" in left else f"{left.strip()} = {right.strip()}"
    text = _AND_RE.sub(", ", text)
    if "," in text or "\\{" in text:
        return text
    parts = [p.strip() for p in split_top_level(text, "=")]  # <=, >=, != are \\leq etc. by now
    if len(parts) > 2 and all(parts):
        return f"{parts[0]} = {parts[-1]}" if _NAME_RE.match(parts[0]) else parts[-1]
    return text


def _reference_forms(ref: Normalized) -> list[Normalized]:
    """``<exact> \\approx <decimal>``: both sides are acceptable answers."""
    both = approximation(ref.text)
    return [ref] if both is None else [Normalized(both[0], ref.percent), Normalized(both[1], ref.percent)]


def _set_vs_tuple(a: str, b: str) -> bool:
    """One side a set in braces, the other a tuple in parentheses: ``\\{1, 2\\}`` vs ``(1, 2)``."""
    def kind(text: str) -> str:
        if text.startswith("\\{") and text.endswith("\\}"):
            return "set"
        return "tuple" if text.startswith("(") and text.endswith(")") and "," in text and "=" not in text else ""

    return {kind(a), kind(b)} == {"set", "tuple"}


_SQUASH_RE = re.compile(r"\s+|\\[()]")


_BRACELESS_SQRT_RE = re.compile(r"\\sqrt(\d|[A-Za-z])(?![\dA-Za-z])")  # \sqrt2 = \sqrt{2}
_BRACELESS_FRAC_RE = re.compile(r"\\frac(\d)(\d)(?!\d)")  # \frac12 = \frac{1}{2}
_ANSWER_WORDS = frozenset(("yes", "no", "true", "false", "none", "odd", "even", "never", "always"))


def _squash(text: str) -> str:
    """The same LaTeX up to spacing, delimiters and braces around one-token arguments."""
    text = _SQUASH_RE.sub(lambda m: m.group(0)[-1] if m.group(0).startswith("\\") else "", text)
    if "\\sqrt" in text or "\\frac" in text:
        text = _BRACELESS_FRAC_RE.sub(r"\\frac{\1}{\2}", _BRACELESS_SQRT_RE.sub(r"\\sqrt{\1}", text))
    return text


_ASSIGN_RE = re.compile(r"^([A-Za-z](?:_\{?\w+\}?)?)\s*=\s*(?!.*=)(.+)$")


def _literal_list(text: str) -> tuple[str, list[Number], bool] | None:
    """(assigned name or "", numbers, written as a set) when ``text`` is
    ``[name =] n1, n2, ...`` (or ``\\{n1, n2\\}``) of literals."""
    match = _ASSIGN_RE.match(text)
    name, body = (match.group(1), match.group(2)) if match else ("", text)
    body = body.strip()
    braced = body.startswith("\\{") and body.endswith("\\}")
    if braced:
        body = body[2:-2]
    numbers = [parse_number(item) for item in body.split(",")] if body else []
    if not numbers or any(n is None for n in numbers):
        return None
    return name, numbers, braced


def _distinct(numbers: list[Number]) -> list[Number]:
    """A set's elements: ``\\{1, 1, 2\\}`` is ``\\{1, 2\\}``."""
    seen: dict[Fraction, Number] = {}
    for number in numbers:
        seen.setdefault(number.value, number)
    return list(seen.values())


def compare_symbolic(ref_text: str, pred_text: str, float_rounding: int, relative: float) -> tuple[str, str]:
    """Parse both with sympy and compare. Returns (status, detail); runs under a deadline.

    status: ``equal``, ``different``, ``pred_unparsed``, ``ref_unparsed``, ``too_large``.
    """
    from verifiers.math.equivalence import Tolerance, equivalent
    from verifiers.math.symbolic import ParseFailure, TooLarge, parse_latex

    try:
        ref = parse_latex(ref_text)
    except TooLarge as exc:
        return "too_large", f"reference: {exc}"
    except ParseFailure as exc:
        return "ref_unparsed", str(exc)
    try:
        pred = parse_latex(pred_text)
    except TooLarge as exc:
        return "too_large", str(exc)
    except ParseFailure as exc:
        return "pred_unparsed", str(exc)
    try:
        same = equivalent(ref, pred, Tolerance(float_rounding, relative))
    except RecursionError:
        return "too_large", "expression too deep to compare"
    except Exception as exc:  # sympy raises a zoo of types on odd input
        return "different", f"comparison failed: {type(exc).__name__}"
    return ("equal" if same else "different"), ""


def warm_up_steps() -> Iterator[None]:
    """Small steps that fill the parser's and sympy's caches; worker processes run them
    while idle (see verifiers.worker)."""
    from verifiers.math.symbolic import parse_latex, warm_up_steps as parser_steps

    yield from parser_steps()
    for ref, pred in _WARM_PAIRS:  # the comparison code paths (sympy's own caches)
        compare_symbolic(ref, pred, 6, 0.0)
        yield
    parse_latex.cache_clear()
    # The warmed caches (ANTLR's DFA, sympy's) are some 240k long-lived objects; a full
    # collection walking them paused a call for 150 ms. Frozen objects are not scanned.
    gc.collect()
    gc.freeze()


def warm_up() -> None:
    """Run every warm-up step now (a few seconds; a no-op the second time)."""
    for _ in warm_up_steps():
        pass


_WARM_PAIRS = (
    ("(x+1)^2", "x^2+2x+1"), ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"), ("x \\geq 5", "[5, \\infty)"),
    ("2x+3y=6", "y = 2 - \\frac{2}{3}x"), ("\\{1, 2\\}", "(2, 1)"), ("\\sum_{k=1}^{n} k", "\\sum_{j=1}^{n} j"),
    ("\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", "\\begin{pmatrix}1&2\\\\3&5\\end{pmatrix}"), ("1.5", "\\frac{3}{2}"),
)


@register("math")
class MathVerifier(BaseVerifier):
    """Reward 1.0 when the completion's final answer equals the reference mathematically."""

    Options = MathOptions

    def warm_up(self) -> None:
        """Start the helper process that runs symbolic comparisons and finish its cache
        warm-up now (otherwise it warms up while idle, a few seconds after start)."""
        from verifiers.runtime import call_with_deadline

        call_with_deadline("verifiers.math.verifier:warm_up", (), 120.0)

    def verify(self, *, completion: Any, reference: Any, **fields: Any) -> Verdict:
        if not isinstance(completion, str):
            return Verdict(0.0, "no_answer", {"error": f"completion is {type(completion).__name__}, not text"})
        if reference is None or (isinstance(reference, str) and not reference.strip()):
            return Verdict(0.0, "bad_reference", {"error": "empty reference"})
        ref_text = extract_reference(str(reference)[:MAX_INPUT_CHARS])
        if len(ref_text) > MAX_ANSWER_CHARS:
            return Verdict(0.0, "too_large", {"error": f"reference answer of {len(ref_text)} characters"})
        ref = normalize_answer(ref_text)
        candidates = extract_candidates(completion[-MAX_INPUT_CHARS:], self.options.last_number_fallback)
        if not candidates:
            return Verdict(0.0, "no_answer")
        choice = _CHOICE_RE.match(ref.text)
        lettered = None if choice else choice_with_value(ref.text)  # "(B) 12": the letter or the value
        refs = _reference_forms(Normalized(lettered[1], ref.percent) if lettered else ref)
        last_reason, detail = "parse_error", ""
        for candidate in candidates:
            if len(candidate.answer) > MAX_ANSWER_CHARS:
                return Verdict(0.0, "too_large", {"method": candidate.method, "error": f"answer of {len(candidate.answer)} characters"})
            pred = normalize_answer(candidate.answer)
            details = {"answer": pred.text[:200], "reference": ref.text[:200], "method": candidate.method}
            if not pred.text:
                continue
            if choice or (lettered and _CHOICE_PRED_RE.match(pred.text)):
                return self._choice(choice.group(1) if choice else lettered[0], pred, details)
            outcome, detail = self._compare_forms(refs, pred)
            if outcome in ("equal", "different"):
                return Verdict(1.0, "correct", details) if outcome == "equal" else Verdict(0.0, "wrong_answer", details)
            if outcome in ("ref_unparsed", "too_large", "timeout"):
                last_reason = {"ref_unparsed": "bad_reference"}.get(outcome, outcome)
                return Verdict(0.0, last_reason, {**details, "error": detail})
        return Verdict(0.0, last_reason, {"answer": candidates[0].answer[:200], "error": detail})

    def _compare_forms(self, refs: list[Normalized], pred: Normalized) -> tuple[str, str]:
        """Equal to any form the reference states (an exact value or its approximation)."""
        first = self._compare(refs[0], pred)
        if first[0] == "equal" or len(refs) == 1:
            return first
        later = [self._compare(ref, pred) for ref in refs[1:]]
        return next((outcome for outcome in later if outcome[0] == "equal"), first)

    def _choice(self, letter: str, pred: Normalized, details: dict) -> Verdict:
        match = _CHOICE_PRED_RE.match(pred.text)
        if not match:
            return Verdict(0.0, "wrong_answer", details)
        chosen = next(g for g in match.groups() if g).upper()
        return Verdict(1.0 if chosen == letter else 0.0, "correct" if chosen == letter else "wrong_answer", details)

    def _compare(self, ref: Normalized, pred: Normalized) -> tuple[str, str]:
        if ref.text == pred.text or ref.text.lower() == pred.text.lower() and (
                _is_words(ref.text) or ref.text.lower() in _ANSWER_WORDS):
            return "equal", ""
        if ref.percent == pred.percent and _squash(ref.text) == _squash(pred.text):
            return "equal", ""  # the same LaTeX up to spacing and delimiters
        fast = self._compare_numbers(ref, pred)
        if fast is not None:
            return fast, ""
        if _is_words(ref.text) or _is_words(pred.text):
            return "different", ""
        ref, pred = Normalized(_last_link(ref.text), ref.percent), Normalized(_last_link(pred.text), pred.percent)
        if _squash(ref.text) == _squash(pred.text) or ref.percent == pred.percent and same_terms(ref.text, pred.text):
            return "equal", ""
        if _set_vs_tuple(ref.text, pred.text):
            return "different", ""  # an ordered tuple is not a set (a bare list may be either)
        fast = compare_shapes(ref.text, pred.text, lambda a, b: _numbers_equal(a, b, self.options))
        if fast is None:
            fast = self._compare_number_lists(ref, pred)
        if fast is not None:
            return fast, ""
        return self._compare_symbolic(ref, pred)

    def _compare_number_lists(self, ref: Normalized, pred: Normalized) -> str | None:
        """``x = 11`` vs ``11``, ``1, -2`` vs ``-2,1``: numeric literals need no sympy."""
        ref_items, pred_items = _literal_list(ref.text), _literal_list(pred.text)
        if ref_items is None or pred_items is None:
            return None
        if ref_items[0] and pred_items[0] and ref_items[0] != pred_items[0]:
            return None  # x = 1 vs y = 1: let the symbolic path decide
        ref_numbers, pred_numbers = ref_items[1], pred_items[1]
        if ref_items[2]:  # a set reference: repeated elements count once (a list keeps multiplicities)
            ref_numbers, pred_numbers = _distinct(ref_numbers), _distinct(pred_numbers)
        if len(ref_numbers) != len(pred_numbers):
            return "different"
        remaining = list(pred_numbers)
        for number in ref_numbers:
            match = next((i for i, other in enumerate(remaining) if _numbers_equal(number, other, self.options)), None)
            if match is None:
                return "different"
            del remaining[match]
        return "equal"

    def _compare_numbers(self, ref: Normalized, pred: Normalized) -> str | None:
        ref_num, pred_num = parse_number(ref.text), parse_number(pred.text)
        if pred_num is None and ref_num is not None and (comma := _decimal_comma(pred.text)):
            pred_num = parse_number(comma)
        if ref_num is None and pred_num is not None and (comma := _decimal_comma(ref.text)):
            ref_num = parse_number(comma)
        if ref_num is None or pred_num is None:
            return None
        if _numbers_equal(ref_num, pred_num, self.options):
            return "equal"
        if self.options.percent_equivalence and ref.percent != pred.percent:
            scaled = Number(ref_num.value / 100, None) if ref.percent else Number(ref_num.value * 100, None)
            if _numbers_equal(scaled, pred_num, self.options):
                return "equal"
        return "different"

    def _compare_symbolic(self, ref: Normalized, pred: Normalized) -> tuple[str, str]:
        from verifiers.runtime import DeadlineExceeded, call_with_deadline

        opts = self.options
        try:
            return call_with_deadline(
                "verifiers.math.verifier:compare_symbolic",
                (ref.text, pred.text, opts.float_rounding, opts.tolerance),
                opts.timeout,
            )
        except DeadlineExceeded:
            return "timeout", f"symbolic comparison exceeded {opts.timeout:g}s"
        except RuntimeError as exc:
            return "pred_unparsed", str(exc)[:200]
