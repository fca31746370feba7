"""Preference data: `Pair`, `PreferenceSet` and the canonical ranked-answers row.

Every preference trainer (`rlvr-rm`, `rlvr-dpo`) reads `Pair`s. The canonical row (one
prompt, K ranked answers) is the schema this project writes; other common shapes are
converted by `rlvr.preference.adapters`. Canonical row::

    {"id": "q17",                                   # optional (default: the row's index)
     "prompt": "text",  OR  "messages": [{"role": "user", "content": "..."}, ...],
     "answers": [{"text": "...", "rank": 0, "score": 0.9},   # rank 0 is best; score optional
                 {"text": "...", "rank": 1}, ...],
     "origin": "where it came from"}                # optional

Equal ranks tie (no pair between them); every better-worse pair is expanded, at most
``max_pairs`` per prompt, keeping the pairs with the largest rank gap first (ties broken
by answer order, so the choice is deterministic). A pair's margin is
``score_chosen - score_rejected`` when both answers carry a score, else 0.

Rows that yield nothing raise `Dropped(reason)`; pairs removed inside a row (identical
texts, the cap) are counted in the ``drops`` counter the caller passes. Reasons are
short codes (`DROP_REASONS`), reported by `PreferenceSet.describe`.
"""
from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional

__all__ = ["Pair", "PreferenceSet", "Dropped", "DROP_REASONS", "expand_ranked", "context_messages", "parse_message",
           "ends_with_answer", "prompt_key"]

DROP_REASONS = {
    "missing_fields": "a field the row's shape needs is absent (or no known shape matches)",
    "malformed": "a field has the wrong type (e.g. a rank that is not a number)",
    "malformed_json": "a line of a jsonl file is not a JSON object",
    "too_few_answers": "fewer than two answers",
    "all_tie": "every answer has the same rank (for a pair row: score_chosen equals score_rejected)",
    "identical": "chosen and rejected texts are the same",
    "context_mismatch": "chosen and rejected transcripts do not share their context (HH, chat lists)",
    "prompt_mismatch": "the row's prompt is not the prompt inside its chosen/rejected conversations",
    "label_leak": "the context ends with the chosen or rejected answer (e.g. messages copied from chosen)",
    "score_order": "score_chosen is below score_rejected: the scores contradict the label",
    "too_long": "context + longer answer exceed max_chars (counted per pair)",
    "capped": "pairs beyond max_pairs_per_prompt (smallest rank gaps go first; counted per pair)",
}

_ROLES = ("system", "user", "assistant")


class Dropped(ValueError):
    """A row that yields no pair; ``reason`` is one of `DROP_REASONS`."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class Pair:
    """One preference: ``chosen`` is better than ``rejected`` as the reply to ``messages``."""

    uid: str  # stable id: the row's id, plus "/i>j" (answer indices) for pairs expanded from a ranking
    messages: list[dict]  # the chat context (system/user/assistant); a plain prompt is one user message
    chosen: str  # the preferred answer (the assistant's reply)
    rejected: str  # the other answer
    margin: float = 0.0  # how much better chosen is (score difference; 0 when unknown)
    origin: str = ""  # the row's origin field, or the adapter that read it


@dataclass
class PreferenceSet:
    """The pairs read from one source, and what was dropped on the way (never silently)."""

    pairs: list[Pair]
    dropped: collections.Counter = field(default_factory=collections.Counter)  # reason -> count
    rows_read: int = 0  # rows (lines, records) seen in the source, malformed ones included
    fields_seen: set[str] = field(default_factory=set)  # union of the rows' field names
    shapes: collections.Counter = field(default_factory=collections.Counter)  # adapter name -> rows converted

    def describe(self) -> str:
        """``2312 rows -> 2301 pairs; dropped: identical 11``."""
        drops = ", ".join(f"{reason} {n}" for reason, n in sorted(self.dropped.items()) if n) or "none"
        return f"{self.rows_read} rows -> {len(self.pairs)} pairs; dropped: {drops}"

    def __len__(self) -> int:
        return len(self.pairs)


def prompt_key(pair: Pair) -> str:
    """The identity of a pair's context: pairs with equal keys share a prompt (used for leak-free splits)."""
    return json.dumps(pair.messages, sort_keys=True, ensure_ascii=False)


def context_messages(row: Mapping[str, Any]) -> list[dict]:
    """The row's ``messages`` (roles checked) or its ``prompt`` text as one user message."""
    messages = row.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise Dropped("malformed", "messages must be a non-empty list of {role, content}")
        return [parse_message(m) for m in messages]
    prompt = row.get("prompt")
    if prompt is None:
        raise Dropped("missing_fields", "neither prompt nor messages")
    if isinstance(prompt, list):  # a conversational prompt (TRL's format)
        return context_messages({"messages": prompt})
    if not isinstance(prompt, str):
        raise Dropped("malformed", "prompt must be text or a list of messages")
    return [{"role": "user", "content": prompt}]


def ends_with_answer(messages: list[dict], answers: Iterable[Any]) -> bool:
    """Does the context end with the assistant giving one of the answers?

    Such a context holds the label (UltraFeedback's ``messages`` is a copy of ``chosen``):
    a model trained on it learns to repeat the last turn, not to judge the answers.
    """
    return bool(messages) and messages[-1]["role"] == "assistant" and messages[-1]["content"] in list(answers)


def parse_message(m: Any) -> dict:
    if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
        raise Dropped("missing_fields", "a message without role or content")
    if m["role"] not in _ROLES or not isinstance(m["content"], str):
        raise Dropped("malformed", f"message role {m['role']!r} (allowed: {', '.join(_ROLES)}) or non-text content")
    return {"role": m["role"], "content": m["content"]}


def _answers(row: Mapping[str, Any]) -> list[tuple[str, float, Optional[float]]]:
    answers = row.get("answers")
    if not isinstance(answers, list):
        raise Dropped("malformed", "answers must be a list of {text, rank, score?}")
    out = []
    for a in answers:
        if not isinstance(a, Mapping) or "text" not in a or "rank" not in a:
            raise Dropped("missing_fields", "an answer without text or rank")
        rank, score = a["rank"], a.get("score")
        if not isinstance(a["text"], str) or isinstance(rank, bool) or not isinstance(rank, (int, float)):
            raise Dropped("malformed", "answer text must be a string and rank a number")
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))):
            raise Dropped("malformed", "answer score must be a number")
        out.append((a["text"], float(rank), None if score is None else float(score)))
    if len(out) < 2:
        raise Dropped("too_few_answers", f"{len(out)} answer(s)")
    return out


def expand_ranked(row: Mapping[str, Any], *, uid: str = "", max_pairs: Optional[int] = None,
                  drops: Optional[collections.Counter] = None) -> list[Pair]:
    """Every better-worse pair of a canonical row, the largest rank gaps first, at most ``max_pairs``.

    Raises `Dropped` when the row yields no pair (too few answers, all ties, all identical, ...).
    Pairs removed inside the row are added to ``drops`` (``identical``, ``capped``).
    """
    drops = collections.Counter() if drops is None else drops
    messages = context_messages(row)
    answers = _answers(row)
    if ends_with_answer(messages, (text for text, _, _ in answers)):
        raise Dropped("label_leak", "messages ends with one of the answers")
    uid = str(row.get("id", uid))
    origin = str(row.get("origin") or "ranked")
    candidates, identical = [], 0
    for i, (text_i, rank_i, score_i) in enumerate(answers):
        for j, (text_j, rank_j, score_j) in enumerate(answers):
            if rank_i >= rank_j:
                continue  # i must be strictly better (lower rank); ties make no pair
            if text_i == text_j:
                identical += 1
                continue
            margin = score_i - score_j if score_i is not None and score_j is not None else 0.0
            candidates.append((rank_j - rank_i, i, j, margin))
    if not candidates:
        raise Dropped("identical" if identical else "all_tie")
    if identical:
        drops["identical"] += identical
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    if max_pairs is not None and len(candidates) > max_pairs:
        drops["capped"] += len(candidates) - max_pairs
        candidates = candidates[:max_pairs]
    return [Pair(uid=f"{uid}/{i}>{j}", messages=[dict(m) for m in messages], chosen=answers[i][0],
                 rejected=answers[j][0], margin=margin, origin=origin) for _, i, j, margin in candidates]
