"""Find the final answer in a model completion.

Priority, each taking the *last* occurrence in the text:
1. ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces; ``\\boxed 5`` too)
2. "final answer is X" / "final answer: X"
3. GSM8K's ``#### X``
4. ``Answer: X`` (also ``**Answer:**``)
5. the last display/inline math span, when the completion is short
6. the whole completion, when it is short and looks like a bare answer
7. the last number in the text (``last_number_fallback``)
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "extract_candidates", "extract_reference", "last_boxed", "matching_brace"]

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*(\{|\s+\S)")
_FINAL_RE = re.compile(r"final\s+answer\s*(?:is|:|=)?\s*(?:[:=])?\s*", re.IGNORECASE)
_HASH_RE = re.compile(r"####\s*")
_ANSWER_RE = re.compile(r"(?:^|[\s*_>])answer\s*\**\s*[:：]\s*\**", re.IGNORECASE)
_SPAN_RES = (
    re.compile(r"\$\$(.+?)\$\$", re.DOTALL),
    re.compile(r"\\\[(.+?)\\\]", re.DOTALL),
    re.compile(r"\\\((.+?)\\\)", re.DOTALL),
    re.compile(r"(?<![\\$])\$([^$]+?)\$"),
)
_NUMBER_RE = re.compile(r"-?\d+/\d+(?![\d.])|-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?|-?\.\d+")
_PROSE_RE = re.compile(r"(?<![\\a-zA-Z])[A-Za-z]{2,}\s+[A-Za-z]{2,}")  # two plain words: a sentence
_SHORT = 60  # a completion this short with no marker may be the bare answer
_BARE_RE = re.compile(r"^[\w\s\\{}()\[\]^_+\-*/.,=<>|!:;'$%°−·×÷√π∞]+$")


@dataclass(frozen=True)
class Extraction:
    answer: str  # the raw answer text (not yet normalized)
    method: str  # which rule found it: boxed, final_answer, hashes, answer_colon, math_span, whole, last_number


def matching_brace(text: str, open_index: int) -> int:
    """Index of the brace closing the one at ``open_index``; -1 if unbalanced."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "{}":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{}``/``\\fbox{}``; None if there is none."""
    for match in reversed(list(_BOX_RE.finditer(text))):
        if match.group(1) == "{":
            end = matching_brace(text, match.end() - 1)
            if end != -1:
                return text[match.end() : end]
        else:
            token = match.group(1).strip()
            rest = text[match.end() :]
            tail = re.match(r"[^\s$.,;]*", rest)
            return token + (tail.group(0) if tail else "")
    return None


def _after_marker(text: str, regex: re.Pattern) -> str | None:
    matches = list(regex.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].strip()
    line = rest.split("\n", 1)[0].strip()
    if line.startswith("$$") or line.startswith("\\["):
        inner = _first_span(rest)
        if inner is not None:
            return inner
    boxed = last_boxed(line)
    if boxed is not None:
        return boxed
    span = _first_span(line)
    if span is not None and span.strip():
        return span.strip()
    # a sentence ends at ". " / final "." but not at a decimal point
    line = re.split(r"(?<!\d)\.(?:\s|$)|\.\s+(?=[A-Z])", line, maxsplit=1)[0]
    line = line.strip().rstrip(".").strip()
    return line or None


def _first_span(text: str) -> str | None:
    for regex in _SPAN_RES:
        match = regex.search(text)
        if match:
            return match.group(1)
    return None


def _last_span(text: str) -> str | None:
    best, best_end = None, -1
    for regex in _SPAN_RES:
        for match in regex.finditer(text):
            if match.end() > best_end:
                best, best_end = match.group(1), match.end()
    return best


def _last_number(text: str) -> str | None:
    numbers = _NUMBER_RE.findall(text)
    return numbers[-1] if numbers else None


def extract_candidates(text: str, last_number_fallback: bool = True) -> list[Extraction]:
    """Answer candidates in priority order; the verifier uses the first one that parses.

    A boxed answer is definitive: when there is one, it is the only candidate.
    """
    boxed = last_boxed(text)
    if boxed is not None:
        return [Extraction(boxed, "boxed")]
    found: list[Extraction] = []
    for regex, method in ((_FINAL_RE, "final_answer"), (_HASH_RE, "hashes"), (_ANSWER_RE, "answer_colon")):
        answer = _after_marker(text, regex)
        if answer:
            found.append(Extraction(answer, method))
            break
    stripped = text.strip()
    if not found and len(stripped) <= _SHORT and _BARE_RE.match(stripped) and not _PROSE_RE.search(stripped):
        found.append(Extraction(stripped, "whole"))
    span = _last_span(text) if not found or found[0].method == "whole" else None
    if span is not None and span.strip():
        found.append(Extraction(span, "math_span"))
    if last_number_fallback:
        tail = found[0].answer if found and found[0].method != "whole" else text
        number = _last_number(tail) or (_last_number(text) if not found else None)
        if number is not None:
            found.append(Extraction(number, "last_number"))
    return found


def extract_reference(reference: str) -> str:
    """A reference is the gold answer itself, possibly boxed or wrapped in ``$``."""
    boxed = last_boxed(reference)
    if boxed is not None:
        return boxed
    return reference
