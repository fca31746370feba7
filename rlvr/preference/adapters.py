"""Row shapes -> `Pair`s: one registry of adapters, each detected from the row's fields.

    ranked        {"id"?, "prompt" | "messages", "answers": [{"text", "rank", "score"?}], "origin"?}
                  (the canonical schema, `rlvr.preference.schema`)
    ultrafeedback {"prompt"?: text, "chosen": [user, ..., assistant], "rejected": [...], "messages"?: = chosen,
                   "prompt_id"?, "score_chosen"?, "score_rejected"?}  (HuggingFaceH4/ultrafeedback_binarized)
                  the lists are whole conversations: context = the turns both share, which already
                  hold the prompt; the prompt text is checked against their last user turn, not added
    chat_pair     {"chosen": [messages], "rejected": [messages], "prompt"?: [messages] | text, "margin"?}
                  answer = each list's last message, which must be the assistant's; context = the
                  leading messages both lists share, after the prompt where the lists start with
                  the assistant's turn (TRL's format); lists that start with the prompt hold it already
    hh            {"chosen": "\\n\\nHuman: ... \\n\\nAssistant: ...", "rejected": "..."} (Anthropic HH-RLHF)
                  split on the last "\\n\\nAssistant:"; the contexts before it must be equal
    prompt_pair   {"prompt" | "messages", "chosen": "text", "rejected": "text", "margin"?}

Every pair shape takes a ``margin``, or ``score_chosen`` / ``score_rejected`` (margin = their
difference; equal scores tie and make no pair, as equal ranks do). No context may end
with either answer: ``messages`` that does (UltraFeedback copies ``chosen`` there) is a
transcript of the answer, not context, and a pair whose context still would is dropped
(``label_leak``); the label must never be readable from the prompt.

Adapters are tried in registration order and the first whose ``detect`` accepts the
row converts it (a row no adapter accepts is dropped as ``missing_fields``). An adapter
raises `Dropped(reason)` for a row it cannot use; those are counted, never silent.
"""
from __future__ import annotations

import collections
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from rlvr.preference.schema import Dropped, Pair, context_messages, ends_with_answer, expand_ranked, parse_message
from rlvr.registry import Registry

__all__ = ["Adapter", "ADAPTERS", "register_adapter", "find_adapter", "parse_hh", "accepted_shapes"]

Convert = Callable[[Mapping[str, Any], str, Optional[int], collections.Counter], list[Pair]]

_HUMAN, _ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
_HH_TURN = re.compile(r"\n\n(Human|Assistant):")
_ULTRAFEEDBACK_FIELDS = ("prompt_id", "score_chosen", "score_rejected")


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


def _number(row: Mapping[str, Any], key: str) -> Optional[float]:
    """The row's number ``key``, None when absent (or NaN: parquet's empty cell)."""
    value = row.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Dropped("malformed", f"{key} must be a number")
    return None if math.isnan(value) else float(value)


def _margin(row: Mapping[str, Any]) -> float:
    """The row's ``margin``, else ``score_chosen - score_rejected`` as the ranked schema takes scores.

    Equal scores tie, and ties make no pair (as equal ranks do); a chosen answer scored
    below the rejected one contradicts its label, and a negative margin would ask the
    reward model to prefer the rejected answer, so both rows are dropped.
    """
    margin = _number(row, "margin")
    if margin is not None:
        return margin
    chosen, rejected = _number(row, "score_chosen"), _number(row, "score_rejected")
    if chosen is None or rejected is None:
        return 0.0
    if chosen == rejected:
        raise Dropped("all_tie", f"score_chosen = score_rejected = {chosen:g}")
    if chosen < rejected:
        raise Dropped("score_order", f"score_chosen {chosen:g} < score_rejected {rejected:g}")
    return chosen - rejected


def _pair(row: Mapping[str, Any], uid: str, messages: list[dict], chosen: Any, rejected: Any, origin: str) -> Pair:
    if not isinstance(chosen, str) or not isinstance(rejected, str):
        raise Dropped("malformed", "chosen and rejected must be text")
    if chosen == rejected:
        raise Dropped("identical")
    if ends_with_answer(messages, (chosen, rejected)):
        raise Dropped("label_leak", "the context ends with the chosen or rejected answer")
    return Pair(uid=str(row.get("id", uid)), messages=messages, chosen=chosen, rejected=rejected,
                margin=_margin(row), origin=str(row.get("origin") or origin))


def _stated_context(row: Mapping[str, Any], answers: tuple[Any, Any]) -> Optional[list[dict]]:
    """The context the row states (``messages``, else ``prompt``), None when it states none.

    ``messages`` that ends with one of the answers is that answer's transcript, not a
    context (UltraFeedback's ``messages`` is ``chosen``); taking it would leak the label.
    """
    if row.get("messages") is not None:
        messages = context_messages({"messages": row["messages"]})
        if not ends_with_answer(messages, answers):
            return messages
    if row.get("prompt") is not None:
        return context_messages({"prompt": row["prompt"]})
    return None


def _last_user(messages: list[dict]) -> Optional[str]:
    return next((m["content"].strip() for m in reversed(messages) if m["role"] == "user"), None)


def _context(row: Mapping[str, Any], shared: list[dict], answers: tuple[Any, Any]) -> list[dict]:
    """A pair's context: the turns both answers continue (``shared``) and the row's stated prompt.

    Lists that open with the assistant's turn continue the stated prompt (TRL's explicit
    prompt), so it goes first. Lists that open with the prompt already hold it: the stated
    prompt is only checked (it must be the whole shared conversation, or one user turn equal
    to its last, the one answered), never added again; one that disagrees is dropped
    (``prompt_mismatch``), as a doubled or foreign user turn would train on a conversation
    nobody had.
    """
    stated = _stated_context(row, answers)
    if stated is None and not shared:
        if row.get("messages") is not None:
            raise Dropped("label_leak", "messages ends with the chosen or rejected answer and there is no prompt")
        raise Dropped("missing_fields", "no context: neither a prompt nor leading messages")
    if stated is None or stated == shared:
        return shared
    if not shared or shared[0]["role"] == "assistant":
        return stated + shared
    if len(stated) == 1 and stated[0]["role"] == "user" and _last_user(stated) == _last_user(shared):
        return shared
    raise Dropped("prompt_mismatch", "the prompt is neither the shared conversation nor its last user turn")


def _conversation(turns: Any) -> list[dict]:
    """A chosen/rejected message list: parsed, and ending with the assistant's answer."""
    if not isinstance(turns, list) or not turns:
        raise Dropped("malformed", "chosen and rejected must both be non-empty message lists")
    turns = [parse_message(m) for m in turns]
    if turns[-1]["role"] != "assistant":
        raise Dropped("malformed", "the last message of chosen and of rejected must be the assistant's")
    return turns


def _conversation_pair(row: Mapping[str, Any], uid: str, origin: str) -> Pair:
    """chosen/rejected message lists -> one pair: the answers are the last turns, the context the rest."""
    if row.get("chosen") is None or row.get("rejected") is None:
        raise Dropped("missing_fields", "chosen or rejected")
    chosen, rejected = _conversation(row["chosen"]), _conversation(row["rejected"])
    if chosen[:-1] != rejected[:-1]:
        raise Dropped("context_mismatch")
    answers = (chosen[-1]["content"], rejected[-1]["content"])
    return _pair(row, uid, _context(row, chosen[:-1], answers), *answers, origin)


def _is_ultrafeedback(row: Mapping[str, Any]) -> bool:
    """chosen/rejected lists that open with the prompt, with a text prompt or UltraFeedback's fields."""
    chosen, rejected = row.get("chosen"), row.get("rejected")
    if not isinstance(chosen, list) or not isinstance(rejected, list) or not chosen:
        return False
    opens_with_prompt = isinstance(chosen[0], Mapping) and chosen[0].get("role") in ("system", "user")
    return opens_with_prompt and (isinstance(row.get("prompt"), str) or any(f in row for f in _ULTRAFEEDBACK_FIELDS))


@register_adapter("ranked", '{id?, prompt | messages, answers: [{text, rank, score?}], origin?}',
                  lambda row: "answers" in row)
def _ranked(row, uid, max_pairs, drops):
    return expand_ranked(row, uid=uid, max_pairs=max_pairs, drops=drops)


@register_adapter("ultrafeedback", "{prompt?: text, chosen: [user, ..., assistant], rejected: [user, ..., assistant], "
                                   "messages?, prompt_id?, score_chosen?, score_rejected?} (UltraFeedback-binarized)",
                  _is_ultrafeedback)
def _ultrafeedback(row, uid, max_pairs, drops):
    return [_conversation_pair(row, uid, "ultrafeedback")]


@register_adapter("chat_pair", "{chosen: [messages], rejected: [messages], prompt?: [messages] | text, margin?}",
                  lambda row: isinstance(row.get("chosen"), list) or isinstance(row.get("rejected"), list))
def _chat_pair(row, uid, max_pairs, drops):
    return [_conversation_pair(row, uid, "chat_pair")]


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
    answers = (row["chosen"], row["rejected"])
    return [_pair(row, uid, _context(row, [], answers), *answers, "prompt_pair")]
