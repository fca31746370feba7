"""Answer markers: where real model families state their final answer, and what the
answer after a marker is.

Conventions recognised (the last marker that yields an answer wins):

* "final answer is X" / "Final Answer: X" (Minerva: "Final Answer: The final answer is
  $X$. I hope it is correct."), but not "final answer" in ordinary prose ("Write the
  final answer in ...", "To get the final answer, I need ..."): the phrase must be
  followed by ``is``, ``:`` or ``=``, or end its line (a heading);
* "the answer is X" / "The answer is: X" (MetaMath), "answers are X";
* "Answer: X", "**Answer:** X" (markdown);
* GSM8K's ``#### X`` (a number after ``####``, not a markdown heading);
* a heading line ("# Answer" as in MATH/PRM800K, "**Final Answer**", "### Answer")
  with the answer on the next non-empty line (display math may span lines).

After a marker the answer is read from the rest of its line (or the next line when
the marker ends one): a box there; math spans joined by connectors; a line of math
with no English words, whole (``\\frac{3}{4}``, ``25_8``, ``(a, b)`` stay whole); a
short text answer ("Yes"); else the math that starts the line, then the first math
span or number. Every scan is linear in the text; each marker looks at a bounded
window after it and at most `_MAX_TRIES` markers are tried.
"""
from __future__ import annotations

import re

from verifiers.latex_text import boxes as find_boxes
from verifiers.math.boxes import last_boxed

__all__ = ["marker_answer", "line_answer", "has_words", "negated_marker", "sentence_tail", "MARKER_RE"]

# possessive runs (``*+``): no two whitespace runs can trade characters, so a marker
# followed by 100k spaces costs one pass, not a quadratic backtrack
MARKER_RE = re.compile(
    r"(?P<final>\bfinal[ \t]++answer\b[ \t]*+(?:\*++[ \t]*+)?(?:is\b[ \t]*+:?|[:=：]|(?=\r?\n|$)))"
    r"|(?P<is>\banswers?[ \t]++(?:is|are|would[ \t]++be|should[ \t]++be|will[ \t]++be)\b[ \t]*+:?)"
    r"|(?P<colon>(?:^|(?<=[\s*_>#(]))answer[ \t]*+(?:\*++[ \t]*+)?[:：])"
    r"|(?P<hashes>####[ \t]*+(?=[-+$\\(\d.]|[^\n#]{1,30}\s*$))"  # GSM8K; letters only on the last line
    r"|(?P<heading>(?:^|(?<=\n))[ \t]*+(?:#{1,6}+[ \t]*+|\*\*[ \t]*+)?answer[ \t]*+:?[ \t]*+(?:\*\*)?[ \t]*+:?[ \t]*+(?=\r?\n|$))",
    re.IGNORECASE,
)
_METHOD = {"final": "final_answer", "is": "answer_is", "colon": "answer_colon", "hashes": "hashes", "heading": "heading"}
_MAX_TRIES = 30  # markers tried, last first
_WINDOW = 2000  # characters after a marker that are looked at
_MAX_LINE = 400  # an answer line longer than this is cut

_MATH_WORDS = frozenset((
    "and", "or", "pi", "sqrt", "sin", "cos", "tan", "cot", "sec", "csc", "log", "ln", "lg", "exp", "mod", "bmod",
    "infty", "inf", "max", "min", "gcd", "lcm", "arcsin", "arccos", "arctan", "det", "dx", "dy", "dt",
))
_SHORT_WORDS = frozenset(("is", "be", "of", "to", "in", "on", "at", "by", "it", "as", "so", "we", "an", "if", "no"))
_WORD_RE = re.compile(r"(?<![\\A-Za-z0-9])[A-Za-z]{2,}(?![A-Za-z0-9])")  # 2xy, AZ2 are not words
_COPULA_RE = re.compile(r"(?:\bis|\bare|\bequals|\bbe|=)\s+(?=\S)")
_TEXT_ARG_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mbox|operatorname|begin|end)\s*\{[^{}]{0,80}\}")
_SENTENCE_END_RE = re.compile(  # a full stop (not 3.5, not "3. 5") or a clause that comments on the answer
    r"(?<!\d)\.(?:\s|$)|\.\s+(?!\d)|,\s+(?=(?:which|since|because|as|so|where|when|if|but|though|although)\b)"
)
_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$((?:[^$\\]|\\.)+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]")
_SPAN_NOISE_RE = re.compile(r"[\s,;.]|\band\b|\bor\b|\\q?quad|\\text\{\s*(?:and|or)\s*\}")
_NUMBER_RE = re.compile(r"-?\d+/\d+(?!\d|\.\d)|-?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?%?|-?\.\d+%?")
_TEXT_ANSWER_RE = re.compile(r"^[A-Za-z][A-Za-z '\-]{0,40}$")
_PROSE_STARTS = frozenset((
    "not", "the", "that", "this", "these", "correct", "wrong", "right", "reasonable", "consistent", "valid",
    "indeed", "clearly", "obviously", "then", "therefore", "thus", "given", "above", "below", "shown", "found",
    "obtained", "in", "as", "to", "be", "being", "what", "which", "how", "still", "also", "just", "now", "here",
    "there", "unique", "positive", "negative", "a", "an", "one", "same", "different", "close", "equal", "less", "more",
))


_ARITHMETIC_WORDS = frozenset((
    "more", "less", "fewer", "greater", "smaller", "times", "plus", "minus", "divided", "multiplied", "over", "than",
    "added", "subtracted",
))
_NEGATIONS = frozenset(("not", "never", "neither", "isn't", "cannot"))


def has_words(text: str) -> bool:
    """True when ``text`` has an English word (not a LaTeX command, a math word, or a
    ``\\text{}`` argument such as a unit)."""
    text = _TEXT_ARG_RE.sub(" ", text)
    for match in _WORD_RE.finditer(text):
        word = match.group(0).lower()
        if word not in _MATH_WORDS and (len(word) > 2 or word in _SHORT_WORDS):
            return True
    return False


def _leading_math(line: str) -> tuple[str, str]:
    """(the math that starts ``line``, the English word that ends it, lower-cased)."""
    cut, stop = len(line), ""
    for match in _WORD_RE.finditer(line):
        word = match.group(0).lower()
        if word in _MATH_WORDS or (len(word) == 2 and word not in _SHORT_WORDS):
            continue
        before = line[: match.start()]
        if sum(map(before.count, "{([")) <= sum(map(before.count, "})]")):  # not inside a group
            cut, stop = match.start(), word
            break
    head = line[:cut].strip().rstrip(",;:").strip()
    return (head if re.search(r"[\d\\]|^[A-Za-z]$", head) else ""), stop


def _sentence(line: str) -> str:
    line = line.strip().strip('"').replace('\\"', "").strip().strip("*").strip()
    match = _SENTENCE_END_RE.search(line)
    if match:
        line = line[: match.start()]
    return line.strip().rstrip(".,").strip().strip("*").strip()


def _spans_answer(line: str) -> str | None:
    """Math spans making up the line (joined when only connectors separate them), or
    the first span when the line starts with one."""
    spans = list(_SPAN_RE.finditer(line))
    if not spans:
        return None
    contents = [next(g for g in m.groups() if g is not None).strip() for m in spans]
    rest = _SPAN_RE.sub(" ", line)
    if not _SPAN_NOISE_RE.sub("", rest).strip():
        return ", ".join(c for c in contents if c) or None
    return contents[0] if spans[0].start() == 0 and contents[0] else None


def line_answer(line: str, nested: bool = False) -> str | None:
    """The answer stated by the text right after a marker (one line)."""
    line = _sentence(line[:_MAX_LINE])
    if not line:
        return None
    if "box" in line:
        boxed = last_boxed(line)
        if boxed is not None:
            return boxed
    spans = _spans_answer(line)
    if spans:
        return spans
    if not has_words(line):
        return line.strip("$").strip() or None
    if _TEXT_ANSWER_RE.match(line) and len(line.split()) <= 3 and line.split()[0].lower() not in _PROSE_STARTS:
        return line
    head, stop = _leading_math(line)
    if head and stop not in _ARITHMETIC_WORDS:
        return head
    copulas = list(_COPULA_RE.finditer(line))
    if copulas and not nested:  # "The largest $n$ is 34": what the sentence says it is
        stated = line_answer(line[copulas[-1].end() :], nested=True)
        if stated:
            return stated
    if stop in _ARITHMETIC_WORDS or line.split()[0].lower() in _NEGATIONS:
        return None  # "2 more than 3", "not 5": no value stated here
    first = _SPAN_RE.search(line)
    if first:
        return next(g for g in first.groups() if g is not None).strip() or None
    number = _NUMBER_RE.search(line)
    return number.group(0) if number else None


def _display(rest: str) -> str | None:
    """The content of a display block (``$$...$$``, ``\\[...\\]``) that ``rest`` starts with."""
    for opener, closer in (("$$", "$$"), ("\\[", "\\]")):
        if rest.startswith(opener):
            end = rest.find(closer, len(opener))
            if end != -1:
                return rest[len(opener) : end].strip()
    return None


def _after(text: str, end: int) -> str | None:
    rest = text[end : end + _WINDOW].lstrip(" \t*:_")
    if rest[:1] in ("\r", "\n") or not rest.strip():
        rest = rest.lstrip()  # a heading: the answer is on the next non-empty line
    display = _display(rest)
    if display is not None:
        found = find_boxes(display)
        return found[-1][2] if found else display or None
    return line_answer(rest.split("\n", 1)[0])


def marker_answer(text: str, after: int = 0) -> tuple[int, str, str] | None:
    """(marker position, method, answer) for the last marker at or after ``after`` that
    states an answer; None when there is none."""
    matches = [m for m in MARKER_RE.finditer(text) if m.start() >= after]
    for match in reversed(matches[-_MAX_TRIES:]):
        answer = _after(text, match.end())
        if answer:
            return match.start(), _METHOD[match.lastgroup], answer
    return None


def negated_marker(text: str) -> int:
    """Position of the last marker that negates ("The answer is not 5."), else -1: what
    follows it is no answer, not even for the last-number fallback."""
    last = None
    for last in MARKER_RE.finditer(text):
        pass
    if last is None:
        return -1
    words = text[last.end() : last.end() + 40].split()
    return last.start() if words and words[0].lower().strip("*:") in _NEGATIONS else -1


def sentence_tail(text: str) -> str | None:
    """"It comes to (2, -1)." -> ``(2, -1)``: the math after the last English word of a
    short sentence, when it is more than a plain number (the last-number rule covers those)."""
    last = None
    for match in _WORD_RE.finditer(text):
        word = match.group(0).lower()
        if word not in _MATH_WORDS and (len(word) > 2 or word in _SHORT_WORDS):
            last = match
    if last is None:
        return None
    tail = text[last.end() :].strip().rstrip(".!").strip(" :").strip()
    return tail if re.search(r"[(\[\\^/]", tail) and re.search(r"\d", tail) else None
