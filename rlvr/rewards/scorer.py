"""Completions -> rewards: weighted verifier sources scored in worker processes.

Each `RewardSource` is either ``verifier`` (every row's own verifier, the default) or
the name of a registered verifier (``format``, ``exact``, ...) applied to every row.
All sources go to one `VerifierPool` batch, so a hung or crashing check costs one
deadline (reason ``timeout`` / ``crash``) and never the run. The reward is the
weighted sum; raw rewards and verdict reasons are kept per source for the metrics,
so "every reward is 0 because nothing parsed" shows as ``verdict/verifier/no_answer``
on step 1. A completion *passes* when its row verifier says ``correct``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from rlvr.config import RewardConfig
from rlvr.data.schema import Prompt

__all__ = ["RewardScorer", "RewardResult", "reward_metrics", "ROW_VERIFIER"]

ROW_VERIFIER = "verifier"


@dataclass
class RewardResult:
    rewards: torch.Tensor  # [N] weighted sum over sources
    per_source: dict[str, torch.Tensor]  # label -> [N] raw rewards of that source
    reasons: dict[str, list[str]]  # label -> [N] verdict reasons
    passed: torch.Tensor  # [N] bool: the gate source said `correct`
    gate: str  # label of the source that decides `passed`: the row verifier, else the first source


class RewardScorer:
    """Owns the verifier pool; `score` is called once per rollout batch."""

    def __init__(self, cfg: RewardConfig):
        from verifiers.runtime import VerifierPool

        self.sources = list(cfg.sources)
        self.labels = self._labels()
        self.check_names(s.name for s in self.sources if s.name != ROW_VERIFIER)
        self.pool = VerifierPool(workers=cfg.workers, timeout=cfg.timeout)

    @staticmethod
    def check_names(names) -> None:
        """Fail at start-up (listing the known names) rather than on the first batch."""
        from verifiers.registry import get_factory

        for name in names:
            get_factory(name)

    def _labels(self) -> list[str]:
        seen: Counter[str] = Counter()
        labels = []
        for src in self.sources:
            seen[src.name] += 1
            labels.append(src.name if seen[src.name] == 1 else f"{src.name}{seen[src.name]}")
        return labels

    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> RewardResult:
        """`prompts[i]` is the prompt that produced `completions[i]`."""
        from verifiers.runtime import VerifyTask

        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts for {len(completions)} completions")
        tasks = [VerifyTask(p.verifier if s.name == ROW_VERIFIER else s.name, text, p.reference,
                            fields=dict(p.fields), options=dict(s.options))
                 for s in self.sources for p, text in zip(prompts, completions)]
        verdicts = self.pool.verify(tasks) if tasks else []
        n = len(completions)
        per_source, reasons = {}, {}
        total = torch.zeros(n, dtype=torch.float32)
        for k, (src, label) in enumerate(zip(self.sources, self.labels)):
            chunk = verdicts[k * n:(k + 1) * n]
            per_source[label] = torch.tensor([float(v.reward) for v in chunk], dtype=torch.float32)
            reasons[label] = [v.reason for v in chunk]
            total += src.weight * per_source[label]
        gate = ROW_VERIFIER if ROW_VERIFIER in reasons else self.labels[0]
        passed = torch.tensor([r == "correct" for r in reasons[gate]], dtype=torch.bool)
        return RewardResult(total, per_source, reasons, passed, gate)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> "RewardScorer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def reward_metrics(result: RewardResult) -> dict[str, float]:
    """reward mean/std overall and per source, pass rate, and verdict-reason counts."""
    r = result.rewards
    out = {"reward/mean": r.mean().item(), "reward/std": r.std().item() if len(r) > 1 else 0.0,
           "pass_rate": result.passed.float().mean().item()}
    for label, values in result.per_source.items():
        out[f"reward/{label}/mean"] = values.mean().item()
        out[f"reward/{label}/std"] = values.std().item() if len(values) > 1 else 0.0
        for reason, count in sorted(Counter(result.reasons[label]).items()):
            out[f"verdict/{label}/{reason}"] = float(count)
    return out
