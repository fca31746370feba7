"""Small built-in verifiers: ``exact``, ``choice`` and ``format``.

    >>> from verifiers import get_verifier
    >>> get_verifier("exact").verify(completion="<answer> Paris. </answer>", reference="paris").reason
    'correct'
    >>> get_verifier("choice").verify(completion="The answer is (C).", reference="C").reward
    1.0
    >>> get_verifier("format").verify(completion="<think>hm</think> <answer>4</answer>", reference=None).reason
    'correct'

None of them raises on model output: ``None``, non-strings, NUL bytes and very long
completions give a zero-reward verdict with a reason. Every built-in scan is linear in
the completion length (brace matching is one pass; regexes have no nested quantifiers
and the cue-phrase parser only looks at a bounded window). A user-supplied ``pattern``
is the one exception: its cost is the user's regex's cost, bounded by the runtime's
per-sample deadline.

Reasons: ``correct``, ``wrong_answer``, ``no_answer`` (nothing to compare: empty or
``None`` completion, or no answer could be extracted), ``ambiguous`` (``choice``: the
final answer names more than one letter), ``bad_format`` (``format``),
``bad_reference`` (the reference is missing or unusable), ``bad_input`` (the
completion is not a string).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from verifiers.base import BaseVerifier, Verdict
from verifiers.latex_text import closing_braces, last_box
from verifiers.registry import register

__all__ = ["ExactVerifier", "ChoiceVerifier", "FormatVerifier", "extract_answer", "normalize_text"]

_BOXED_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT_WRAP = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_MATH_DELIMS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


# -- shared text helpers ----------------------------------------------------------------------
def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``), else None."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    return last_box(text)


def last_tag(text: str, tag: str = "answer") -> str | None:
    """Content of the last closed ``<tag>...</tag>`` pair, else None."""
    close = text.rfind(f"</{tag}>")
    if close < 0:
        return None
    open_ = text.rfind(f"<{tag}>", 0, close)
    return None if open_ < 0 else text[open_ + len(tag) + 2:close]


def _last_regex(text: str, pattern: str) -> str | None:
    last = None
    for last in re.finditer(pattern, text, re.DOTALL):
        pass
    if last is None:
        return None
    return last.group(1) if last.re.groups else last.group(0)


_EXTRACTORS: dict[str, Callable[[str, str], str | None]] = {
    "answer_tag": lambda text, _: last_tag(text),
    "boxed": lambda text, _: last_boxed(text),
    "regex": _last_regex,
    "none": lambda text, _: text,
}


def extract_answer(text: str, how: str = "auto", pattern: str = "") -> str | None:
    """The answer part of ``text``: ``auto`` tries ``<answer>``, then the last
    ``\\boxed{}``, then the whole text; the other modes are in ``_EXTRACTORS``."""
    if how == "auto":
        for mode in ("answer_tag", "boxed", "none"):
            found = _EXTRACTORS[mode](text, pattern)
            if found is not None:
                return found
        return None
    return _EXTRACTORS[how](text, pattern)


def _strip_delimiters(text: str) -> str:
    for left, right in _MATH_DELIMS:
        if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left):len(text) - len(right)].strip()
    return text


def _unwrap_boxed(text: str) -> str:
    m = _BOXED_OPEN.match(text)
    if m and closing_braces(text).get(m.end() - 1) == len(text) - 1:
        return text[m.end():-1].strip()
    return text


def normalize_text(text: str, case_sensitive: bool = False) -> str:
    """Strip, collapse whitespace, drop surrounding ``$``/``\\(\\)``, ``\\text{}``
    wrappers, a whole-string ``\\boxed{}`` and a trailing period; casefold unless asked."""
    text = " ".join(text.split())
    for _ in range(4):  # peel nested wrappers such as "$\text{Paris}$."
        before = text
        text = text.rstrip(".").strip()
        text = _unwrap_boxed(_strip_delimiters(text))
        text = _TEXT_WRAP.sub(r"\1", text).strip()
        if text == before:
            break
    return text if case_sensitive else text.casefold()


def _check_completion(completion: Any) -> Verdict | None:
    """A zero verdict for completions that are not text, else None."""
    if completion is None:
        return Verdict(0.0, "no_answer", {"error": "completion is None"})
    if not isinstance(completion, str):
        return Verdict(0.0, "bad_input", {"error": f"completion is {type(completion).__name__}, not str"})
    return None


def _reference_texts(reference: Any) -> list[str] | None:
    """References as strings: a string, a number, or a list/tuple of acceptable answers."""
    items = list(reference) if isinstance(reference, (list, tuple)) else [reference]
    if not items or any(isinstance(r, bool) or not isinstance(r, (str, int, float)) for r in items):
        return None
    return [str(r) for r in items]


# -- exact --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExactOptions:
    case_sensitive: bool = False  # compare case-sensitively after normalization
    extract: str = "auto"  # auto | answer_tag | boxed | regex | none (compare the whole completion)
    pattern: str = ""  # regex for extract=regex (last match; group 1 if it has groups); implies regex under auto

    def __post_init__(self) -> None:
        if self.extract not in ("auto", *_EXTRACTORS):
            raise ValueError(f"extract must be one of auto, {', '.join(_EXTRACTORS)}; got {self.extract!r}")
        if self.extract == "regex" and not self.pattern:
            raise ValueError("extract='regex' needs a pattern option")
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regex: {exc}") from None


@register("exact")
class ExactVerifier(BaseVerifier):
    """Normalized string match of the extracted answer against the reference
    (or any of a list of references)."""

    Options = ExactOptions

    def verify(self, *, completion: Any, reference: Any, **fields: Any) -> Verdict:
        bad = _check_completion(completion)
        if bad is not None:
            return bad
        refs = _reference_texts(reference)
        if refs is None:
            return Verdict(0.0, "bad_reference", {"error": f"unusable reference of type {type(reference).__name__}"})
        opts = self.options
        how = "regex" if opts.pattern and opts.extract == "auto" else opts.extract
        answer = extract_answer(completion, how, opts.pattern)
        if answer is None or not answer.strip():
            return Verdict(0.0, "no_answer", {"extract": how})
        got = normalize_text(answer, opts.case_sensitive)
        details = {"extracted": got[:200]}
        if any(got == normalize_text(r, opts.case_sensitive) for r in refs):
            return Verdict(1.0, "correct", details)
        return Verdict(0.0, "wrong_answer", details)


# -- choice -------------------------------------------------------------------------------------
_CUE = re.compile(r"(?i)\b(?:answer|option|choice)\b")
_FILLER = re.compile(r"(?i)^\s*(?:is|would be|should be|will be|must be|[:=\-])?\s*(?:is|[:=\-])?\s*(?:option|choice)?\s*")
_LEAD_LETTER = re.compile(r"\(?([A-Za-z])(?![A-Za-z])(\)?)([.:)]?)")
_MARKED = re.compile(r"\(([A-Z])\)|\*\*([A-Z])\*\*|\[([A-Z])\]")
_SPAN_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}|[*$]|\\[()\[\]]")


def _clean_span(span: str) -> str:
    return _SPAN_WRAP.sub(lambda m: m.group(1) or "", span).strip()


def _lead_letter(span: str) -> tuple[str, int] | None:
    """The letter a short answer span starts with (``C``, ``(c)``, ``C) 42``, ``c.``) and
    where it ends. A lowercase letter counts only when marked (parenthesized, followed
    by ``)``/``.``/``:``, or alone), so "the answer is a triangle" yields nothing."""
    m = _LEAD_LETTER.match(span)
    if not m:
        return None
    letter, closing, punct = m.groups()
    if letter.isupper() or closing or punct or m.end() == len(span):
        return letter.upper(), m.end()
    return None


def _span_letters(span: str) -> list[str]:
    """Letters named by a final-answer span; more than one distinct letter means ambiguous."""
    span = _clean_span(span)
    lead = _lead_letter(span)
    if lead is not None:
        letter, end = lead
        marked = span[end - 1:end] in (")", ".", ":")
        if marked or not span[end:].strip(" .:;!"):
            return [letter]  # "C", "(C)", "C) 42", "C. 42"
    found = re.findall(r"(?<![A-Za-z\\])([A-Z])(?![A-Za-z])", span)
    return list(dict.fromkeys(([lead[0]] if lead else []) + found))


_LATE_IS = re.compile(r"\bis\s+\(?([A-Z])\)?(?![A-Za-z])")
_ALSO = re.compile(r"\s*(?:,|/|&|or|and)\s*\(?([A-Z])\)?(?![A-Za-z])")


def _cue_letters(text: str) -> list[str] | None:
    """Letters after the last cue phrase ("answer is", "Answer:", "option") that names one;
    "A or B" / "A, C" right after the letter makes it ambiguous."""
    for m in reversed(list(_CUE.finditer(text))):
        window = text[m.end():m.end() + 60].split("\n", 1)[0]
        window = _clean_span(_FILLER.sub("", window, count=1))
        lead = _lead_letter(window)
        if lead is None:  # "Answer: the correct one is C"
            late = _LATE_IS.search(window)
            lead = (late.group(1), late.end()) if late else None
        if lead is not None:
            also = _ALSO.match(window, lead[1])
            return list(dict.fromkeys([lead[0], also.group(1)])) if also else [lead[0]]
    return None


def _last_line_letter(text: str) -> list[str] | None:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return None
    line = _clean_span(lines[-1])
    lead = _lead_letter(line)
    if lead is None or line[lead[1]:].strip(" .:;!"):
        return None
    return [lead[0]]


def _marked_letters(text: str) -> list[str] | None:
    found = [next(g for g in m.groups() if g) for m in _MARKED.finditer(text)]
    return list(dict.fromkeys(found)) or None


def choice_letters(text: str) -> tuple[list[str], str]:
    """The letters a completion chooses and where they were found, by priority."""
    for source, span in (("boxed", last_boxed(text)), ("answer_tag", last_tag(text))):
        if span is not None:
            return _span_letters(span), source
    for source, finder in (("cue", _cue_letters), ("last_line", _last_line_letter), ("marked", _marked_letters)):
        letters = finder(text)
        if letters:
            return letters, source
    return [], "none"


@dataclass(frozen=True)
class ChoiceOptions:
    letters: str = "ABCDEFGHIJ"  # the valid option letters; integer references index into them (0-based)

    def __post_init__(self) -> None:
        if not self.letters or not self.letters.isalpha() or len(set(self.letters.upper())) != len(self.letters):
            raise ValueError(f"letters must be distinct letters such as 'ABCDE', got {self.letters!r}")


@register("choice")
class ChoiceVerifier(BaseVerifier):
    """Multiple-choice letter match: "The answer is (C)", "**C**", "\\boxed{C}", "Answer: c)"."""

    Options = ChoiceOptions

    def _reference_letter(self, reference: Any) -> str | None:
        valid = self.options.letters.upper()
        if isinstance(reference, int) and not isinstance(reference, bool):
            return valid[reference] if 0 <= reference < len(valid) else None
        if not isinstance(reference, str):
            return None
        letters = _span_letters(reference.strip()[:40])
        return letters[0] if len(letters) == 1 and letters[0] in valid else None

    def verify(self, *, completion: Any, reference: Any, **fields: Any) -> Verdict:
        bad = _check_completion(completion)
        if bad is not None:
            return bad
        ref = self._reference_letter(reference)
        if ref is None:
            return Verdict(0.0, "bad_reference", {"error": f"reference {str(reference)[:40]!r} is not one of {self.options.letters}"})
        letters, source = choice_letters(completion)
        details = {"extracted": "".join(letters)[:20], "source": source}
        if not letters:
            return Verdict(0.0, "no_answer", details)
        if len(letters) > 1:
            return Verdict(0.0, "ambiguous", details)
        return Verdict(1.0, "correct", details) if letters[0] == ref else Verdict(0.0, "wrong_answer", details)


# -- format -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FormatOptions:
    pattern: str = ""  # regex the whole completion must match (fullmatch, DOTALL); overrides tags
    tags: tuple[str, ...] = ("think", "answer")  # tags that must appear once each, in order, with only whitespace around
    reward: float = 1.0  # reward for a completion in the right format

    def __post_init__(self) -> None:
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a valid regex: {exc}") from None
        elif not self.tags or not all(re.fullmatch(r"[A-Za-z_][\w.-]*", t) for t in self.tags):
            raise ValueError(f"tags must be tag names such as think,answer; got {self.tags!r}")


def tag_structure_error(text: str, tags: tuple[str, ...]) -> str | None:
    """Why ``text`` is not ``<t1>...</t1> <t2>...</t2> ...`` (whitespace between), else None."""
    pos = 0
    for tag in tags:
        open_, close = f"<{tag}>", f"</{tag}>"
        start = len(text) - len(text[pos:].lstrip()) if pos < len(text) else pos
        if not text.startswith(open_, start):
            return f"expected {open_} at offset {start}"
        end = text.find(close, start + len(open_))
        if end < 0:
            return f"missing {close}"
        inner = text[start + len(open_):end]
        if any(f"<{t}>" in inner or f"</{t}>" in inner for t in tags):
            return f"nested or repeated tags inside <{tag}>"
        pos = end + len(close)
    if text[pos:].strip():
        return f"unexpected text after </{tags[-1]}>"
    return None


@register("format")
class FormatVerifier(BaseVerifier):
    """Rewards completions whose shape matches a regex or a tag structure."""

    Options = FormatOptions

    def verify(self, *, completion: Any, reference: Any = None, **fields: Any) -> Verdict:
        bad = _check_completion(completion)
        if bad is not None:
            return bad
        if self.options.pattern:
            ok = re.fullmatch(self.options.pattern, completion, re.DOTALL) is not None
            problem = None if ok else "does not match pattern"
        else:
            problem = tag_structure_error(completion, tuple(self.options.tags))
        if problem is None:
            return Verdict(float(self.options.reward), "correct")
        return Verdict(0.0, "bad_format", {"problem": problem})
