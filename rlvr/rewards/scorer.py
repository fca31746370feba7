"""Completions -> rewards: the run's reward sources, combined by ``reward.mix``.

`RewardScorer` builds every configured source (``reward.sources``: kind, name, weight,
options; see `rlvr.rewards.base`), scores each batch with all of them, combines them
(`rlvr.rewards.mix`: a weighted sum, or `gated`, where learned scores only order answers
the checks rank equal), and keeps each source's rewards and reasons for the metrics, so
"every reward is 0 because nothing parsed" shows as ``verdict/verifier/no_answer`` on
step 1. A completion *passes* when the gate source (the row verifier if present, else
the first source that decides pass/fail) says so; a run with no such source has no pass
rate, only rewards.

**Excluded rows.** A row that a source with a non-zero weight should have scored but could
not (`rlvr.rewards.base.EXCLUDED_REASONS`: a judge's timeout, parse error, outage, bad
response) is *excluded* (`RewardResult.excluded`), whatever the other sources said: its
total would lack a term its group's other answers have, so it is comparable to none of
them, and it is neither scored 0 nor rescored by the sources left. The training loop
leaves it out of the advantages (its group's mean and standard deviation are over the
rows that were scored; its own advantage is 0), out of the loss (its tokens are masked),
and out of ``reward/mean`` / ``reward/std``, the held-out ``eval/reward/mean`` and the
group's zero-variance test; ``reward/excluded_frac`` counts them. A row every weighted
source failed on is excluded the same way. A failed source with weight 0 (measured, not
rewarded) excludes nothing; its verdicts are still counted. A source that does not apply
to a row *by design* (a row without a verifier) is not a failure: the row's total is the
other sources' and it trains as usual.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import torch

from rlvr.config import RewardConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import EXCLUDED_REASONS, SOURCE_KINDS, RewardSource, SourceContext
from rlvr.rewards.mix import gated_total, weighted_sum
from rlvr.rewards.verifier import ROW_VERIFIER

__all__ = ["RewardScorer", "RewardResult", "reward_metrics", "source_labels", "excluded_rows"]


@dataclass
class RewardResult:
    rewards: torch.Tensor  # [N] weighted sum over sources
    per_source: dict[str, torch.Tensor]  # label -> [N] raw rewards of that source
    reasons: dict[str, list[str]]  # label -> [N] reasons
    passed: Optional[torch.Tensor]  # [N] bool from the gate source; None when no source decides it
    gate: Optional[str]  # label of the source that decides `passed`
    raw: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> [N] scores before normalization
    applies: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> [N] bool, for sources that
    #                                                                skip some rows (rows without a verifier)
    learned: frozenset[str] = frozenset()  # labels of the learned sources (reward models)
    consistency: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> [N, 2] (re-checked pairs,
    #                                                       flipped) of comparative judges
    excluded: Optional[torch.Tensor] = None  # [N] bool: rows a weighted source failed on (None = none); never
    #                                          in the reward the policy sees (module docstring)
    calls: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> [1] requests a judge was sent for this
    #                                                         batch ([ranks] once gathered: summed in the metrics)

    def valid(self) -> torch.Tensor:
        """[N] bool: the rows that were scored (not excluded)."""
        if self.excluded is None:
            return torch.ones(len(self.rewards), dtype=torch.bool)
        return ~self.excluded

    def gate_reasons(self) -> list[str]:
        return self.reasons[self.gate] if self.gate else ["scored"] * len(self.rewards)

    def rows(self, label: str) -> torch.Tensor:
        """[N] bool: the rows `label` scored."""
        mask = self.applies.get(label)
        return torch.ones(len(self.rewards), dtype=torch.bool) if mask is None else mask

    def source_mean(self, label: str, values: Optional[torch.Tensor] = None) -> Optional[float]:
        """Mean of a source's rewards over the rows it scored (None when it scored none)."""
        mask, values = self.rows(label), self.per_source[label] if values is None else values
        return values[mask].float().mean().item() if bool(mask.any()) else None

    def pass_rate(self) -> Optional[float]:
        """Fraction of the gate's rows that passed (None without a gate or rows it scored)."""
        if self.passed is None or self.gate is None:
            return None
        mask = self.rows(self.gate)
        return self.passed[mask].float().mean().item() if bool(mask.any()) else None


def source_labels(names: Sequence[str]) -> list[str]:
    """Unique metric labels: a name used twice becomes name, name2, ..."""
    seen: Counter[str] = Counter()
    labels = []
    for name in names:
        seen[name] += 1
        labels.append(name if seen[name] == 1 else f"{name}{seen[name]}")
    return labels


class RewardScorer:
    """Owns the reward sources (and their shared verifier pool); `score` is called once per batch."""

    def __init__(self, cfg: RewardConfig, device: torch.device | str = "cpu", dtype: str = "fp32"):
        """`device` and `dtype` (the policy's model.dtype) are where and in what precision reward models run."""
        self.ctx = SourceContext(cfg.workers, cfg.timeout, torch.device(device), dtype=dtype)
        self.mix, self.gate_scale = cfg.mix, cfg.gate_scale
        labels = source_labels([s.name for s in cfg.sources])
        self.sources: list[RewardSource] = [SOURCE_KINDS.lookup(s.kind)(s, label, self.ctx)
                                            for s, label in zip(cfg.sources, labels)]
        # a source that does not say is a check (third-party sources written before `learned` existed)
        self.learned = frozenset(s.label for s in self.sources if getattr(s, "learned", False))
        gates = [s.label for s in self.sources if s.decides_pass]
        self.gate = ROW_VERIFIER if ROW_VERIFIER in gates else (gates[0] if gates else None)

    @property
    def decides_pass(self) -> bool:
        return self.gate is not None

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> RewardResult:
        """`prompts[i]` is the prompt that produced `completions[i]`."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        outs = {src.label: src.score(prompts, completions) for src in self.sources}
        excluded = excluded_rows(outs, self.sources, len(completions))
        total = self.combine(outs, len(completions), ~excluded)
        passed = outs[self.gate].passed if self.gate else None
        return RewardResult(total, {k: o.rewards for k, o in outs.items()}, {k: o.reasons for k, o in outs.items()},
                            passed, self.gate, raw={k: o.raw for k, o in outs.items() if o.raw is not None},
                            applies={k: o.applies for k, o in outs.items() if o.applies is not None},
                            learned=self.learned, excluded=excluded,
                            consistency={k: o.consistency for k, o in outs.items()
                                         if getattr(o, "consistency", None) is not None},
                            calls={k: torch.tensor([o.calls]) for k, o in outs.items()
                                   if getattr(o, "calls", None) is not None})

    def combine(self, outs: dict[str, Any], n: int, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """`reward.mix`: the weighted sum, or checks first with the learned scores ordering within a level."""
        def total(sources: list[RewardSource]) -> torch.Tensor:
            return weighted_sum([outs[s.label].rewards for s in sources], [s.weight for s in sources],
                                [outs[s.label].applies for s in sources], n)
        if self.mix == "sum":
            return total(self.sources)
        checks = [s for s in self.sources if s.label not in self.learned]
        learned = [s for s in self.sources if s.label in self.learned]
        return gated_total(total(checks), total(learned), self.gate_scale, valid)

    def close(self) -> None:
        for src in self.sources:
            src.close()
        if self.ctx.pool is not None:
            self.ctx.pool.close()
            self.ctx.pool = None

    def __enter__(self) -> "RewardScorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def excluded_rows(outs: dict[str, Any], sources: Sequence[RewardSource], n: int) -> torch.Tensor:
    """[N] bool: rows some source of non-zero weight should have scored but failed on (its reason is one of
    `EXCLUDED_REASONS` and it does not apply there)."""
    out = torch.zeros(n, dtype=torch.bool)
    for src in sources:
        scores = outs[src.label]
        if src.weight == 0 or scores.applies is None:
            continue
        failed = torch.tensor([reason in EXCLUDED_REASONS for reason in scores.reasons], dtype=torch.bool)
        out |= failed & ~scores.applies
    return out


def reward_metrics(result: RewardResult) -> dict[str, float]:
    """reward mean/std overall (over the rows not excluded; NaN when every row is) and per source (over the
    rows it scored), the excluded fraction, raw scores of learned sources, pass rate (where decided), and
    reason counts, comparative judges' position inconsistency, and the requests each judge was sent."""
    valid = result.valid()
    r = result.rewards[valid]
    out = {"reward/mean": r.mean().item() if len(r) else float("nan"), "reward/std": r.std().item() if len(r) > 1
           else 0.0, "reward/excluded_frac": (~valid).float().mean().item() if len(valid) else 0.0}
    rate = result.pass_rate()
    if rate is not None:
        out["pass_rate"] = rate
    for label, values in result.per_source.items():
        rows = values[result.rows(label)]
        out[f"reward/{label}/mean"] = rows.mean().item() if len(rows) else 0.0
        out[f"reward/{label}/std"] = rows.std().item() if len(rows) > 1 else 0.0
        if label in result.raw:
            out[f"reward/{label}/raw_mean"] = result.source_mean(label, result.raw[label]) or 0.0
        for reason, count in sorted(Counter(result.reasons[label]).items()):
            out[f"verdict/{label}/{reason}"] = float(count)
    for label, counts in result.consistency.items():
        checked, flipped = counts.sum(0).tolist() if len(counts) else (0.0, 0.0)
        if checked > 0:  # pairs a comparative judge saw twice, positions swapped: how often its order flipped
            out[f"judge/{label}/rechecked_pairs"] = checked
            out[f"judge/{label}/inconsistency"] = flipped / checked
    for label, calls in result.calls.items():
        out[f"judge/{label}/calls"] = float(calls.sum())
    return out
