"""The LLM judge's pointwise prompt and the parser of its answers (pure functions, no I/O).

(The group and pairwise prompts and their parsers are `rlvr.rewards.judge_rank`.)

The prompt follows the chain-of-rubrics pattern: it states the criteria first, asks the
judge to evaluate the answer against each criterion in turn, and only then to emit one
score block. Two answer formats (the judge's ``response_format`` option):

``text`` (any chat model): free-text evaluation, then one score line at the end::

    SCORES: helpfulness=8; tone=6

``json`` (servers with structured outputs: vLLM, OpenAI, ...): the request carries a JSON
schema (`score_schema`) that makes the server emit, in this order::

    {"evaluation": {"helpfulness": "...", "tone": "..."}, "scores": {"helpfulness": 8, "tone": 6}}

so even a small local judge evaluates each item before it scores, and always parses.

Every item is scored from 0 to 10. `parse_scores` reads both formats, and is lenient
about what a small or chatty judge does around the block, strict about what the numbers
mean:

* a JSON object with a ``scores`` object holding every item wins;
* else the *last* complete ``SCORES`` block wins (a judge that drafts and then corrects itself), in any
  case, with ``=`` or ``:`` after an item, ``;`` / ``,`` / newlines between items,
  ``**markdown**`` or backticks around it, and ``7/10`` or ``7.5`` as a score;
* item names match ignoring case, spaces, ``-`` and ``_``;
* without a ``SCORES`` block, a JSON object holding every item (``{"tone": 6, ...}``, in a
  fenced block or bare) is accepted;
* with a single item, ``SCORES: 7`` is accepted.

Anything else (an item missing, a score outside 0..10, no block at all) is a parse
error: `parse_scores` returns None and the sample is excluded from the mean and counted
as ``verdict/<label>/parse_error``, never scored 0.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

__all__ = ["JudgeItem", "PROMPT_VERSION", "MAX_SCORE", "FORMATS", "judge_messages", "parse_scores", "item_key",
           "weighted_score", "parse_items", "score_schema", "conversation_text"]

PROMPT_VERSION = "cor-1"  # bump when the prompt's wording changes (it is part of the cache key)
MAX_SCORE = 10.0
_SYSTEM = ("You are a careful, strict grader. You grade one answer against a rubric and always finish "
           "with the score line in exactly the requested format.")
_BLOCK = re.compile(r"\bscores?\b\s*[:=]?", re.IGNORECASE)
_PAIR = re.compile(r"([A-Za-z][\w .\-]*?)[\"']?\s*[=:]\s*(-?\d+(?:\.\d+)?)(\s*/\s*10(?:\.0+)?)?")
_NUMBER = re.compile(r"\s*(-?\d+(?:\.\d+)?)(\s*/\s*10)?")
_JSON = re.compile(r"\{[^{}]*\}", re.DOTALL)


@dataclass(frozen=True)
class JudgeItem:
    name: str  # the item's name in the score line (letters, digits, _ -)
    description: str  # what the item asks, as the judge reads it
    weight: float = 1.0  # its weight in the dimension's reward (the weighted mean of the items)


def parse_items(raw: Any, default_name: str) -> tuple[JudgeItem, ...]:
    """The ``items`` option: a list of names or of {name, description, weight}; empty = one item, the source."""
    if raw in (None, [], ()):
        return (JudgeItem(default_name, default_name),)
    if not isinstance(raw, (list, tuple)):
        raise ValueError(f"items must be a list of names or {{name, description, weight}}; got {raw!r}")
    items = []
    for entry in raw:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, Mapping) or not entry.get("name"):
            raise ValueError(f"item {entry!r} has no name")
        unknown = sorted(set(entry) - {"name", "description", "weight"})
        if unknown:
            raise ValueError(f"item {entry['name']!r}: unknown field(s) {', '.join(unknown)}; "
                             f"valid: name, description, weight")
        name = str(entry["name"])
        if not re.fullmatch(r"[A-Za-z][\w\-]*", name):
            raise ValueError(f"item name {name!r}: use letters, digits, _ or - (it is written in the score line)")
        weight = float(entry.get("weight", 1.0))
        if weight < 0:
            raise ValueError(f"item {name!r}: weight {weight} must be >= 0")
        items.append(JudgeItem(name, str(entry.get("description") or name), weight))
    keys = [item_key(i.name) for i in items]
    if len(set(keys)) != len(keys):
        raise ValueError(f"item names {[i.name for i in items]} repeat (names are compared ignoring case, _ and -)")
    if not any(i.weight > 0 for i in items):
        raise ValueError("every item has weight 0")
    return tuple(items)


def item_key(name: str) -> str:
    return re.sub(r"[\s_\-*`]+", "", name).lower()


def conversation_text(messages: Sequence[Mapping[str, str]]) -> str:
    return "\n".join(f"[{m['role']}]: {m['content']}" for m in messages)


def _text_instructions(items: Sequence[JudgeItem]) -> str:
    example = "; ".join(f"{i.name}=<0-10>" for i in items)
    return (f"First say in one sentence what each rubric item requires here. Then evaluate the answer "
            f"against each item in turn, briefly. Finally write the score line, alone on the last line:\n"
            f"SCORES: {example}")


def _json_instructions(items: Sequence[JudgeItem]) -> str:
    return ("Answer with one JSON object: first \"evaluation\", one short sentence per rubric item on how the "
            "answer meets it, then \"scores\", an integer from 0 to 10 per item.")


FORMATS = {"text": _text_instructions, "json": _json_instructions}  # response_format -> closing instructions


def score_schema(items: Sequence[JudgeItem], max_reason_chars: int = 300) -> dict[str, Any]:
    """The JSON schema of the ``json`` format: evaluation (strings) before scores (integers 0-10)."""
    names = [i.name for i in items]

    def block(value: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {n: value for n in names}, "required": names,
                "additionalProperties": False}
    return {"type": "object", "required": ["evaluation", "scores"], "additionalProperties": False,
            "properties": {"evaluation": block({"type": "string", "maxLength": max_reason_chars}),
                           "scores": block({"type": "integer", "minimum": 0, "maximum": int(MAX_SCORE)})}}


def judge_messages(items: Sequence[JudgeItem], messages: Sequence[Mapping[str, str]], completion: str,
                   response_format: str = "text") -> list[dict[str, str]]:
    """The chat request: criteria, the conversation, the answer, then evaluate-each-then-score."""
    criteria = "\n".join(f"{n}. {i.name}: {i.description}" for n, i in enumerate(items, 1))
    user = (f"Grade the answer below against this rubric. Score each item from 0 (fails it completely) "
            f"to 10 (meets it fully).\n\nRubric:\n{criteria}\n\n"
            f"Conversation:\n{conversation_text(messages)}\n\n"
            f"Answer to grade:\n<answer>\n{completion}\n</answer>\n\n{FORMATS[response_format](items)}")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def _score(value: str) -> Optional[float]:
    score = float(value)
    return score if 0.0 <= score <= MAX_SCORE else None


def _from_block(block: str, keys: Mapping[str, str]) -> Optional[dict[str, float]]:
    block = block.replace("*", "").replace("`", "")
    found: dict[str, float] = {}
    for name, value, _ in _PAIR.findall(block):
        key = item_key(name)
        if key not in keys:  # "... and then tone=6": the last word is the name
            key = item_key(name.split()[-1])
        if key in keys and keys[key] not in found:
            score = _score(value)
            if score is None:
                return None
            found[keys[key]] = score
    if len(keys) == 1 and not found:
        match = _NUMBER.match(block)
        if match:
            score = _score(match.group(1))
            return None if score is None else {next(iter(keys.values())): score}
    return found if len(found) == len(keys) else None


def _from_object(obj: Any, keys: Mapping[str, str]) -> Optional[dict[str, float]]:
    """Every item's score from one JSON object (numbers only, each in 0..10), else None."""
    if not isinstance(obj, dict):
        return None
    found = {keys[item_key(str(k))]: v for k, v in obj.items() if item_key(str(k)) in keys}
    if len(found) != len(keys) or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in found.values()):
        return None
    scores = {k: _score(str(float(v))) for k, v in found.items()}
    return None if any(s is None for s in scores.values()) else scores  # type: ignore[return-value]


def _whole_json(text: str, keys: Mapping[str, str]) -> Optional[dict[str, float]]:
    """The ``json`` format: the answer (possibly fenced) is an object with a ``scores`` object."""
    body = re.sub(r"^\s*```(?:json)?|```\s*$", "", text.strip()).strip()
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    return _from_object(obj.get("scores"), keys) if isinstance(obj, dict) else None


def _from_json(text: str, keys: Mapping[str, str]) -> Optional[dict[str, float]]:
    for candidate in reversed(_JSON.findall(text)):
        try:
            scores = _from_object(json.loads(candidate), keys)
        except ValueError:
            continue
        if scores is not None:
            return scores
    return None


def parse_scores(text: str, items: Sequence[JudgeItem]) -> Optional[dict[str, float]]:
    """item name -> score in [0, 10] from the judge's answer, or None (a parse error)."""
    if not isinstance(text, str) or not text.strip():
        return None
    keys = {item_key(i.name): i.name for i in items}
    whole = _whole_json(text, keys)
    if whole is not None:
        return whole
    blocks = list(_BLOCK.finditer(text))
    ends = [b.start() for b in blocks[1:]] + [len(text)]
    for block, end in reversed(list(zip(blocks, ends))):  # the last complete block wins
        scores = _from_block(text[block.end():end], keys)
        if scores is not None:
            return scores
    return _from_json(text, keys)


def weighted_score(scores: Mapping[str, float], items: Sequence[JudgeItem]) -> float:
    """The items' weighted mean, scaled to [0, 1]."""
    total = sum(i.weight for i in items)
    return sum(i.weight * scores[i.name] for i in items) / (total * MAX_SCORE)
