"""The tool protocol and its registry.

A tool is one small class::

    from rlvr.tools import ToolResult, register_tool

    @register_tool("reverse")
    class Reverse:
        description = "Reverse a string."
        parameters = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

        def __init__(self, **options): ...          # the tool's block under rollout.tools.options.<name>

        def run(self, requests):                    # a whole batch of calls at once
            return [ToolResult(r.call.arguments["text"][::-1]) for r in requests]

        def close(self): ...

``run`` gets every call of one rollout turn across the batch together (a tool may run them
concurrently: the python tool sends them to the sandbox pool at once) and returns one
`ToolResult` per request, in order. It must not raise for a bad call: a call it cannot serve
is ``ToolResult(message, status="error")``. Each request carries the episode's earlier calls
of the same tool (``history``), so a stateful tool can rebuild its state (the python tool
replays earlier cells in a fresh sandboxed process).

Third-party tools register through the ``rlvr.tools`` entry-point group (``name =
"package.module:Class"``), as verifiers do through ``rlvr.verifiers``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Mapping, Protocol, Sequence

from rlvr.registry import Registry

__all__ = ["Tool", "ToolCall", "ToolRequest", "ToolResult", "TOOLS", "register_tool", "get_tool", "tool_names",
           "tool_schemas", "TOOL_STATUSES", "ENTRY_POINT_GROUP"]

ENTRY_POINT_GROUP = "rlvr.tools"
TOOL_STATUSES = ("ok", "error", "timeout")  # error: the call failed (bad arguments, an exception, a limit)


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]
    raw: str = ""  # the call's text as the model wrote it


@dataclass(frozen=True)
class ToolRequest:
    call: ToolCall
    history: tuple[ToolCall, ...] = ()  # this episode's earlier calls of the same tool that ended "ok" (or that
    #                                      the tool marked detail["replay"]), oldest first: a cell that timed
    #                                      out or hit a limit is never replayed
    timeout_s: float = 5.0  # rollout.tools.timeout_s, plus the seconds its history took (a replay runs them again)


@dataclass
class ToolResult:
    output: str  # what enters the context (truncated by the rollout to rollout.tools.max_output_chars)
    status: str = "ok"  # one of TOOL_STATUSES
    seconds: float = 0.0  # execution time
    detail: Mapping[str, Any] = field(default_factory=dict)


class Tool(Protocol):
    description: str
    parameters: Mapping[str, Any]  # JSON schema of the arguments (the chat template's tool list)

    def run(self, requests: Sequence[ToolRequest]) -> list[ToolResult]: ...

    def close(self) -> None: ...


TOOLS: Registry[Any] = Registry("rollout.tools.names")
TOOLS.register_lazy("calculator", "rlvr.tools.builtin:Calculator")
TOOLS.register_lazy("python", "rlvr.tools.builtin:Python")


def register_tool(name: str):
    """Decorator: make a tool class available as ``name`` in ``rollout.tools.names``."""
    return TOOLS.register(name)


def _plugins() -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        TOOLS.register_lazy(ep.name, ep.value)


def tool_names() -> list[str]:
    _plugins()
    return sorted(TOOLS)


def get_tool(name: str, **options: Any) -> Tool:
    """The tool registered as ``name``, built with its options."""
    _plugins()
    return TOOLS.lookup(name)(**options)


def tool_schemas(names: Sequence[str]) -> list[dict[str, Any]]:
    """The tools' declarations in the shape chat templates read (``tools=`` of apply_chat_template)."""
    _plugins()
    out = []
    for name in names:
        cls = TOOLS.lookup(name)
        out.append({"type": "function", "function": {"name": name, "description": getattr(cls, "description", ""),
                                                     "parameters": dict(getattr(cls, "parameters", {}))}})
    return out
