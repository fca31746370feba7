"""The reward-hacking watch: cheap per-step figures of what the policy is doing, and alerts.

Every training step the loop hands the watch a `StepView` (the first sampling round's
completions, their rewards per source, lengths, truncation, entropy, KL). Each registered
check (``WATCH_CHECKS``, implemented in `rlvr.eval.watch_checks`) returns a `Reading`:
figures, logged as ``watch/<name>``, and conditions. A condition that holds for
``watch.patience`` consecutive steps raises its alert: ``alert/<name> = 1`` is set in the
step's metrics for as long as it holds, and on the step it is raised (the crossing) the
watch returns one message, the triggering samples' indices (for badcases.jsonl), and any
request the config attaches to it (``watch.stop_on``: stop the run; ``watch.raise_kl_on``:
multiply the KL coefficient by ``watch.kl_factor``). The loop acts on requests; the watch
only asks.

Sources are *learned* (reward models, judges: ``RewardResult.learned``) or *checkable*
(verifiers, rules: every other source). The checkable quality of a step is the pass rate
where a source decides pass/fail, else the mean over checkable sources' mean rewards.

The watch's memory (baselines, trend series, alert streaks) is rebuilt from logged
metrics rows on resume (`Watch.replay`), so a resumed run raises the same alerts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence

import torch

from rlvr.eval.config import WatchConfig
from rlvr.registry import Registry
from rlvr.rewards.scorer import RewardResult

__all__ = ["StepView", "Condition", "Reading", "WatchMemory", "Watch", "WatchResult", "Alert", "WATCH_CHECKS",
           "register_check", "checked_pass"]


def checked_pass(result: RewardResult, label: str) -> torch.Tensor:
    """[N] bool: the checkable source `label` passed the row: a verifier's verdict ``correct`` (reward > 0),
    or full marks (reward >= 1) from a source with other reasons (a rule's ``met``)."""
    rewards, reasons = result.per_source[label].float(), result.reasons[label]
    correct = torch.tensor([r == "correct" for r in reasons], dtype=torch.bool)
    return (correct & (rewards > 0)) | (rewards >= 1.0 - 1e-6)


@dataclass
class StepView:
    """What the watch sees of one step; tensors are [N] (N = prompts x group_size) unless noted."""

    step: int
    group_size: int
    texts: list[str]
    lengths: torch.Tensor  # completion tokens (float)
    truncated: torch.Tensor  # bool: reached max_new_tokens without an end-of-sequence id
    result: RewardResult  # rewards per source, raw RM scores, reasons, learned labels
    completion_ids: Optional[torch.Tensor] = None  # [N, C] tokens (distinct-2)
    completion_mask: Optional[torch.Tensor] = None  # [N, C] 1 on real tokens
    logprobs: Optional[torch.Tensor] = None  # [N, C] sampling log-probs (the most confident samples)
    entropy: Optional[float] = None  # mean token entropy of the update (metrics `entropy`), if measured
    kl: Optional[float] = None  # mean per-token KL to the reference (metrics `kl`), when there is one
    kl_per_sequence: Optional[torch.Tensor] = None  # [N] KL to the reference per completion, if measured
    transcripts: Optional[list[str]] = None  # multi-turn rollouts: the whole exchange, tool outputs marked

    def __post_init__(self) -> None:
        self.lengths = self.lengths.float()
        self._passes: Optional[torch.Tensor] = None

    @property
    def learned(self) -> list[str]:
        return [k for k in self.result.per_source if k in self.result.learned]

    @property
    def checkable(self) -> list[str]:
        return [k for k in self.result.per_source if k not in self.result.learned]

    def passes(self) -> Optional[torch.Tensor]:
        """[N] float: 1 where the checks passed the row (the gate, else every checkable source), nan where
        no check scored it; None without checkable sources."""
        if self._passes is None and self.checkable:
            r = self.result
            labels = [r.gate] if r.gate else self.checkable
            ok = torch.stack([checked_pass(r, k) for k in labels]).all(0).float()
            scored = torch.stack([r.rows(k) for k in labels]).any(0)
            self._passes = torch.where(scored, ok, torch.full_like(ok, math.nan))
        return self._passes

    def quality(self) -> Optional[float]:
        """The checkable quality: pass rate where a source decides, else the mean checkable reward."""
        if self.result.gate:
            return self.result.pass_rate()
        means = [m for m in (self.result.source_mean(k) for k in self.checkable) if m is not None]
        return sum(means) / len(means) if means else None


@dataclass
class Condition:
    name: str  # alert name: alert/<name>; `stop_on` / `raise_kl_on` match it or the part before '/'
    holds: bool
    message: str  # what a person reads in the warning
    samples: Callable[[], list[int]] = list  # the triggering samples (computed only when the alert is raised)
    patience: Optional[int] = None  # None: watch.patience; the trend test fires on its first hit (1)


@dataclass
class Reading:
    figures: dict[str, float] = field(default_factory=dict)  # name -> value, logged as watch/<name>
    conditions: list[Condition] = field(default_factory=list)


@dataclass
class WatchMemory:
    """Per-step series the checks compare against (the start, trend windows)."""

    lengths: list[float] = field(default_factory=list)  # mean completion length per step
    entropies: list[float] = field(default_factory=list)  # mean token entropy per step it was measured
    learned: dict[str, list[Optional[float]]] = field(default_factory=dict)  # label -> mean reward per step
    quality: list[Optional[float]] = field(default_factory=list)  # the checkable quality per step
    rm_stats: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # label -> reward_stats.json
    has_learned: bool = False  # a learned source is configured (even on a step it scored no rows)

    def baseline(self, series: Sequence[float], steps: int) -> Optional[float]:
        """The mean of the first `steps` values once there are that many, else None."""
        if len(series) < max(steps, 1):
            return None
        return sum(series[:steps]) / steps

    def record(self, lengths: float, entropy: Optional[float], learned: Mapping[str, Optional[float]],
               quality: Optional[float]) -> None:
        self.lengths.append(lengths)
        if entropy is not None and math.isfinite(entropy):
            self.entropies.append(entropy)
        for label, value in learned.items():
            self.learned.setdefault(label, []).append(value)
        self.quality.append(quality)


Check = Callable[[StepView, WatchMemory, WatchConfig], Reading]
WATCH_CHECKS: Registry[Check] = Registry("watch check")
register_check = WATCH_CHECKS.register
for _name in ("length", "truncation", "reward_length", "diversity", "zero_spread", "entropy", "kl",
              "learned_vs_checkable", "rm_stats"):
    WATCH_CHECKS.register_lazy(_name, f"rlvr.eval.watch_checks:{_name}_check")


@dataclass
class Alert:
    name: str
    step: int
    message: str
    samples: list[int]  # indices into the step's completions


@dataclass
class WatchResult:
    metrics: dict[str, float]  # watch/<figure> and alert/<name> (1.0 while an alert holds)
    raised: list[Alert]  # alerts raised on this step (crossings), with their samples
    stop: bool = False  # some raised alert is in watch.stop_on
    kl_factor: float = 1.0  # multiply algorithm.beta by this (watch.raise_kl_on)


def _matches(name: str, names: Sequence[str]) -> bool:
    return name in names or name.split("/")[0] in names


class Watch:
    """Runs the registered checks on each step and keeps the alerts' streaks."""

    def __init__(self, cfg: WatchConfig, learned: Sequence[str] = (), rm_stats: Mapping[str, Mapping] | None = None):
        for name in cfg.disabled:
            WATCH_CHECKS.check(name)
        self.cfg = cfg
        self.checks = [(name, WATCH_CHECKS.lookup(name)) for name in WATCH_CHECKS if name not in cfg.disabled]
        self.memory = WatchMemory(rm_stats=dict(rm_stats or {}), has_learned=bool(learned))
        self.learned = list(learned)
        self.streaks: dict[str, int] = {}

    def observe(self, view: StepView) -> WatchResult:
        r = view.result
        learned = {k: r.source_mean(k) for k in self.learned if k in r.per_source}
        length = view.lengths.mean().item() if len(view.lengths) else 0.0
        self.memory.record(length, view.entropy, learned, view.quality())
        metrics: dict[str, float] = {"watch/length_mean": length}
        if self.memory.quality[-1] is not None:
            metrics["watch/quality"] = float(self.memory.quality[-1])
        raised: list[Alert] = []
        for name, check in self.checks:
            reading = check(view, self.memory, self.cfg)
            metrics.update({f"watch/{k}": float(v) for k, v in reading.figures.items()})
            for cond in reading.conditions:
                streak = self.streaks.get(cond.name, 0) + 1 if cond.holds else 0
                self.streaks[cond.name] = streak
                need = max(1, self.cfg.patience if cond.patience is None else cond.patience)
                if streak >= need:
                    metrics[f"alert/{cond.name}"] = 1.0
                if streak == need:
                    raised.append(Alert(cond.name, view.step, cond.message,
                                        cond.samples()[:max(self.cfg.samples_per_alert, 0)]))
        stop = any(_matches(a.name, self.cfg.stop_on) for a in raised)
        raise_kl = any(_matches(a.name, self.cfg.raise_kl_on) for a in raised)
        return WatchResult(metrics, raised, stop, self.cfg.kl_factor if raise_kl else 1.0)

    def streaks_now(self) -> dict[str, int]:
        """The conditions holding now and for how many steps (what `replay` needs besides the metrics)."""
        return {k: v for k, v in self.streaks.items() if v}

    def replay(self, rows: Sequence[Mapping[str, Any]], streaks: Optional[Mapping[str, int]] = None) -> None:
        """Rebuild the memory from logged training rows (a resumed run) and the streaks from `streaks_now`'s
        record at the resumed step (without one: from the last row's alert flags)."""
        last: Mapping[str, Any] = {}
        for row in rows:
            if row.get("watch/length_mean") is None:
                continue  # an evaluation row, or a step the watch did not see
            learned = {k: row.get(f"reward/{k}/mean") for k in self.learned}
            self.memory.record(float(row["watch/length_mean"]), row.get("entropy"), learned, row.get("watch/quality"))
            last = row
        if streaks is None:
            streaks = {k[len("alert/"):]: max(self.cfg.patience, 1) for k, v in last.items()
                       if k.startswith("alert/") and v}
        self.streaks = dict(streaks)
