"""The box-group rule: the last ``\\boxed{}`` / ``\\fbox{}``, joined with the boxes just before it that only
connectors separate (``\\boxed{2} and \\boxed{3}`` -> ``2, 3``). Shared by the extraction order
(`verifiers.math.extract`) and the marker rules (`verifiers.math.markers`), which both read boxes.
"""
from __future__ import annotations

import re

from verifiers.latex_text import boxes as find_boxes
from verifiers.latex_text import unwrap_box

__all__ = ["MAX_UNCLOSED", "last_box_group", "last_boxed"]

_GAP_NOISE_RE = re.compile(r"\\text\{[^{}]{0,40}\}|\\q?quad|\\[,;:! ]|\$|\\[()\[\]]|[\s,;&+.]|\\\\|\band\b|\bor\b")
_GAP_STOP_RE = re.compile(r"wait|correct|actual|instead|but\b|however|therefore|thus|hence|final|answer|mistake|error|again|\bso\b|\bno\b|\.\.\.", re.IGNORECASE)
_MAX_GAP = 40
MAX_UNCLOSED = 200  # an unclosed last box takes the rest of the text, if that is short


def _is_connector(gap: str) -> bool:
    if len(gap) > 200 or "\n\n" in gap or _GAP_STOP_RE.search(gap):
        return False
    return len(_GAP_NOISE_RE.sub("", gap)) <= _MAX_GAP


def last_box_group(text: str, boxes: list[tuple[int, int, str]]) -> str:
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
    found = find_boxes(text, MAX_UNCLOSED)
    return last_box_group(text, found) if found else None
