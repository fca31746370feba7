"""Find the final answer in a model completion.

Priority:
1. an answer marker after the last box (`markers`: "final answer is", "The answer is:",
   "Answer:", ``####``, a "# Answer" heading with the answer on the next line); the
   last marker that states an answer wins, so a completion that boxes two candidates
   and then says which one is meant gives that one;
2. ``\\boxed{...}`` / ``\\fbox{...}``: the last one wins ("\\boxed{3} ... corrected:
   \\boxed{4}" is 4), but boxes separated only by connectors ("\\boxed{1} and
   \\boxed{2}") form one list answer; a last box cut off by a truncated completion
   takes the rest of the text;
3. with no box, the last marker that states an answer;
4. without a marker: a short bare completion as a whole (not a plain sentence such as
   "79 + 78 equals 157."), else the last math span (``$...$``, ``\\(...\\)``,
   ``\\[...\\]``) or the last number, whichever comes later;
5. the last number (``last_number_fallback``) as a fallback candidate, never taken
   from inside a LaTeX answer (``\\frac{3}{4}`` is not 4).

The verifier takes the first candidate that parses. All scanning is linear-time.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from verifiers.latex_text import boxes as find_boxes
from verifiers.math.boxes import MAX_UNCLOSED, last_box_group, last_boxed
from verifiers.math.markers import has_words, line_answer, marker_answer, negated_marker, sentence_tail

__all__ = ["Extraction", "extract_candidates", "extract_reference", "hash_final_answer", "last_boxed"]

_STRUCTURE_RE = re.compile(r"[\\^_{}()\[\]]")  # LaTeX structure: never reduce such an answer to its last number
# (opener, closer, may span lines); found by `_delimited` in linear time, since a regex
# like \\\[(.+?)\\\] rescans to the end for every unclosed opener (quadratic).
_DELIMITERS = (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False))
_INLINE_DOLLAR_RE = re.compile(r"(?<![\\$])\$((?:[^$\n\\]|\\.)+?)\$")
_NUMBER_RE = re.compile(r"-?\d+/\d+(?!\d|\.\d)|-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?%?|-?\.\d+%?")
_PROSE_RE = re.compile(  # two plain words in a row, or three anywhere: a sentence, not an answer
    r"(?<![\\a-zA-Z])[A-Za-z]{2,}\s+[A-Za-z]{2,}|(?:(?<![\\a-zA-Z])[A-Za-z]{2,}(?![A-Za-z]).*){3}"
)
_SHORT = 60  # a completion this short with no marker may be the bare answer
_BRACED_RE = re.compile(r"\{[^{}]*\}")  # words inside braces (\frac{NO}{BO}) are not prose
_SHORT_SENTENCE = 120  # a one-line completion this short may end with its answer
_BARE_RE = re.compile(r"^[\w\s\\{}()\[\]^_+\-*/.,=<>|!:;'%°−·×÷√π∞]+$")


@dataclass(frozen=True)
class Extraction:
    answer: str  # the raw answer text (not yet normalized)
    method: str  # which rule found it


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


def _marked(text: str, after: int) -> list[Extraction]:
    found = marker_answer(text, after)
    return [Extraction(found[2].strip(), found[1])] if found else []


def _is_bare(stripped: str) -> bool:
    """A short completion that is the answer itself (not "79 + 78 equals 157.")."""
    if len(stripped) > _SHORT or not _BARE_RE.match(stripped) or _PROSE_RE.search(stripped):
        return False
    if "$" in stripped or "\\(" in stripped or "\\[" in stripped:
        return False
    return not (has_words(stripped) and any(c.isdigit() for c in stripped))


def extract_candidates(text: str, last_number_fallback: bool = True) -> list[Extraction]:
    """Answer candidates in priority order; the verifier uses the first one that parses."""
    boxes = find_boxes(text, MAX_UNCLOSED)
    found = _marked(text, boxes[-1][1] if boxes else 0)
    if boxes and not found:
        return [Extraction(last_box_group(text, boxes), "boxed")]
    stripped = text.strip()
    if not found and _is_bare(stripped):
        found.append(Extraction(stripped, "whole"))
    elif not found and len(stripped) <= _SHORT_SENTENCE and not any(c in stripped for c in ("\n", "$", "\\(", "\\[")):
        tail = sentence_tail(stripped)  # "It comes to (2, -1)."
        found += [Extraction(tail, "sentence_tail")] if tail else []
    if not found or found[0].method in ("whole", "sentence_tail"):
        negated = -1 if found or boxes else negated_marker(text)
        scanned = text if negated == -1 else text[:negated]
        found.extend(e for e in _latest_math(scanned) if last_number_fallback or e.method != "last_number")
    elif last_number_fallback and not _STRUCTURE_RE.search(found[0].answer):
        numbers = _NUMBER_RE.findall(found[0].answer)
        if numbers and numbers[-1] != found[0].answer:
            found.append(Extraction(numbers[-1], "last_number"))
    return found


_HASH_FINAL_RE = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.MULTILINE)


def hash_final_answer(text: str) -> str | None:
    """What follows the last ``#### `` line (GSM8K's final answer, thousands commas dropped); None if none."""
    found = [answer for answer in _HASH_FINAL_RE.findall(text) if answer]
    return found[-1].replace(",", "") if found else None


def extract_reference(reference: str) -> str:
    """A reference is the gold answer itself, possibly boxed or wrapped in ``$``.

    A GSM8K solution (or a bare ``#### 3``) gives what follows its last ``####``. A
    reference that is a whole worked solution (prose with a "final answer" line) is
    read like a completion; a short prose reference ("It is 12", "the point (1, 2)") is
    read like the line after an answer marker.
    """
    final = hash_final_answer(reference)
    if final is not None:
        return final
    boxed = last_boxed(reference)
    if boxed is not None:
        return boxed
    if len(reference) > _SHORT and _PROSE_RE.search(reference):
        marked = _marked(reference, 0)
        if marked:
            return marked[0].answer
    if len(reference) <= _SHORT_SENTENCE and has_words(_BRACED_RE.sub(" ", reference)) and re.search(r"[\d\\]", reference):
        # a short prose reference: "It is 12", "the point (1,2)", "1/2 of the cake"
        marked = _marked(reference, 0)
        return marked[0].answer if marked else sentence_tail(reference) or line_answer(reference) or reference
    return reference
