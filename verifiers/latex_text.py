"""Linear-time scanning of LaTeX-ish text shared by the verifiers: braces and boxes."""
from __future__ import annotations

import re

__all__ = ["closing_braces", "boxes", "last_box", "unwrap_box", "split_top_level"]

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


def split_top_level(text: str, separator: str) -> list[str]:
    """Split on ``separator`` outside braces, brackets and parentheses
    (``\\sum_{k=0}^{n} a_k = 1`` splits once, ``(1,2), 3`` into two)."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "{[(":
            depth += 1
        elif char in "}])":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def boxes(text: str, unclosed_tail: int = 0) -> list[tuple[int, int, str]]:
    """Every top-level ``\\boxed{...}``/``\\fbox{...}`` (and ``\\boxed 5``) as (start, end, content).

    Boxes nested inside an earlier box are part of its content, not separate entries
    (which also keeps the scan linear: nothing inside a box is sliced twice). With
    ``unclosed_tail > 0``, a last box that never closes takes the rest of the text when
    that rest is at most ``unclosed_tail`` characters (a cut-off completion).
    """
    found: list[tuple[int, int, str]] = []
    matches = list(BOX_OPEN_RE.finditer(text))
    closing = closing_braces(text) if matches else {}
    covered = -1  # end of the last box found: matches before it are nested
    for index, match in enumerate(matches):
        if match.start() < covered:
            continue
        if match.group(1) == "{":
            end = closing.get(match.end() - 1)
            if end is not None:
                found.append((match.start(), end + 1, text[match.end() : end]))
                covered = end + 1
            elif index == len(matches) - 1 and 0 < len(text) - match.end() <= unclosed_tail:
                found.append((match.start(), len(text), text[match.end() :].strip()))
        else:
            tail = re.match(r"[^\s$.,;]*", text[match.end() : match.end() + 200])
            content = match.group(1).strip() + (tail.group(0) if tail else "")
            found.append((match.start(), match.end() + (tail.end() if tail else 0), content))
    return found


def unwrap_box(content: str, depth: int = 5) -> str:
    """``\\boxed{\\boxed{3}}`` -> ``3``: a content that is itself exactly one box."""
    for _ in range(depth):
        if not content.lstrip().startswith(("\\boxed", "\\fbox")):
            break
        inner = boxes(content.strip())
        if len(inner) != 1 or inner[0][0] != 0 or inner[0][1] != len(content.strip()):
            break
        content = inner[0][2]
    return content


def last_box(text: str) -> str | None:
    """Content of the last complete top-level box (nested boxes unwrapped), or None."""
    found = boxes(text)
    return unwrap_box(found[-1][2]) if found else None
