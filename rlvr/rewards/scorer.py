"""Completions -> rewards: the weighted sum of the run's reward sources.

`RewardScorer` builds every configured source (``reward.sources``: kind, name, weight,
options; see `rlvr.rewards.base`), scores each batch with all of them, and keeps raw
rewards and reasons per source for the metrics, so "every reward is 0 because nothing
parsed" shows as ``verdict/verifier/no_answer`` on step 1. A completion *passes* when
the gate source (the row verifier if present, else the first source that decides
pass/fail) says so; a run with no such source has no pass rate, only rewards.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch

from rlvr.config import RewardConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SOURCE_KINDS, RewardSource, SourceContext
from rlvr.rewards.verifier import ROW_VERIFIER

__all__ = ["RewardScorer", "RewardResult", "reward_metrics", "source_labels"]


@dataclass
class RewardResult:
    rewards: torch.Tensor  # [N] weighted sum over sources
    per_source: dict[str, torch.Tensor]  # label -> [N] raw rewards of that source
    reasons: dict[str, list[str]]  # label -> [N] reasons
    passed: Optional[torch.Tensor]  # [N] bool from the gate source; None when no source decides it
    gate: Optional[str]  # label of the source that decides `passed`

    def gate_reasons(self) -> list[str]:
        return self.reasons[self.gate] if self.gate else ["scored"] * len(self.rewards)


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

    def __init__(self, cfg: RewardConfig, device: torch.device | str = "cpu"):
        self.ctx = SourceContext(cfg.workers, cfg.timeout, torch.device(device))
        labels = source_labels([s.name for s in cfg.sources])
        self.sources: list[RewardSource] = [SOURCE_KINDS.lookup(s.kind)(s, label, self.ctx)
                                            for s, label in zip(cfg.sources, labels)]
        gates = [s.label for s in self.sources if s.decides_pass]
        self.gate = ROW_VERIFIER if ROW_VERIFIER in gates else (gates[0] if gates else None)

    @property
    def decides_pass(self) -> bool:
        return self.gate is not None

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> RewardResult:
        """`prompts[i]` is the prompt that produced `completions[i]`."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        total = torch.zeros(len(completions), dtype=torch.float32)
        per_source, reasons, passed = {}, {}, None
        for src in self.sources:
            out = src.score(prompts, completions)
            per_source[src.label], reasons[src.label] = out.rewards, out.reasons
            total += src.weight * out.rewards
            if src.label == self.gate:
                passed = out.passed
        return RewardResult(total, per_source, reasons, passed, self.gate)

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


def reward_metrics(result: RewardResult) -> dict[str, float]:
    """reward mean/std overall and per source, pass rate (where decided), and reason counts."""
    r = result.rewards
    out = {"reward/mean": r.mean().item(), "reward/std": r.std().item() if len(r) > 1 else 0.0}
    if result.passed is not None:
        out["pass_rate"] = result.passed.float().mean().item()
    for label, values in result.per_source.items():
        out[f"reward/{label}/mean"] = values.mean().item()
        out[f"reward/{label}/std"] = values.std().item() if len(values) > 1 else 0.0
        for reason, count in sorted(Counter(result.reasons[label]).items()):
            out[f"verdict/{label}/{reason}"] = float(count)
    return out
