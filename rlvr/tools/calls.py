"""Finding the tool call at the end of a model turn.

Two call formats (``rollout.tools.call_format``):

- ``json``: the chat template's tool-call format, as Qwen2.5, Hermes and most open templates
  write it: ``<tool_call>{"name": "python", "arguments": {"code": "print(2**10)"}}</tool_call>``.
  Generation stops at ``</tool_call>``.
- ``fenced``: a Markdown code cell, ```` ```python\\n...\\n``` ````, run by the tool named after
  its language tag (``python``). Generation stops at a fence followed by a newline; a stop at an
  *opening* fence (an odd number of fences in the turn) only continues the turn.

`find_call` returns what the turn asks for: nothing (an ordinary answer), a call, "continue"
(the stop string was not the end of a call), or an error the model reads in its context (a call
that never closes, malformed JSON, an unknown tool, arguments that do not match).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from rlvr.tools.base import ToolCall

__all__ = ["CALL_FORMATS", "Found", "find_call", "stop_strings", "render_call"]

CALL_FORMATS = ("json", "fenced")
_OPEN, _CLOSE = "<tool_call>", "</tool_call>"
_FENCE = "```"
_CELL = re.compile(r"```([A-Za-z0-9_+-]*)[ \t]*\n(.*?)\n?```\s*$", re.S)


@dataclass(frozen=True)
class Found:
    kind: str  # none | call | continue | error
    call: Optional[ToolCall] = None
    error: str = ""  # for kind == "error": the message inserted as the tool's answer
    reason: str = ""  # for kind == "error": a short counted reason (unclosed | malformed | unknown_tool | arguments)


def stop_strings(fmt: str) -> tuple[str, ...]:
    return (_CLOSE,) if fmt == "json" else (_FENCE + "\n",)


def render_call(fmt: str, name: str, arguments: Mapping[str, Any]) -> str:
    """A call as the model should write it (SFT traces, docs)."""
    if fmt == "json":
        return f"{_OPEN}{json.dumps({'name': name, 'arguments': dict(arguments)})}{_CLOSE}"
    return f"{_FENCE}{name}\n{arguments['code']}\n{_FENCE}\n"


def find_call(turn: str, fmt: str, tools: Mapping[str, Mapping[str, Any]], ended: bool) -> Found:
    """The call this turn ends with. ``tools``: name -> parameters schema of the offered tools;
    ``ended``: the turn ended at an end-of-sequence id (then an open call never closes)."""
    if fmt == "json":
        return _find_json(turn, tools, ended)
    return _find_fenced(turn, tools, ended)


def _find_json(turn: str, tools: Mapping[str, Mapping[str, Any]], ended: bool) -> Found:
    start = turn.rfind(_OPEN)
    if start < 0:
        return Found("none")
    body_end = turn.find(_CLOSE, start)
    if body_end < 0:
        if ended:
            return Found("error", error=f"error: the tool call was never closed with {_CLOSE}", reason="unclosed")
        return Found("none")
    if turn[body_end + len(_CLOSE):].strip():  # text after the last call: the turn did not end at it
        return Found("none")
    raw = turn[start:body_end + len(_CLOSE)]
    try:
        data = json.loads(turn[start + len(_OPEN):body_end])
    except ValueError as e:
        return Found("error", error=f"error: the tool call is not valid JSON ({e})", reason="malformed")
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return Found("error", error='error: a tool call is {"name": ..., "arguments": {...}}', reason="malformed")
    args = data.get("arguments", {})
    if isinstance(args, str):  # some templates serialize arguments as a JSON string
        try:
            args = json.loads(args)
        except ValueError:
            return Found("error", error="error: the tool call's arguments are not valid JSON", reason="malformed")
    if not isinstance(args, dict):
        return Found("error", error="error: the tool call's arguments must be an object", reason="malformed")
    return _checked(ToolCall(data["name"], args, raw), tools)


def _find_fenced(turn: str, tools: Mapping[str, Mapping[str, Any]], ended: bool) -> Found:
    fences = turn.count(_FENCE)
    if fences == 0:
        return Found("none")
    if fences % 2 == 1:
        if ended:
            return Found("error", error="error: the code cell was never closed with ```", reason="unclosed")
        return Found("continue")
    if ended:  # a closed cell inside a finished answer is part of the answer, not a call
        return Found("none")
    match = _CELL.search(turn[turn.rfind(_FENCE, 0, turn.rfind(_FENCE)):])
    if match is None:
        return Found("none")
    lang = match.group(1) or "python"
    required = tools.get(lang, {}).get("required") or ["code"]  # the cell's body is the tool's first argument
    return _checked(ToolCall(lang, {required[0]: match.group(2)}, match.group(0)), tools)


def _checked(call: ToolCall, tools: Mapping[str, Mapping[str, Any]]) -> Found:
    if call.name not in tools:
        return Found("error", error=f"error: unknown tool {call.name!r}; available: {', '.join(sorted(tools))}",
                     reason="unknown_tool")
    schema = tools[call.name]
    missing = [k for k in schema.get("required", ()) if k not in call.arguments]
    if missing:
        return Found("error", error=f"error: {call.name} needs the argument(s) {', '.join(missing)}",
                     reason="arguments")
    return Found("call", call)


def names(found: Sequence[Found]) -> list[str]:
    return [f.call.name for f in found if f.call is not None]
