"""Linear-time scanning of LaTeX-ish text shared by the verifiers: braces and boxes."""
from __future__ import annotations

import re

__all__ = ["closing_braces", "boxes", "last_box"]

BOX_OPEN_RE = re.compile(r"\\(?:boxed|fbox)\s*(\{|\s+\S)")


def closing_braces(text: str) -> dict[int, int]:
    """Open-brace index -> its closing index, for the whole text in one pass.

    Escaped braces (``\\{``, ``\\}``) are skipped; unbalanced opens have no entry.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for match in re.finditer(r"\\[{}]|[{}]", text):
        token = match.group(0)
        if token == "{":
            stack.append(match.start())
        elif token == "}" and stack:
            pairs[stack.pop()] = match.start()
    return pairs


def boxes(text: str, unclosed_tail: int = 0) -> list[tuple[int, int, str]]:
    """Every ``\\boxed{...}``/``\\fbox{...}`` (and ``\\boxed 5``) as (start, end, content).

    With ``unclosed_tail > 0``, a last box that never closes takes the rest of the text
    when that rest is at most ``unclosed_tail`` characters (a cut-off completion).
    """
    found: list[tuple[int, int, str]] = []
    matches = list(BOX_OPEN_RE.finditer(text))
    closing = closing_braces(text) if matches else {}
    for index, match in enumerate(matches):
        if match.group(1) == "{":
            end = closing.get(match.end() - 1)
            if end is not None:
                found.append((match.start(), end + 1, text[match.end() : end]))
            elif index == len(matches) - 1 and 0 < len(text) - match.end() <= unclosed_tail:
                found.append((match.start(), len(text), text[match.end() :].strip()))
        else:
            tail = re.match(r"[^\s$.,;]*", text[match.end() :])
            content = match.group(1).strip() + (tail.group(0) if tail else "")
            found.append((match.start(), match.end() + (tail.end() if tail else 0), content))
    return found


def last_box(text: str) -> str | None:
    """Content of the last complete box, or None."""
    found = boxes(text)
    return found[-1][2] if found else None
