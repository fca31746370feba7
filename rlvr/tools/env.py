"""The environment protocol multi-turn rollouts talk to, and the tool-use environment.

An environment is one small class (see docs/tools.md for a game and a retry checker)::

    class Environment(Protocol):
        stop: tuple[str, ...]                       # strings that end a model turn early (a tool call's end)
        def reset(self, episode) -> state           # episode: the Prompt (or None); state: anything per rollout
        def respond(self, states, turns) -> list[Reply]   # every rollout's last turn at once
        def close(self) -> None

`rlvr.rollout.multiturn` calls ``respond`` after each model turn that did not run out of budget,
with one `Turn` per active rollout; a `Reply` says whether the episode is over, what to insert in
the context (the text is framed by the chat template's tool-response turn, never seen by the loss),
whether the model's turn simply goes on (``cont``: the stop string was not the end of a call), and
records for the run's metrics. State belongs to one rollout; nothing is shared between rollouts.

Environments register in `ENVIRONMENTS` (``rollout.tools.env``) or through the entry-point group
``rlvr.environments``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Mapping, Optional, Protocol, Sequence

from rlvr.registry import Registry
from rlvr.tools.base import ToolCall, ToolRequest, ToolResult, get_tool
from rlvr.tools.calls import find_call, stop_strings

__all__ = ["Environment", "Turn", "Reply", "ToolEnvironment", "ENVIRONMENTS", "register_environment",
           "build_environment", "environment_names", "truncate_output"]


@dataclass(frozen=True)
class Turn:
    text: str  # the model's last turn (since the last insertion), special tokens kept
    ended: bool  # it ended at an end-of-sequence id (the model finished its answer)
    calls_so_far: int  # insertions made in this episode before this turn


@dataclass
class Reply:
    done: bool = False  # the episode is over
    text: Optional[str] = None  # inserted as the environment's turn (None: nothing)
    cont: bool = False  # the model's turn goes on with nothing inserted
    records: list[dict[str, Any]] = field(default_factory=list)  # one per tool call: tool, status, seconds, reason


class Environment(Protocol):
    stop: tuple[str, ...]

    def reset(self, episode: Any) -> Any: ...

    def respond(self, states: Sequence[Any], turns: Sequence[Turn]) -> list[Reply]: ...

    def close(self) -> None: ...


ENVIRONMENTS: Registry[Any] = Registry("rollout.tools.env")
register_environment = ENVIRONMENTS.register
ENVIRONMENTS.register_lazy("retry_checker", "rlvr.tools.examples:RetryChecker")  # docs/tools.md's examples
ENVIRONMENTS.register_lazy("guess_number", "rlvr.tools.examples:GuessNumber")


def environment_names() -> list[str]:
    """The registered environments, plugins (entry-point group ``rlvr.environments``) included."""
    for ep in entry_points(group="rlvr.environments"):
        ENVIRONMENTS.register_lazy(ep.name, ep.value)
    return sorted(ENVIRONMENTS)


def build_environment(name: str, **options: Any) -> Environment:
    environment_names()
    return ENVIRONMENTS.lookup(name)(**options)


def truncate_output(text: str, limit: int) -> str:
    """At most ``limit`` characters: the head and the tail, with a note of what was cut."""
    if len(text) <= limit:
        return text
    note = f"\n...[{len(text) - limit} characters cut]...\n"
    if limit < len(note) + 8:
        note = "...[cut]..."
    if limit < len(note) + 2:
        return text[:limit]
    keep = limit - len(note)
    return text[:keep // 2] + note + text[len(text) - (keep - keep // 2):]


@dataclass
class _Episode:
    calls: list[ToolCall] = field(default_factory=list)  # the calls a stateful tool replays
    seconds: list[float] = field(default_factory=list)  # what each took, its replayed history's time left out

    def record(self, call: ToolCall, seconds: float) -> None:
        self.calls.append(call)
        self.seconds.append(seconds)


@register_environment("tools")
class ToolEnvironment:
    """The model calls the offered tools; each call's output (or error) is the next turn; an answer ends it."""

    def __init__(self, names: Sequence[str], call_format: str = "json", max_calls: int = 4, timeout_s: float = 5.0,
                 max_output_chars: int = 1024, tool_options: Optional[Mapping[str, Mapping[str, Any]]] = None):
        options = dict(tool_options or {})
        self.tools = {n: get_tool(n, **dict(options.get(n, {}))) for n in names}
        self.schemas = {n: dict(getattr(t, "parameters", {})) for n, t in self.tools.items()}
        self.fmt, self.max_calls, self.timeout_s = call_format, max_calls, timeout_s
        self.max_output_chars = max_output_chars
        self.stop = stop_strings(call_format)

    def reset(self, episode: Any) -> _Episode:
        return _Episode()

    def respond(self, states: Sequence[_Episode], turns: Sequence[Turn]) -> list[Reply]:
        replies: list[Optional[Reply]] = [None] * len(turns)
        pending: dict[str, list[tuple[int, ToolRequest]]] = {}
        for i, (state, turn) in enumerate(zip(states, turns)):
            found = find_call(turn.text, self.fmt, self.schemas, turn.ended)
            if found.kind == "none":
                replies[i] = Reply(done=True)
            elif found.kind == "continue":
                replies[i] = Reply(cont=True)
            elif found.kind == "error":
                record = {"tool": None, "status": "error", "seconds": 0.0, "reason": found.reason}
                replies[i] = Reply(done=turn.ended, text=None if turn.ended else found.error, records=[record])
            elif turn.calls_so_far >= self.max_calls:
                record = {"tool": found.call.name, "status": "error", "seconds": 0.0, "reason": "max_calls"}
                replies[i] = Reply(text=f"error: the limit of {self.max_calls} tool calls is reached; answer now",
                                   records=[record])
            else:
                call = found.call
                mine = [k for k, c in enumerate(state.calls) if c.name == call.name]
                timeout = self.timeout_s + sum(state.seconds[k] for k in mine)  # a replay gets the time it took
                request = ToolRequest(call, tuple(state.calls[k] for k in mine), timeout)
                pending.setdefault(call.name, []).append((i, request))
        for name, items in pending.items():
            start = time.perf_counter()
            try:
                results = list(self.tools[name].run([r for _, r in items]))
                if len(results) != len(items):
                    raise RuntimeError(f"{len(results)} results for {len(items)} calls")
            except Exception as e:  # a tool must not raise; if one does, its calls fail, the step goes on
                results = [ToolResult(f"error: the tool {name} failed: {type(e).__name__}: {e}", "error",
                                      time.perf_counter() - start)] * len(items)
            for (i, request), result in zip(items, results):
                if result.status == "ok" or result.detail.get("replay"):  # never replay a timeout or a limit
                    replayed = request.timeout_s - self.timeout_s  # its history's seconds, part of its own
                    states[i].record(request.call, max(float(result.seconds) - replayed, 0.0))
                text = truncate_output(result.output, self.max_output_chars)
                replies[i] = Reply(text=text, records=[{"tool": name, "status": result.status,
                                                        "seconds": float(result.seconds), "reason": result.status}])
        return [r if r is not None else Reply(done=True) for r in replies]

    def close(self) -> None:
        for tool in self.tools.values():
            tool.close()
