"""Running score statistics for a reward model without saved ones (``normalize: auto``).

`RunningScoreStats` keeps the mean and the (population) standard deviation of the first
``limit`` scores it is shown, merged batch by batch (Chan et al.'s parallel update, in
float64), then freezes them, so the scale the policy is rewarded on stops moving once it is
estimated, and the policy's own drift (a reward model's score rising as the policy learns to
please it) does not renormalize the reward away. Before ``limit`` scores the statistics so
far, this batch's included, are used: the first batch is normalized by itself.
"""
from __future__ import annotations

import math

import torch

__all__ = ["RunningScoreStats"]


class RunningScoreStats:
    def __init__(self, limit: int):
        if limit < 2:
            raise ValueError(f"running statistics need at least 2 scores; got limit={limit}")
        self.limit = limit
        self.count, self.mean, self._m2 = 0, 0.0, 0.0

    @property
    def frozen(self) -> bool:
        return self.count >= self.limit

    @property
    def std(self) -> float:
        return math.sqrt(self._m2 / self.count) if self.count else 0.0

    def update(self, scores: torch.Tensor) -> bool:
        """Fold in the scores up to the limit; True when this call froze the statistics."""
        if self.frozen:
            return False
        batch = scores.detach().double().flatten().cpu()[: self.limit - self.count]
        n = batch.numel()
        if n == 0:
            return False
        mean, m2 = float(batch.mean()), float(((batch - batch.mean()) ** 2).sum())
        total = self.count + n
        delta = mean - self.mean
        self._m2 += m2 + delta * delta * self.count * n / total
        self.mean += delta * n / total
        self.count = total
        return self.frozen
