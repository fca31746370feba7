"""Where a stop string ends a completion: one rule for every engine (`SamplingParams.stop`).

A completion ends at the first token that *completes* a stop string: the decoded text of the
completion's last tokens, that token included, holds a stop string, and the same text without
that token does not. That token is the completion's last (masked) token and the completion is
finished, not truncated. Text is decoded with special tokens kept, over a window of
``stop_window(stops)`` tokens (the longest stop + 1: a stop string of L characters spans at most
L tokens, since every token decodes to at least one character), so the check costs the same at
every step whatever the completion's length.

The ``hf`` engine applies the rule token by token while decoding (`completes_stop`); the
``vllm`` engine lets vLLM's detokenizer stop early and then re-applies the rule to the ids vLLM
returned (`first_stop`), so both engines cut at the same token.
"""
from __future__ import annotations

from typing import Any, Sequence

__all__ = ["stop_window", "completes_stop", "first_stop"]


def stop_window(stops: Sequence[str]) -> int:
    """How many of a completion's last tokens are decoded to look for a stop string."""
    return max((len(x) for x in stops), default=0) + 1


def completes_stop(tokenizer: Any, windows: Sequence[Sequence[int]], stops: Sequence[str]) -> list[bool]:
    """For each window (a completion's last ``stop_window(stops)`` ids or fewer, newest last): whether its newest
    id completes a stop string."""
    if not windows:
        return []
    now = tokenizer.batch_decode([list(w) for w in windows], skip_special_tokens=False)
    before = tokenizer.batch_decode([list(w)[:-1] for w in windows], skip_special_tokens=False)
    return [any(x in a for x in stops) and not any(x in b for x in stops) for a, b in zip(now, before)]


def first_stop(tokenizer: Any, ids: Sequence[int], stops: Sequence[str]) -> int:
    """The index in ``ids`` of the token that completes the first stop string (-1: none does)."""
    ids = list(ids)
    if not stops or not ids or not any(x in tokenizer.decode(ids, skip_special_tokens=False) for x in stops):
        return -1
    tail = stop_window(stops)
    windows = [ids[max(0, t + 1 - tail):t + 1] for t in range(len(ids))]
    hits = completes_stop(tokenizer, windows, stops)
    return hits.index(True) if True in hits else -1
