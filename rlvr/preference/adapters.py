"""Row shapes -> `Pair`s: one registry of adapters, each detected from the row's fields.

    ranked       {"id"?, "prompt" | "messages", "answers": [{"text", "rank", "score"?}], "origin"?}
                 (the canonical schema, `rlvr.preference.schema`)
    chat_pair    {"chosen": [messages], "rejected": [messages], "prompt"?: [messages], "margin"?}
                 context = the prompt's messages + the leading messages both lists share;
                 answer = each list's last message, which must be the assistant's
    hh           {"chosen": "\\n\\nHuman: ... \\n\\nAssistant: ...", "rejected": "..."} (Anthropic HH-RLHF)
                 split on the last "\\n\\nAssistant:"; the contexts before it must be equal
    prompt_pair  {"prompt" | "messages", "chosen": "text", "rejected": "text", "margin"?}

Adapters are tried in registration order and the first whose ``detect`` accepts the
row converts it (a row no adapter accepts is dropped as ``missing_fields``). An adapter
raises `Dropped(reason)` for a row it cannot use; those are counted, never silent.
"""
from __future__ import annotations

import collections
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from rlvr.preference.schema import Dropped, Pair, context_messages, expand_ranked, parse_message
from rlvr.registry import Registry

__all__ = ["Adapter", "ADAPTERS", "register_adapter", "find_adapter", "parse_hh", "accepted_shapes"]

Convert = Callable[[Mapping[str, Any], str, Optional[int], collections.Counter], list[Pair]]

_HUMAN, _ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")


@dataclass(frozen=True)
class Adapter:
    name: str  # registry name, also a converted pair's default origin
    shape: str  # the fields it accepts, as the "nothing survived" error lists them
    detect: Callable[[Mapping[str, Any]], bool]  # does this row have this adapter's shape?
    convert: Convert  # (row, uid, max_pairs, drops) -> pairs; raises Dropped


ADAPTERS: Registry[Adapter] = Registry("preference row shape")


def register_adapter(name: str, shape: str, detect: Callable[[Mapping[str, Any]], bool]):
    """Decorator: register ``convert`` as the adapter ``name`` for rows ``detect`` accepts."""

    def deco(convert: Convert) -> Convert:
        ADAPTERS[name] = Adapter(name, shape, detect, convert)
        return convert

    return deco


def find_adapter(row: Mapping[str, Any]) -> Optional[Adapter]:
    for adapter in ADAPTERS.values():
        if adapter.detect(row):
            return adapter
    return None


def accepted_shapes() -> str:
    return "; ".join(f"{a.name} {a.shape}" for a in ADAPTERS.values())


def _margin(row: Mapping[str, Any]) -> float:
    margin = row.get("margin")
    if margin is None:
        return 0.0
    if isinstance(margin, bool) or not isinstance(margin, (int, float)):
        raise Dropped("malformed", "margin must be a number")
    return float(margin)


def _pair(row: Mapping[str, Any], uid: str, messages: list[dict], chosen: Any, rejected: Any, origin: str) -> Pair:
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise Dropped("malformed", "chosen and rejected must be text")
    if chosen == rejected:
        raise Dropped("identical")
    return Pair(uid=str(row.get("id", uid)), messages=messages, chosen=chosen, rejected=rejected,
                margin=_margin(row), origin=str(row.get("origin") or origin))


@register_adapter("ranked", '{id?, prompt | messages, answers: [{text, rank, score?}], origin?}',
                  lambda row: "answers" in row)
def _ranked(row, uid, max_pairs, drops):
    return expand_ranked(row, uid=uid, max_pairs=max_pairs, drops=drops)


@register_adapter("chat_pair", "{chosen: [messages], rejected: [messages], prompt?: [messages], margin?}",
                  lambda row: isinstance(row.get("chosen"), list) or isinstance(row.get("rejected"), list))
def _chat_pair(row, uid, max_pairs, drops):
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if chosen is None or rejected is None:
        raise Dropped("missing_fields", "chosen or rejected")
    if not isinstance(chosen, list) or not isinstance(rejected, list) or not chosen or not rejected:
        raise Dropped("malformed", "chosen and rejected must both be non-empty message lists")
    chosen, rejected = [parse_message(m) for m in chosen], [parse_message(m) for m in rejected]
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise Dropped("malformed", "the last message of chosen and of rejected must be the assistant's")
    if chosen[:-1] != rejected[:-1]:
        raise Dropped("context_mismatch")
    prefix = context_messages(row) if ("prompt" in row or "messages" in row) else []
    messages = prefix + chosen[:-1]
    if not messages:
        raise Dropped("missing_fields", "no context: neither a prompt nor leading messages")
    return [_pair(row, uid, messages, chosen[-1]["content"], rejected[-1]["content"], "chat_pair")]


def parse_hh(transcript: str) -> tuple[list[dict], str]:
    """An HH transcript -> (context messages, the last assistant answer)."""
    context, marker, answer = transcript.rpartition(_ASSISTANT)
    if not marker:
        raise Dropped("malformed", 'an HH transcript without "\\n\\nAssistant:"')
    parts = _HH_TURN.split(context)
    if parts[0].strip():
        raise Dropped("malformed", 'an HH transcript that does not start with "\\n\\nHuman:"')
    roles = {"Human": "user", "Assistant": "assistant"}
    messages = [{"role": roles[who], "content": text.strip()} for who, text in zip(parts[1::2], parts[2::2])]
    if not messages:
        raise Dropped("malformed", "an HH transcript with no turn before the answer")
    return messages, answer.strip()


@register_adapter("hh", '{chosen: "\\n\\nHuman: ... \\n\\nAssistant: ...", rejected: "..."} (Anthropic HH transcripts)',
                  lambda row: "prompt" not in row and "messages" not in row
                  and isinstance(row.get("chosen"), str) and _ASSISTANT in row["chosen"])
def _hh(row, uid, max_pairs, drops):
    rejected = row.get("rejected")
    if rejected is None:
        raise Dropped("missing_fields", "rejected")
    if not isinstance(rejected, str):
        raise Dropped("malformed", "rejected must be a transcript string")
    context_c, answer_c = parse_hh(row["chosen"])
    context_r, answer_r = parse_hh(rejected)
    if context_c != context_r:
        raise Dropped("context_mismatch")
    return [_pair(row, uid, context_c, answer_c, answer_r, "hh")]


@register_adapter("prompt_pair", "{prompt | messages, chosen: text, rejected: text, margin?}",
                  lambda row: "chosen" in row or "rejected" in row)
def _prompt_pair(row, uid, max_pairs, drops):
    if "chosen" not in row or "rejected" not in row:
        raise Dropped("missing_fields", "chosen or rejected")
    return [_pair(row, uid, context_messages(row), row["chosen"], row["rejected"], "prompt_pair")]
