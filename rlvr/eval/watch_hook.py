"""`RunWatch`: the training loop's one contact with the watch, the bad cases and the report.

    watch = RunWatch(cfg, parts.scorer, run_dir)        # construction (after the run directory)
    watch.on_resume(step)                               # after a checkpoint is restored
    actions = watch.on_step(step, sampled, metrics, ref) # every training step, before metrics are logged
    watch.on_eval(step, evaluation)                     # every held-out evaluation (`run_evaluation`)
    watch.on_end()                                      # after summary.json is written

`on_step` adds ``watch/*``, ``alert/*`` and ``time/watch`` to the step's metrics, prints
one warning per raised alert, appends the step's bad cases and the alerts' samples to
badcases.jsonl, and returns the `WatchResult`, whose ``stop`` and ``kl_factor`` the loop
acts on. It looks at this rank's first sampling round (``sampled.first_prompts`` /
``first_rollouts`` / ``first_result`` where the loop keeps them, else the kept batch when
that is the first round unchanged; across ranks the main rank watches its own share).
`on_eval` writes ``RUN_DIR/eval/step_<N>.jsonl`` and mines the held-out
answers; `on_end` writes report.html / report.png and merges summary.json
(`rlvr.eval.report`). Only the main rank writes (``is_main``).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import torch

from rlvr.config import ConfigError, TrainConfig
from rlvr.eval.badcases import BadCaseLog, case_rows, mine
from rlvr.eval.heldout import EVAL_DIR, Evaluation, write_eval_records
from rlvr.eval.watch import WATCH_CHECKS, StepView, Watch, WatchResult

__all__ = ["RunWatch", "ALERT_NAMES", "ALERTS_FILE", "SOURCES_FILE", "STATE_FILE"]

ALERTS_FILE = "alerts.jsonl"  # one row per raised alert: step, name, message
STATE_FILE = "watch_state.jsonl"  # per step where some condition holds: its streak (what a resume needs)
SOURCES_FILE = "sources.json"  # RUN_DIR/eval/sources.json: label -> kind, weight, learned (for the report)
# every alert a check can raise (per-source ones end in /<label>); stop_on / raise_kl_on name these
ALERT_NAMES = ("length_ratio", "truncation", "reward_length_corr", "distinct2", "unique_frac", "zero_spread",
               "entropy_collapse", "kl_per_sequence", "learned_vs_checkable", "rm_outside_stats")


def _check_requests(cfg: TrainConfig) -> None:
    w = cfg.watch
    for key in ("stop_on", "raise_kl_on"):
        unknown = [n for n in getattr(w, key) if n.split("/")[0] not in ALERT_NAMES]
        if unknown:
            raise ConfigError(f"watch.{key}: unknown alert(s) {', '.join(unknown)}; alerts: {', '.join(ALERT_NAMES)}")
    if w.raise_kl_on and cfg.algorithm.beta <= 0:
        raise ConfigError("watch.raise_kl_on needs a KL term to raise: set algorithm.beta > 0 (it loads the "
                          "reference model), or empty watch.raise_kl_on")
    if w.raise_kl_on and w.kl_factor <= 1:
        raise ConfigError(f"watch.kl_factor={w.kl_factor}: a raise multiplies algorithm.beta by it; use > 1")
    for name in w.disabled:
        if name not in WATCH_CHECKS:
            raise ConfigError(f"watch.disabled: unknown check {name!r}; checks: {', '.join(WATCH_CHECKS)}")


def _truncate_jsonl(path: Path, step: int) -> list[dict[str, Any]]:
    """Keep the rows of steps <= `step` (a torn line is dropped); returns them."""
    rows = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    rows = [r for r in rows if r.get("step", 0) <= step]
    if path.is_file():
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


class RunWatch:
    def __init__(self, cfg: TrainConfig, scorer: Any, run_dir: Any, is_main: bool = True):
        _check_requests(cfg)
        self.cfg, self.group_size, self.beta = cfg.watch, cfg.algorithm.group_size, cfg.algorithm.beta
        self.run_dir, self.path, self.is_main = run_dir, Path(getattr(run_dir, "path", run_dir)), is_main
        sources = list(getattr(scorer, "sources", []))
        learned = [s.label for s in sources if s.label in getattr(scorer, "learned", frozenset())]
        stats = {s.label: s.stats for s in sources if s.label in learned and getattr(s, "stats", None)}
        self.watch = Watch(cfg.watch, learned, stats)
        self.log = BadCaseLog(self.path) if is_main and cfg.watch.enabled else None
        if self.log is not None:
            kinds = {s.label: {"kind": c.kind, "weight": c.weight, "learned": s.label in learned}
                     for s, c in zip(sources, cfg.reward.sources)}
            (self.path / EVAL_DIR).mkdir(parents=True, exist_ok=True)
            (self.path / EVAL_DIR / SOURCES_FILE).write_text(json.dumps(kinds, indent=2) + "\n")

    @property
    def active(self) -> bool:
        return self.log is not None

    def on_resume(self, step: int) -> None:
        """Forget bad cases, alerts, streaks and held-out records after `step`; rebuild the watch's memory
        from metrics.jsonl."""
        if not self.active:
            return
        self.log.truncate(step)
        for path in (self.path / EVAL_DIR).glob("step_*.jsonl"):
            if path.stem[len("step_"):].isdigit() and int(path.stem[len("step_"):]) > step:
                path.unlink()  # an evaluation the killed process made after the checkpoint: it is redone
        kept = {name: _truncate_jsonl(self.path / name, step) for name in (ALERTS_FILE, STATE_FILE)}
        streaks = next((r["streaks"] for r in kept[STATE_FILE] if r["step"] == step), {})
        self.watch.replay([r for r in self.run_dir.read_metrics() if r.get("step", 0) <= step], streaks)

    def view(self, step: int, sampled: Any, metrics: dict[str, Any], ref_logprobs: Optional[torch.Tensor]):
        """(prompts, StepView) of the first sampling round, or None when the loop did not keep it."""
        rollouts = getattr(sampled, "first_rollouts", None)
        prompts, result = getattr(sampled, "first_prompts", None), getattr(sampled, "first_result", None)
        if rollouts is None or result is None:
            if sampled.refill_rounds or len(sampled.rollouts) != len(sampled.first.rewards):
                return None  # refilled, or `first` gathered over ranks: not this batch's scores
            rollouts, prompts, result = sampled.rollouts, sampled.prompts, sampled.first
        kl_seq = None
        if ref_logprobs is not None and rollouts is sampled.rollouts and ref_logprobs.shape == rollouts.logprobs.shape:
            kl_seq = ((rollouts.logprobs - ref_logprobs) * rollouts.completion_mask).sum(-1)
        return prompts, StepView(step, self.group_size, rollouts.texts, rollouts.lengths, rollouts.truncated,
                                 result, rollouts.completion_ids, rollouts.completion_mask, rollouts.logprobs,
                                 entropy=metrics.get("entropy"), kl=metrics.get("kl") if self.beta > 0 else None,
                                 kl_per_sequence=kl_seq, transcripts=rollouts.transcripts)

    def on_step(self, step: int, sampled: Any, metrics: dict[str, Any],
                ref_logprobs: Optional[torch.Tensor] = None) -> WatchResult:
        """The watch on one step (see the module docstring); adds its figures to `metrics`."""
        if not self.active:
            return WatchResult({}, [])
        t0 = time.perf_counter()
        seen = self.view(step, sampled, metrics, ref_logprobs)
        if seen is None:
            metrics["watch/unseen"] = 1.0  # refilled rounds without the first round kept: counted, not guessed
            return WatchResult({}, [])
        prompts, view = seen
        out = self.watch.observe(view)
        picked = mine(view, self.cfg)
        for alert in out.raised:
            print(f"warning: step {step}: watch alert {alert.name}: {alert.message}; "
                  f"{len(alert.samples)} sample(s) in {self.log.path.name}", flush=True)
            for i in alert.samples:
                picked.setdefault(i, []).append(("alert", f"{alert.name}: {alert.message}"))
        self.log.write(case_rows(view, prompts, picked, "train"))
        if out.raised:
            with open(self.path / ALERTS_FILE, "a") as f:
                f.write("".join(json.dumps({"step": step, "name": a.name, "message": a.message,
                                            "stop": out.stop, "kl_factor": out.kl_factor}) + "\n"
                                for a in out.raised))
        streaks = self.watch.streaks_now()
        if streaks:
            with open(self.path / STATE_FILE, "a") as f:
                f.write(json.dumps({"step": step, "streaks": streaks}) + "\n")
        metrics.update(out.metrics)
        metrics["time/watch"] = time.perf_counter() - t0
        return out

    def on_eval(self, step: int, evaluation: Evaluation) -> Optional[Path]:
        """RUN_DIR/eval/step_<N>.jsonl, and the held-out answers' failures and disagreements."""
        if not self.active:
            return None
        target = write_eval_records(self.path, step, evaluation.records(step))
        g = evaluation.greedy
        view = StepView(step, 1, g.texts, g.lengths, g.truncated, evaluation.result, transcripts=g.transcripts)
        self.log.write(case_rows(view, evaluation.prompts, mine(view, self.cfg), "eval"))
        return target

    def on_end(self) -> Optional[Path]:
        """report.html / report.png and summary.json's `dimensions` and `alerts`; a failure is a warning."""
        if not self.active or not self.cfg.report:
            return None
        from rlvr.eval.report import write_report

        try:
            out = write_report(self.path)
        except Exception as exc:  # the run itself is done and saved: a report bug must not fail it
            print(f"warning: the report failed ({type(exc).__name__}: {exc}); rerun `rlvr-report {self.path}`",
                  flush=True)
            return None
        print(f"report: {out}", flush=True)
        return out
