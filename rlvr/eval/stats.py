"""The evaluation layer's statistics, as pure functions (the watch and the report call them).

    pearson(x, y)                 linear correlation; nan when either side is constant
    mann_kendall_z(series)        the Mann-Kendall trend test's z score (ties corrected)
    distinct_n(sequences, n)      unique n-grams / n-grams, pooled over the sequences
    group_distinct2(ids, mask, g) distinct-2 of each group of g completions, vectorized
    group_unique_fraction(t, g)   distinct completions / g, per group
    paired_bootstrap(a, b, ...)   mean of b - a with a percentile bootstrap interval, paired by index

The Mann-Kendall test asks whether later values tend to exceed earlier ones: S is the
sum over all pairs i < j of sign(x_j - x_i); under "no trend" S has mean 0 and variance
n(n-1)(2n+5)/18 minus a term per group of tied values; z = (S - sign(S)) / sqrt(var)
(the continuity correction). It needs no assumption about the noise's distribution and
no linearity, only that the window's values are exchangeable when nothing changes.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Sequence

import numpy as np
import torch

__all__ = ["pearson", "mann_kendall_z", "distinct_n", "group_distinct2", "group_unique_fraction",
           "paired_bootstrap"]


def pearson(x: Sequence[float] | torch.Tensor, y: Sequence[float] | torch.Tensor) -> float:
    """Pearson's r of two equally long series; nan when fewer than 2 points or either is constant."""
    a = torch.as_tensor(x, dtype=torch.float64).flatten()
    b = torch.as_tensor(y, dtype=torch.float64).flatten()
    if a.numel() != b.numel():
        raise ValueError(f"pearson: {a.numel()} values against {b.numel()}")
    if a.numel() < 2:
        return math.nan
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / denom if denom > 0 else math.nan


def mann_kendall_z(series: Sequence[float]) -> float:
    """The Mann-Kendall z of a series (> 0: rising); 0 for fewer than 3 points."""
    x = np.asarray(series, dtype=np.float64)
    n = len(x)
    if n < 3:
        return 0.0
    s = float(np.triu(np.sign(x[None, :] - x[:, None]), 1).sum())
    ties = np.unique(x, return_counts=True)[1]
    var = (n * (n - 1) * (2 * n + 5) - float((ties * (ties - 1) * (2 * ties + 5)).sum())) / 18.0
    if var <= 0 or s == 0:
        return 0.0
    return (s - math.copysign(1.0, s)) / math.sqrt(var)


def distinct_n(sequences: Sequence[Sequence[int | str]], n: int = 2) -> float:
    """Unique n-grams over all n-grams of the sequences (pooled); nan when there are none."""
    grams: Counter[tuple] = Counter()
    for seq in sequences:
        grams.update(tuple(seq[i:i + n]) for i in range(len(seq) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else math.nan


def group_distinct2(ids: torch.Tensor, mask: torch.Tensor, group_size: int) -> torch.Tensor:
    """[groups] distinct-2 of each group's completions (token bigrams pooled over the group).

    ``ids`` [N, C] completion tokens, ``mask`` [N, C] 1 on real tokens (right-padded). A
    group without bigrams gets nan. One `torch.unique` over the whole batch: each bigram is
    coded as ``(group * V + first) * V + second``.
    """
    n, width = ids.shape
    groups = n // group_size
    if width < 2 or n == 0:
        return torch.full((groups,), math.nan)
    ids = ids.long()
    vocab = int(ids.max()) + 1
    real = (mask[:, 1:] > 0) & (mask[:, :-1] > 0)
    group = torch.arange(n, device=ids.device).div(group_size, rounding_mode="floor").unsqueeze(1)
    codes = ((group * vocab + ids[:, :-1]) * vocab + ids[:, 1:])[real]
    totals = torch.bincount(group.expand(-1, width - 1)[real], minlength=groups).double()
    unique = torch.unique(codes)
    distinct = torch.bincount(unique.div(vocab * vocab, rounding_mode="floor"), minlength=groups).double()
    out = distinct / totals
    out[totals == 0] = math.nan
    return out.float().cpu()


def group_unique_fraction(texts: Sequence[str], group_size: int) -> list[float]:
    """Per group: the number of distinct completion texts / group_size (1 = all different)."""
    return [len(set(texts[i:i + group_size])) / group_size for i in range(0, len(texts), group_size)]


def paired_bootstrap(before: Sequence[float], after: Sequence[float], *, samples: int = 2000, level: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """(mean change, low, high): the mean of ``after - before`` over paired items and its percentile
    bootstrap interval (items resampled with replacement, ``samples`` times, fixed ``seed``)."""
    a, b = np.asarray(before, dtype=np.float64), np.asarray(after, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_bootstrap: shapes {a.shape} and {b.shape} are not one paired series")
    if len(a) == 0:
        return math.nan, math.nan, math.nan
    diff = b - a
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(diff.mean()), float(low), float(high)


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95% Wilson score interval of a pass rate (sound near 0 and 1, unlike the normal approximation)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
