"""Running an in-process driver and reading back its records (shared by ``call`` and ``assert``)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from sandbox.harness.base import CaseResult, HarnessOptions, HarnessReport, error_tail, new_token, run_outcome
from sandbox.languages import get_language
from sandbox.result import ExecRequest, ExecResult

__all__ = ["DriverRun", "run_driver", "cases_report"]


@dataclass
class DriverRun:
    """The run and the records carrying this run's token (others are ignored)."""

    result: ExecResult
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    done: bool = False
    fatal: str | None = None


def _parse(report: bytes, token: str) -> DriverRun:
    run = DriverRun(result=None)  # type: ignore[arg-type]
    for line in report.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("t") != token:
            continue
        if record.get("done") is True:
            run.done = True
        elif "fatal" in record:
            run.fatal = str(record["fatal"])
        elif isinstance(record.get("case"), int):
            run.records.setdefault(record["case"], record)
    return run


def run_driver(pool: Any, source: str, language: str, driver: dict[str, Any],
               options: HarnessOptions) -> DriverRun | HarnessReport:
    """Run ``source`` with ``driver``; a ``HarnessReport`` when the language cannot host it."""
    spec = get_language(language)
    if not spec.in_process:
        return HarnessReport("unsupported", detail=f"the {driver['kind']} harness needs an in-process language "
                                                   f"(python), not {spec.name}")
    token = new_token()
    prepared = pool.prepare(spec.name, source)
    request = ExecRequest(prepared.program, limits=options.limits,
                          driver={**driver, "token": token, "early_stop": options.early_stop})
    result = pool.run(request)
    run = _parse(result.report, token)
    run.result = result
    return run


def cases_report(run: DriverRun, total: int, judge: Callable[[int, Mapping[str, Any]], CaseResult],
                 early_stop: bool) -> HarnessReport:
    """Turn driver records into per-case results.

    A case without a record failed: the program died, ran out of time, or exited before
    its tests finished (``early_exit``: it ended "cleanly" but the driver never said done).
    """
    result = run.result
    if run.fatal is not None and not run.records:
        return HarnessReport("runtime_error", detail=run.fatal[-500:], runs=(result,))
    cases: list[CaseResult] = []
    for index in range(total):
        if cases and not cases[-1].passed and early_stop:
            cases.append(CaseResult(index, "skipped"))
        elif index in run.records:
            cases.append(judge(index, run.records[index]))
        elif result.status == "ok" and run.done:
            cases.append(CaseResult(index, "skipped"))
        elif result.status == "ok":
            cases.append(CaseResult(index, "early_exit", "the program exited before its tests finished"))
        else:
            cases.append(CaseResult(index, run_outcome(result), error_tail(result) or result.status))
    if not run.done and all(c.passed for c in cases):  # every case reported, yet the run did not finish
        outcome = "early_exit" if result.status == "ok" else run_outcome(result)
        cases[-1] = CaseResult(total - 1, outcome, "the program did not let its tests finish")
    return HarnessReport.from_cases(cases, (result,))
