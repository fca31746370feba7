"""Find the final answer in a model completion.

Priority:
1. ``\\boxed{...}`` / ``\\fbox{...}``: the last one wins ("\\boxed{3} ... corrected:
   \\boxed{4}" is 4), but boxes separated only by connectors ("\\boxed{1} and
   \\boxed{2}") form one list answer; a "final answer is" line after the last box wins;
2. "final answer is X" / "final answer: X", GSM8K's ``#### X``, ``Answer: X``;
3. without a marker: a short bare completion as a whole, else the last math span
   (``$...$``, ``\\(...\\)``, ``\\[...\\]``) or the last number, whichever comes later;
4. the last number (``last_number_fallback``) as a fallback candidate.

The verifier takes the first candidate that parses. All scanning is linear-time.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from verifiers.latex_text import boxes as find_boxes, unwrap_box

__all__ = ["Extraction", "extract_candidates", "extract_reference", "last_boxed"]

_FINAL_RE = re.compile(r"final\s+answer\s*(?:is|:|=)?\s*(?:[:=])?\s*", re.IGNORECASE)
_HASH_RE = re.compile(r"####\s*")
_ANSWER_RE = re.compile(r"(?:^|[\s*_>])answer\s*\**\s*[:：]\s*\**", re.IGNORECASE)
_MARKERS = ((_FINAL_RE, "final_answer"), (_HASH_RE, "hashes"), (_ANSWER_RE, "answer_colon"))
# (opener, closer, may span lines); found by `_delimited` in linear time, since a regex
# like \\\[(.+?)\\\] rescans to the end for every unclosed opener (quadratic).
_DELIMITERS = (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False))
_INLINE_DOLLAR_RE = re.compile(r"(?<![\\$])\$((?:[^$\n\\]|\\.)+?)\$")
_NUMBER_RE = re.compile(r"-?\d+/\d+(?!\d|\.\d)|-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?%?|-?\.\d+%?")
_PROSE_RE = re.compile(  # two plain words in a row, or three anywhere: a sentence, not an answer
    r"(?<![\\a-zA-Z])[A-Za-z]{2,}\s+[A-Za-z]{2,}|(?:(?<![\\a-zA-Z])[A-Za-z]{2,}(?![A-Za-z]).*){3}"
)
_SHORT = 60  # a completion this short with no marker may be the bare answer
_BARE_RE = re.compile(r"^[\w\s\\{}()\[\]^_+\-*/.,=<>|!:;'%°−·×÷√π∞]+$")
_GAP_NOISE_RE = re.compile(r"\\text\{[^{}]{0,40}\}|\\q?quad|\\[,;:! ]|\$|\\[()\[\]]|[\s,;&+.]|\\\\|\band\b|\bor\b")
_GAP_STOP_RE = re.compile(r"wait|correct|actual|instead|but\b|however|therefore|thus|hence|final|answer|mistake|error|again|\bso\b|\bno\b|\.\.\.", re.IGNORECASE)
_MAX_GAP = 40
_MAX_UNCLOSED = 200  # an unclosed last box takes the rest of the text, if that is short


@dataclass(frozen=True)
class Extraction:
    answer: str  # the raw answer text (not yet normalized)
    method: str  # which rule found it


def _is_connector(gap: str) -> bool:
    if len(gap) > 200 or "\n\n" in gap or _GAP_STOP_RE.search(gap):
        return False
    return len(_GAP_NOISE_RE.sub("", gap)) <= _MAX_GAP


def _last_box_group(text: str, boxes: list[tuple[int, int, str]]) -> str:
    """The last box, joined with the boxes before it that only connectors separate."""
    group = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        if not _is_connector(text[box[1] : group[0][0]]):
            break
        group.insert(0, box)
    contents = [unwrap_box(content) for _, _, content in group]
    return ", ".join(content for content in contents if content.strip()) or contents[-1]


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{}``/``\\fbox{}`` (or box list); None if none."""
    found = find_boxes(text, _MAX_UNCLOSED)
    return _last_box_group(text, found) if found else None


def _delimited(text: str, opener: str, closer: str, multiline: bool) -> list[tuple[int, str]]:
    """Non-overlapping opener...closer spans, leftmost first, as (end, content)."""
    closers = [m.start() for m in re.finditer(re.escape(closer), text)]
    newlines = [] if multiline else [m.start() for m in re.finditer("\n", text)]
    found, position = [], 0
    while True:
        start = text.find(opener, position)
        if start == -1:
            return found
        inner = start + len(opener)
        k = bisect.bisect_left(closers, inner + 1 if opener == closer else inner)
        if k == len(closers):
            return found
        end = closers[k]
        if newlines and bisect.bisect_left(newlines, inner) < bisect.bisect_left(newlines, end):
            position = inner  # this opener's span would cross a line: skip it
            continue
        found.append((end + len(closer), text[inner:end]))
        position = end + len(closer)


def _spans(text: str) -> list[tuple[int, str]]:
    """(end position, content) of every math span."""
    spans = [span for delimiters in _DELIMITERS for span in _delimited(text, *delimiters)]
    return spans + [(m.end(), m.group(1)) for m in _INLINE_DOLLAR_RE.finditer(text)]


def _latest_math(text: str) -> list[Extraction]:
    """The last math span and the last number, the later-ending one first."""
    spans = [s for s in _spans(text) if s[1].strip()]
    numbers = [(m.end(), m.group(0)) for m in _NUMBER_RE.finditer(text)]
    out = []
    if spans:
        out.append((max(spans)[0], Extraction(max(spans)[1].strip(), "math_span")))
    if numbers:
        out.append((numbers[-1][0], Extraction(numbers[-1][1], "last_number")))
    return [e for _, e in sorted(out, key=lambda pair: -pair[0])]


def _marker_answers(line: str, method: str) -> list[Extraction]:
    line = line.strip().strip('"').replace('\\"', "").strip()
    line = re.split(r"(?<!\d)\.(?:\s|$)|\.\s+(?=[A-Z])", line.strip(), maxsplit=1)[0].strip().rstrip(".")
    if not line:
        return []
    boxed = last_boxed(line)
    if boxed is not None:
        return [Extraction(boxed, method)]
    if not _PROSE_RE.search(line.replace("\\text", "")):
        whole = re.fullmatch(r"\$+([^$]+)\$+|\\[(\[](.+)\\[)\]]", line)
        return [Extraction((whole.group(1) or whole.group(2)).strip() if whole else line, method)]
    return [Extraction(e.answer, method) for e in _latest_math(line)]


def _after_marker(text: str) -> tuple[int, list[Extraction]]:
    for regex, method in _MARKERS:
        matches = list(regex.finditer(text))
        if matches:
            rest = text[matches[-1].end() :].lstrip()
            if rest.startswith("$$") or rest.startswith("\\["):
                spans = _spans(rest[: rest.find("\n\n") if "\n\n" in rest else len(rest)])
                if spans:
                    return matches[-1].start(), [Extraction(min(spans)[1].strip(), method)]
            return matches[-1].start(), _marker_answers(rest.split("\n", 1)[0], method)
    return -1, []


def extract_candidates(text: str, last_number_fallback: bool = True) -> list[Extraction]:
    """Answer candidates in priority order; the verifier uses the first one that parses."""
    boxes = find_boxes(text, _MAX_UNCLOSED)
    marker_at, marked = _after_marker(text)
    if boxes and not (marked and marked[0].method == "final_answer" and marker_at > boxes[-1][1]):
        return [Extraction(_last_box_group(text, boxes), "boxed")]
    found = list(marked)
    stripped = text.strip()
    bare = len(stripped) <= _SHORT and _BARE_RE.match(stripped) and not _PROSE_RE.search(stripped)
    if not found and bare and "$" not in stripped and "\\(" not in stripped and "\\[" not in stripped:
        found.append(Extraction(stripped, "whole"))
    if not found or found[0].method == "whole":
        found.extend(e for e in _latest_math(text) if last_number_fallback or e.method != "last_number")
    elif last_number_fallback and found[0].method != "whole":
        numbers = _NUMBER_RE.findall(found[0].answer)
        if numbers and numbers[-1] != found[0].answer:
            found.append(Extraction(numbers[-1], "last_number"))
    return found


def extract_reference(reference: str) -> str:
    """A reference is the gold answer itself, possibly boxed or wrapped in ``$``.

    A reference that is a whole worked solution (prose with a "final answer" line) is
    read like a completion.
    """
    boxed = last_boxed(reference)
    if boxed is not None:
        return boxed
    if len(reference) > _SHORT and _PROSE_RE.search(reference):
        _, marked = _after_marker(reference)
        if marked:
            return marked[0].answer
    return reference
