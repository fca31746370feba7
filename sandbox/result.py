"""What goes into a sandbox run and what comes out of it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from sandbox.limits import Limits

__all__ = ["Status", "STATUSES", "Program", "ExecRequest", "ExecResult"]

Status = Literal["ok", "runtime_error", "timeout", "cpu_limit", "memory_limit", "output_limit", "killed", "sandbox_error"]
STATUSES: tuple[str, ...] = ("ok", "runtime_error", "timeout", "cpu_limit", "memory_limit", "output_limit", "killed",
                             "sandbox_error")


@dataclass(frozen=True)
class Program:
    """A program ready to run: its language and the files staged into the working directory.

    For compiled languages the files hold the compiled binary (see ``SandboxPool.prepare``).
    """

    language: str
    files: Mapping[str, bytes]


@dataclass(frozen=True)
class ExecRequest:
    """One execution.

    stdin:   bytes fed to the program (then EOF).
    driver:  for in-process languages, a harness driver spec (kind + inputs) that runs
             after the program; its records come back in ``ExecResult.report``. It never
             contains expected outputs, only inputs.
    collect: names of files to copy back from the working directory (compilation).
    argv:    run this command instead of the language's run command (compilation).
    """

    program: Program
    stdin: bytes = b""
    limits: Limits = field(default_factory=Limits)
    driver: Mapping[str, Any] | None = None
    collect: tuple[str, ...] = ()
    argv: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ExecResult:
    """The outcome of one execution.

    status:      one of ``STATUSES``; ``ok`` means exit code 0 within every limit.
    exit_code:   the exit status, or ``None`` when killed by a signal.
    signal:      the terminating signal number, or ``None``.
    stdout/err:  decoded output (UTF-8, invalid bytes replaced), at most ``Limits.output_bytes`` each.
    *_truncated: whether more was written than kept.
    wall_s:      wall-clock seconds from start to the end of the program's process.
    cpu_s:       user + system CPU seconds of the program and the children it reaped.
    peak_memory_bytes: peak resident set of the program's main process; for in-process
                 Python it includes the warm worker's pages it inherited (~13 MB).
    report:      records a harness driver wrote on its private report channel.
    files:       files named in ``ExecRequest.collect`` that existed afterwards.
    layers:      the isolation layers that were applied to this run.
    detail:      a note: why a sandbox_error happened, or ``compile_error`` when an
                 in-process language rejected the source before running any of it.
    """

    status: str
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_memory_bytes: int = 0
    report: bytes = b""
    files: Mapping[str, bytes] = field(default_factory=dict)
    layers: tuple[str, ...] = ()
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"
