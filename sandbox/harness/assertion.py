"""``assert`` harness: run test code against the program (HumanEval / MBPP style).

Tests, either
``{"test": "def check(candidate): assert candidate(1) == 2 ...", "entry_point": "f"}``
(HumanEval: one case; ``check`` names the checking function, default ``"check"``), or
``{"tests": ["assert f(1) == 2", ...], "entry_point": "f"?, "setup": "import math"?}``
(MBPP: one case per snippet). Test code runs in the program's process and namespace
(HumanEval tests call helpers the prompt defines), so the verdict cannot be judged in
the parent; instead the driver reports each case on the private report channel and
the run counts only with the final ``done`` record. Every value the entry point
returns is rebuilt from exact builtin types before the asserts see it, so an
always-equal object fails. A program that exits before its tests finish - ``exit()``,
``os._exit(0)``, ``SystemExit`` in a test - has failed.
"""
from __future__ import annotations

from typing import Any, Mapping

from sandbox.harness.base import BadTests, CaseResult, HarnessOptions, HarnessReport, register_harness
from sandbox.harness.records import cases_report, run_driver

__all__ = ["AssertHarness"]

_OPAQUE_MARK = "not a builtin value"  # raised by driver.Opaque when a test touches such a value


def _driver(tests: Mapping[str, Any]) -> dict[str, Any]:
    entry_point = tests.get("entry_point")
    if entry_point is not None and not isinstance(entry_point, str):
        raise BadTests("'entry_point' must be a function name")
    setup = str(tests.get("setup") or "")
    if isinstance(tests.get("test"), str):
        if not entry_point:
            raise BadTests("HumanEval-style assert tests ('test') need an 'entry_point'")
        return {"kind": "assert", "entry_point": entry_point, "check": str(tests.get("check") or "check"),
                "tests": [setup + "\n" + tests["test"]]}
    snippets = tests.get("tests")
    if not isinstance(snippets, list) or not snippets or not all(isinstance(t, str) for t in snippets):
        raise BadTests("assert tests need 'test' (HumanEval check code) or 'tests' (a list of assert snippets)")
    if setup:
        snippets = [setup + "\n" + t for t in snippets]
    return {"kind": "assert", "entry_point": entry_point, "check": None, "tests": snippets}


@register_harness("assert")
class AssertHarness:
    def run(self, pool: Any, source: str, language: str, tests: Mapping[str, Any],
            options: HarnessOptions) -> HarnessReport:
        driver = _driver(tests)
        run = run_driver(pool, source, language, driver, options)
        if isinstance(run, HarnessReport):
            return run

        def judge(index: int, record: Mapping[str, Any]) -> CaseResult:
            if record.get("ok") is True:
                return CaseResult(index, "passed")
            error = str(record.get("error", ""))
            if error.startswith("AssertionError") or _OPAQUE_MARK in error:
                return CaseResult(index, "wrong_answer", error[-500:])
            outcome = "memory_limit" if error.startswith("MemoryError") else "runtime_error"
            return CaseResult(index, outcome, error[-500:])

        return cases_report(run, len(driver["tests"]), judge, options.early_stop)
