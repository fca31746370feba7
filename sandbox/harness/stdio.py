"""``stdio`` harness: feed each case's input on stdin, compare stdout in the parent.

Tests: ``{"cases": [{"input": str, "output": str}, ...], "float_tolerance": float?}``.
Comparison ignores trailing whitespace on lines, blank lines at the start and at the end,
and runs of spaces between tokens; with ``float_tolerance`` set, tokens that both parse as numbers
match when ``|got - want| <= tol * max(1, |want|)``. Each case is its own process, so
nothing carries over between cases. Works for every language.
"""
from __future__ import annotations

from typing import Any, Mapping

from sandbox.harness.base import (BadTests, CaseResult, HarnessOptions, HarnessReport, error_tail,
                                  register_harness, run_outcome)
from sandbox.result import ExecRequest, ExecResult

__all__ = ["StdioHarness", "outputs_match"]


def _tokens_match(got: str, want: str, tol: float | None) -> bool:
    if got == want:
        return True
    if tol is None:
        return False
    try:
        g, w = float(got), float(want)
    except ValueError:
        return False
    return abs(g - w) <= tol * max(1.0, abs(w))


def _lines(text: str) -> list[list[str]]:
    lines = [line.split() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    start = next((i for i, line in enumerate(lines) if line), len(lines))
    return lines[start:]


def outputs_match(got: str, want: str, float_tolerance: float | None = None) -> bool:
    """Whitespace-normalized (and optionally float-tolerant) comparison of two outputs."""
    got_lines, want_lines = _lines(got), _lines(want)
    if len(got_lines) != len(want_lines):
        return False
    for g_line, w_line in zip(got_lines, want_lines):
        if len(g_line) != len(w_line) or not all(_tokens_match(g, w, float_tolerance) for g, w in zip(g_line, w_line)):
            return False
    return True


def _judge(index: int, result: ExecResult, want: str, tol: float | None) -> CaseResult:
    if result.status != "ok":
        return CaseResult(index, run_outcome(result), error_tail(result) or result.status)
    if outputs_match(result.stdout, want, tol):
        return CaseResult(index, "passed")
    return CaseResult(index, "wrong_answer", f"expected {want[:200]!r}, got {result.stdout[:200]!r}")


def _cases(tests: Mapping[str, Any]) -> list[tuple[str, str]]:
    cases = tests.get("cases")
    if not isinstance(cases, list) or not cases:
        raise BadTests("stdio tests need a non-empty 'cases' list of {input, output}")
    try:
        return [(str(c.get("input", "")), str(c["output"])) for c in cases]
    except (AttributeError, KeyError, TypeError):
        raise BadTests("every stdio case needs an 'output' (and usually an 'input')") from None


@register_harness("stdio")
class StdioHarness:
    def run(self, pool: Any, source: str, language: str, tests: Mapping[str, Any],
            options: HarnessOptions) -> HarnessReport:
        cases = _cases(tests)
        tol = tests.get("float_tolerance")
        tol = float(tol) if tol is not None else None
        prepared = pool.prepare(language, source)
        if not prepared.ok:
            return HarnessReport("compile_error", detail=error_tail(prepared.compile_result),
                                 runs=(prepared.compile_result,))
        requests = [ExecRequest(prepared.program, stdin=stdin.encode(), limits=options.limits) for stdin, _ in cases]
        if not options.early_stop:
            runs = pool.run_batch(requests)
            return HarnessReport.from_cases([_judge(i, r, cases[i][1], tol) for i, r in enumerate(runs)], tuple(runs))
        results, runs = [], []
        for index, request in enumerate(requests):
            run = pool.run(request)
            runs.append(run)
            results.append(_judge(index, run, cases[index][1], tol))
            if not results[-1].passed:
                results += [CaseResult(i, "skipped") for i in range(index + 1, len(cases))]
                break
        return HarnessReport.from_cases(results, tuple(runs))
