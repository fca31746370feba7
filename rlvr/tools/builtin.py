"""The built-in tools: ``calculator`` (exact arithmetic, no code runs) and ``python`` (a cell run in the sandbox).

``python`` runs every call of a batch concurrently in one warm `sandbox.SandboxPool`, each in a
fresh sandboxed process with every layer the host offers (the pool refuses plans that would
leave a hostile cell loose). State between cells (``stateful``, the default) is rebuilt by
replaying the episode's earlier cells first, their output discarded and their errors ignored,
so no process outlives its call and no two rollouts ever share one.
"""
from __future__ import annotations

import ast
import json
import marshal
import operator
import time
from fractions import Fraction
from typing import Any, Optional, Sequence

from rlvr.tools.base import ToolRequest, ToolResult

__all__ = ["Calculator", "Python", "cell_program"]


_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_BITS = 13_300  # about 4,000 decimal digits, numerator or denominator
_MAX_SOURCE = 2000


class Calculator:
    """Exact arithmetic on integers and fractions: + - * / // % ** and parentheses."""

    description = "Evaluate an arithmetic expression exactly (+ - * / // % ** and parentheses)."
    parameters = {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}

    def __init__(self, **options: Any) -> None:
        pass

    def run(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        return [self._one(r) for r in requests]

    def _one(self, request: ToolRequest) -> ToolResult:
        start = time.perf_counter()
        expr = request.call.arguments.get("expression", request.call.arguments.get("code", ""))
        try:
            if len(str(expr)) > _MAX_SOURCE:
                raise ValueError(f"the expression is longer than {_MAX_SOURCE} characters")
            value = self._eval(ast.parse(str(expr).strip(), mode="eval").body)
            text = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
            return ToolResult(text, "ok", time.perf_counter() - start)
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, TypeError) as e:
            return ToolResult(f"error: {type(e).__name__}: {e}", "error", time.perf_counter() - start)
        except (RecursionError, MemoryError):  # the parser's own limits on deep nesting
            return ToolResult("error: the expression is nested too deeply", "error", time.perf_counter() - start)

    def _eval(self, node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return Fraction(repr(node.value))  # 0.1 is 1/10, not the binary double nearest to it
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self._eval(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self._eval(node.left), self._eval(node.right)
            if isinstance(node.op, ast.Pow):
                bits = max(abs(left.numerator), left.denominator).bit_length() - 1  # the result has > bits * exponent
                if right.denominator != 1 or abs(right) > 10_000 or bits * abs(right) > _MAX_BITS:
                    raise ValueError("exponent too large or not an integer")
            if isinstance(node.op, (ast.FloorDiv, ast.Mod)):
                return Fraction(_BINARY[type(node.op)](left, right))
            value = _BINARY[type(node.op)](left, right)
            if max(abs(value.numerator), value.denominator).bit_length() > _MAX_BITS:
                raise ValueError("result too large")
            return value
        raise ValueError(f"not arithmetic: {ast.dump(node)[:60]}")

    def close(self) -> None:
        pass


_DRIVER = '''import sys, io, json, linecache, os, traceback
_cells = json.loads(_CELLS)
_ns = {"__name__": "__main__"}
_out, _exit = sys.stdout, os._exit
def _replayed_exit(code=0):
    raise SystemExit(code)
for _i, _src in enumerate(_cells):
    _last = _i == len(_cells) - 1
    if not _last:  # a replayed cell's os._exit ends that cell, not the whole replay
        sys.stdout = sys.stderr = io.StringIO()
        os._exit = _replayed_exit
    else:
        sys.stdout, sys.stderr = _out, sys.__stderr__
        os._exit = _exit
        linecache.cache["<cell>"] = (len(_src), None, _src.splitlines(True), "<cell>")
    try:
        exec(compile(_src, "<cell>", "exec"), _ns)
    except SystemExit:
        pass
    except BaseException as _e:
        if _last:
            _frames = [f for f in traceback.extract_tb(_e.__traceback__) if f.filename == "<cell>"][-3:]
            print(*["Traceback (most recent call last):\\n"][:len(_frames)], *traceback.format_list(_frames),
                  *traceback.format_exception_only(type(_e), _e), sep="", end="", file=sys.stderr)
            sys.exit(1)
'''
# Compiling the driver took ~0.3 ms per call inside the sandbox, more than running print(1) itself;
# it is compiled once here and each call's program only unmarshals it (the pool's workers run this
# same interpreter: ``sys.executable``).
_DRIVER_CODE = marshal.dumps(compile(_DRIVER, "<driver>", "exec")).hex()
_PROGRAM = "_CELLS = {cells!r}\nimport marshal\nexec(marshal.loads(bytes.fromhex({code!r})))\n"


_NOTES = {"runtime_error": "", "memory_limit": "error: the cell ran out of memory",
          "output_limit": "error: the cell printed more than its output limit",
          "killed": "error: the cell was killed", "sandbox_error": "error: the sandbox failed to run the cell"}


def _lines(*parts: Optional[str]) -> str:
    """The parts (stdout, stderr, a note) one after another, each starting on a line of its own."""
    out = ""
    for part in filter(None, parts):
        out += ("\n" if out and not out.endswith("\n") else "") + part
    return out


def cell_program(history: Sequence[str], code: str) -> str:
    """The program run for one call: earlier cells replayed silently, then ``code`` with its output."""
    return _PROGRAM.format(cells=json.dumps([*history, code]), code=_DRIVER_CODE)


class Python:
    """Run a Python cell in the sandbox and return what it printed (stdout, then stderr)."""

    description = "Run Python code in a sandbox and return what it prints (print the result you need)."
    parameters = {"type": "object", "properties": {"code": {"type": "string"}}, "required": ["code"]}

    def __init__(self, workers: int = 0, stateful: bool = True, memory_mb: int = 512,
                 pool: Optional[Any] = None, **_: Any) -> None:
        import os

        from sandbox import SandboxPool

        self.stateful = stateful
        self.memory_bytes = memory_mb << 20
        self._own = pool is None
        self.pool = pool if pool is not None else SandboxPool(workers=workers or os.cpu_count() or 1)

    def run(self, requests: Sequence[ToolRequest]) -> list[ToolResult]:
        from sandbox import ExecRequest, Limits, Program

        execs = []
        for r in requests:
            history = [c.arguments.get("code", "") for c in r.history] if self.stateful else []
            source = cell_program([str(h) for h in history], str(r.call.arguments.get("code", "")))
            limits = Limits(wall_s=r.timeout_s, memory_bytes=self.memory_bytes, output_bytes=64 << 10)
            execs.append(ExecRequest(Program("python", {"main.py": source.encode()}), limits=limits))
        return [self._result(x) for x in self.pool.run_batch(execs)]

    @staticmethod
    def _result(x: Any) -> ToolResult:
        if x.status == "ok":
            return ToolResult(_lines(x.stdout, x.stderr), "ok", x.wall_s)
        if x.status in ("timeout", "cpu_limit"):
            return ToolResult(_lines(x.stdout, x.stderr, "error: the cell ran past its time limit"), "timeout",
                              x.wall_s, {"status": x.status})
        note = _NOTES.get(x.status, f"error: the cell ended with {x.status}")
        # a cell that raised is replayed (its effects up to the exception are cheap and deterministic);
        # one killed for a limit is not, or every later cell of the episode would hit it again
        return ToolResult(_lines(x.stdout, x.stderr, note), "error", x.wall_s,
                          {"status": x.status, "replay": x.status == "runtime_error"})

    def close(self) -> None:
        if self._own:
            self.pool.close()
