"""Turn what the supervisor saw into an ``ExecResult`` with one status."""
from __future__ import annotations

import math
import os
import signal
from typing import Any, Mapping

from sandbox.result import ExecRequest, ExecResult

__all__ = ["classify"]

_MEMORY_MARKERS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")


def _memory_marked(stderr: str) -> bool:
    tail = stderr[-400:]
    return any(marker in tail for marker in _MEMORY_MARKERS)


def _status(run: Any, code: int | None, sig: int | None, request: ExecRequest, stderr: str) -> str:
    if run.killed_for is not None:
        return run.killed_for
    # The kernel enforces whole CPU seconds at tick granularity and rusage can read a
    # little under it; a SIGKILL we did not send near the limit is the CPU rlimit.
    cpu_limit = max(1, math.ceil(request.limits.cpu_seconds))
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and run.cpu >= cpu_limit * 0.75):
        return "cpu_limit"
    if _memory_marked(stderr) and (code != 0 or sig is not None):
        return "memory_limit"
    if sig is not None:
        return "killed" if sig == signal.SIGKILL else "runtime_error"
    return "ok" if code == 0 else "runtime_error"


def classify(run: Any, request: ExecRequest, plan: frozenset[str], files: Mapping[str, bytes]) -> ExecResult:
    """Build the result; a run that never reached untrusted code is a ``sandbox_error``."""
    setup = run.out["setup"].decode(errors="replace")
    stdout = run.out["stdout"].decode("utf-8", errors="replace")
    stderr = run.out["stderr"].decode("utf-8", errors="replace")
    common = dict(stdout=stdout, stderr=stderr, stdout_truncated=run.truncated["stdout"],
                  stderr_truncated=run.truncated["stderr"], layers=tuple(sorted(plan)))
    if not setup.startswith("ok") and run.killed_for is None:
        return ExecResult("sandbox_error", detail=f"sandbox set-up failed: {setup or 'no word from the program'}",
                          **common)
    code = sig = None
    if run.wstatus is not None:
        if os.WIFSIGNALED(run.wstatus):
            sig = os.WTERMSIG(run.wstatus)
        else:
            code = os.WEXITSTATUS(run.wstatus)
    status = _status(run, code, sig, request, stderr)
    return ExecResult(status, exit_code=code, signal=sig, wall_s=round(run.wall, 6), cpu_s=round(run.cpu, 6),
                      peak_memory_bytes=run.rss, report=bytes(run.out["report"]), files=dict(files),
                      detail=setup[3:], **common)
