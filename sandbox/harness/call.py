"""``call`` harness: call a function with each case's arguments; compare in the parent.

Tests: ``{"entry_point": "add", "cases": [{"args": [1, 2], "kwargs": {}, "expected": 3, "also_expected"?: v}, ...],
"float_tolerance": float?}``. ``entry_point`` may be ``"Class.method"`` (a fresh instance
per case). Only the arguments enter the sandbox. Each return value is rebuilt there from
exact builtin types and sent back as JSON on the report channel; the comparison with
``expected`` happens here, so an object whose ``__eq__`` always answers True is not a
builtin value and fails. Tuples compare equal to lists (JSON has only lists); ``True``
never equals ``1``. All cases run in one process, one after another.
"""
from __future__ import annotations

import json
import math
from typing import Any, Mapping

from sandbox.harness.base import BadTests, CaseResult, HarnessOptions, HarnessReport, register_harness
from sandbox.harness.records import cases_report, run_driver

__all__ = ["CallHarness", "values_equal"]


def values_equal(got: Any, want: Any, tol: float | None = None) -> bool:
    """Structural equality of JSON values; bools are not numbers; floats within ``tol``."""
    if isinstance(want, bool) or isinstance(got, bool):
        return type(got) is type(want) and got == want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if got == want:
            return True
        if isinstance(want, float) and math.isnan(want):
            return isinstance(got, float) and math.isnan(got)
        return tol is not None and abs(got - want) <= tol * max(1.0, abs(want))
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(values_equal(g, w, tol) for g, w in zip(got, want))
    if isinstance(want, dict) and isinstance(got, dict):
        return got.keys() == want.keys() and all(values_equal(got[k], want[k], tol) for k in want)
    return type(got) is type(want) and got == want


def _cases(tests: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    entry_point, cases = tests.get("entry_point"), tests.get("cases")
    if not isinstance(entry_point, str) or not entry_point:
        raise BadTests("call tests need an 'entry_point' (function name)")
    if not isinstance(cases, list) or not cases or not all(isinstance(c, dict) and "expected" in c for c in cases):
        raise BadTests("call tests need a non-empty 'cases' list of {args, kwargs?, expected}")
    return entry_point, cases


@register_harness("call")
class CallHarness:
    def run(self, pool: Any, source: str, language: str, tests: Mapping[str, Any],
            options: HarnessOptions) -> HarnessReport:
        entry_point, cases = _cases(tests)
        tol = tests.get("float_tolerance")
        tol = float(tol) if tol is not None else None
        try:
            wire = [{"args": json.dumps(list(c.get("args", []))), "kwargs": json.dumps(dict(c.get("kwargs", {})))}
                    for c in cases]
        except (TypeError, ValueError) as exc:
            raise BadTests(f"call arguments must be JSON values: {exc}") from None
        run = run_driver(pool, source, language, {"kind": "call", "entry_point": entry_point, "cases": wire}, options)
        if isinstance(run, HarnessReport):
            return run

        def judge(index: int, record: Mapping[str, Any]) -> CaseResult:
            if "error" in record:
                return CaseResult(index, "runtime_error", str(record["error"])[-500:])
            if "unserializable" in record:  # e.g. an object claiming to equal everything
                return CaseResult(index, "wrong_answer", str(record["unserializable"])[-500:])
            want = cases[index]["expected"]
            if values_equal(record.get("value"), want, tol) or (
                    "also_expected" in cases[index] and values_equal(record.get("value"), cases[index]["also_expected"], tol)):
                return CaseResult(index, "passed")
            return CaseResult(index, "wrong_answer", f"expected {want!r:.200}, got {record.get('value')!r:.200}")

        return cases_report(run, len(cases), judge, options.early_stop)
