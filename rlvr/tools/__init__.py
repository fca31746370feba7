"""Tools a policy calls inside its rollouts, and the environments multi-turn rollouts talk to.

    base       Tool (one small class: name, description, parameters schema, run), ToolCall, ToolRequest,
               ToolResult, the registry (`register_tool`, entry-point group ``rlvr.tools``), get_tool
    builtin    calculator (exact arithmetic, no code) and python (a cell run in the sandbox)
    calls      finding a tool call at the end of a model turn: ``json`` (the template's
               ``<tool_call>{"name": ..., "arguments": ...}</tool_call>``) or ``fenced`` (a ```python cell)
    env        Environment (reset / respond / close), Reply, ToolEnvironment, the ``rlvr.environments``
               registry
    insert     the chat template's tool-response turn as token ids (what a rollout inserts)

`rlvr.rollout.multiturn` drives an engine turn by turn through an `Environment`.
"""
from rlvr.tools.base import (TOOLS, Tool, ToolCall, ToolRequest, ToolResult, get_tool, register_tool,
                             tool_names, tool_schemas)

__all__ = ["TOOLS", "Tool", "ToolCall", "ToolRequest", "ToolResult", "get_tool", "register_tool", "tool_names",
           "tool_schemas"]
