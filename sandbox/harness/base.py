"""What every harness returns, and the harness registry."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

from sandbox.limits import Limits
from sandbox.result import ExecResult

__all__ = ["CaseResult", "HarnessReport", "HarnessOptions", "Harness", "register_harness", "get_harness",
           "available_harnesses", "run_outcome", "BadTests", "new_token"]

# ExecResult status -> case outcome for a run that did not finish cleanly.
_STATUS_OUTCOME = {"timeout": "timeout", "cpu_limit": "timeout", "memory_limit": "memory_limit",
                   "output_limit": "output_limit", "killed": "runtime_error", "runtime_error": "runtime_error",
                   "sandbox_error": "sandbox_error", "ok": "runtime_error"}


class BadTests(ValueError):
    """The test specification itself is malformed (not the program's fault)."""


@dataclass(frozen=True)
class CaseResult:
    """One test case: ``outcome`` is ``passed`` or why it failed (``wrong_answer``,
    ``runtime_error``, ``timeout``, ``memory_limit``, ``output_limit``, ``early_exit``,
    ``sandbox_error``) or ``skipped`` after an earlier failure with early stop."""

    index: int
    outcome: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass(frozen=True)
class HarnessReport:
    """All cases of one program. ``outcome`` is ``passed`` or the first failure's outcome,
    or ``compile_error`` / ``unsupported`` when no case could run."""

    outcome: str
    cases: tuple[CaseResult, ...] = ()
    detail: str = ""
    runs: tuple[ExecResult, ...] = field(default=(), repr=False)

    @property
    def passed(self) -> int:
        return sum(c.passed for c in self.cases)

    @property
    def total(self) -> int:
        return len(self.cases)

    @property
    def fraction(self) -> float:
        return self.passed / self.total if self.cases else 0.0

    @classmethod
    def from_cases(cls, cases: list[CaseResult], runs: tuple[ExecResult, ...] = ()) -> "HarnessReport":
        failed = next((c for c in cases if not c.passed), None)
        if failed is None:
            return cls("passed", tuple(cases), runs=runs)
        return cls(failed.outcome, tuple(cases), detail=f"case {failed.index}: {failed.detail}"[:2000], runs=runs)


@dataclass(frozen=True)
class HarnessOptions:
    """limits: per run (``stdio``: per case; ``call``/``assert``: all cases in one run).
    early_stop: stop at the first failing case (the rest are ``skipped``)."""

    limits: Limits = field(default_factory=Limits)
    early_stop: bool = True


class Harness(Protocol):
    def run(self, pool: Any, source: str, language: str, tests: Mapping[str, Any],
            options: HarnessOptions) -> HarnessReport: ...


_HARNESSES: dict[str, Harness] = {}


def register_harness(kind: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        _HARNESSES[kind] = cls()
        return cls
    return deco


def get_harness(kind: str) -> Harness:
    if kind not in _HARNESSES:
        raise BadTests(f"unknown harness kind {kind!r}; known kinds: {', '.join(available_harnesses())}")
    return _HARNESSES[kind]


def available_harnesses() -> list[str]:
    return sorted(_HARNESSES)


def run_outcome(result: ExecResult) -> str:
    """Case outcome for a run that ended abnormally."""
    if result.detail == "compile_error":
        return "compile_error"
    return _STATUS_OUTCOME.get(result.status, "runtime_error")


def new_token() -> str:
    return secrets.token_hex(16)


def error_tail(result: ExecResult) -> str:
    text = result.stderr.strip() or result.detail
    return text[-500:]
