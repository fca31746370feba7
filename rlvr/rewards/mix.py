"""How the sources' rewards combine into one reward per completion (``reward.mix``).

    sum     the weighted sum over the sources that apply to the row
    gated   checkable sources (verifiers, rules) decide the reward level; learned sources
            (reward models) only order completions *within* a level: their weighted sum is
            squashed with tanh and scaled below half the smallest gap between the levels
            present in the batch, so no learned score can lift a failed answer above a
            passing one, or flip any ordering the checkable sources make

A source that does not apply to a row (a row without a verifier, scored by the reward
model alone) contributes nothing to it. A row a weighted source *failed* on (a judge's
timeout or parse error) is excluded by the scorer (`rlvr.rewards.scorer`), in both mixes:
its total here is partial and the loop never trains on it; the gated mix measures its
levels' gap over the rows that were scored only (``valid``). Pure functions over tensors.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch

__all__ = ["weighted_sum", "gated_total", "smallest_gap", "normalize_scores", "MIXES"]

MIXES = ("sum", "gated")
_GAP_FRACTION = 0.45  # a learned term stays below this fraction of the gap between two levels


def weighted_sum(rewards: Sequence[torch.Tensor], weights: Sequence[float],
                 applies: Sequence[Optional[torch.Tensor]], n: int) -> torch.Tensor:
    """sum_i w_i * r_i over the rows each source applies to ([N] each; `applies` None = every row)."""
    total = torch.zeros(n, dtype=torch.float32)
    for r, w, mask in zip(rewards, weights, applies):
        term = w * r.float()
        total += term if mask is None else torch.where(mask, term, torch.zeros_like(term))
    return total


def smallest_gap(levels: torch.Tensor, tol: float = 1e-6) -> Optional[float]:
    """The smallest difference between distinct values of `levels`; None when there is only one."""
    distinct = torch.unique(levels.float())
    if len(distinct) < 2:
        return None
    gaps = distinct[1:] - distinct[:-1]
    gaps = gaps[gaps > tol]
    return float(gaps.min()) if len(gaps) else None


def gated_total(checkable: torch.Tensor, learned: torch.Tensor, scale: float,
                valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """checkable + s * tanh(learned), s = min(scale, 0.45 x the smallest gap between checkable levels).

    For any two rows with checkable[i] > checkable[j], total[i] > total[j] whatever `learned` is. The
    levels are those of the ``valid`` rows (None = every row): an excluded row's partial total sets none.
    """
    gap = smallest_gap(checkable if valid is None else checkable[valid])
    s = scale if gap is None else min(scale, _GAP_FRACTION * gap)
    return checkable.float() + s * torch.tanh(learned.float())


def normalize_scores(raw: torch.Tensor, mean: float, std: float, clip: float) -> torch.Tensor:
    """(raw - mean) / std, clipped to [-clip, clip] (clip <= 0: not clipped)."""
    z = (raw.float() - mean) / max(std, 1e-6)
    return z.clamp(-clip, clip) if clip > 0 else z
