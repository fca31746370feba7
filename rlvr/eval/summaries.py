"""Task summaries: summary.json keys a task adds from its held-out records, looked up by verifier name.

The loop knows no task. At the end of a run it calls `task_summary`, which reads the first
and the last held-out evaluation (RUN_DIR/eval/step_N.jsonl, `rlvr.eval.heldout`) and, for
every verifier the held-out prompts are routed to that has a summary registered here, merges
what that function returns::

    @register_summary("my_verifier")
    def my_summary(first: list[dict], last: list[dict]) -> dict: ...   # per-prompt records -> keys

Registered: ``judge_verdict`` (`rlvr.data.judge_pairs.judge_summary`: a trained judge's agreement,
per answer order, and its parse rate).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from rlvr.eval.heldout import read_eval_records
from rlvr.registry import Registry

__all__ = ["SUMMARIES", "register_summary", "task_summary"]

Summary = Callable[[list[dict[str, Any]], list[dict[str, Any]]], dict[str, Any]]
SUMMARIES: Registry[Summary] = Registry("task summary (by verifier name)")
register_summary = SUMMARIES.register
SUMMARIES.register_lazy("judge_verdict", "rlvr.data.judge_pairs:judge_summary")


def task_summary(run_dir: str | Path, verifiers: Iterable[str]) -> dict[str, Any]:
    """The registered summaries of ``verifiers`` over the run's first and last held-out records ({} without any)."""
    names = sorted(name for name in set(verifiers) if name in SUMMARIES)
    if not names:
        return {}
    records = read_eval_records(run_dir)
    if not records:
        return {}
    first, last = records[min(records)], records[max(records)]
    out: dict[str, Any] = {}
    for name in names:
        out.update(SUMMARIES.lookup(name)(first, last))
    return out
