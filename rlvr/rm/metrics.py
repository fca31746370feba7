"""What a reward model's scores say, as pure functions of tensors.

`pair_metrics` (per eval set, and per training step on the batch):

    accuracy              share of pairs with r_chosen > r_rejected (a tie counts half)
    margin                mean of r_chosen - r_rejected
    reward_mean/std/min/max  over every answer (chosen and rejected)
    acc_chosen_shorter    accuracy over the pairs whose chosen answer has fewer characters
    acc_chosen_longer     ... more characters (pairs of equal length are in neither)
    length_bias_gap       acc_chosen_shorter - acc_chosen_longer: near 0 for a model that
                          judges content; strongly negative for one that learned "longer wins"
    reward_length_corr    Pearson correlation between reward and answer length

`reward_stats` is what ``reward_stats.json`` holds beside a saved model (used later to
normalize its scores as a reward source).
"""
from __future__ import annotations

import math

import torch

__all__ = ["pairwise_accuracy", "pair_metrics", "pearson", "reward_stats", "QUANTILES"]

QUANTILES = {"p01": 0.01, "p05": 0.05, "p50": 0.50, "p95": 0.95, "p99": 0.99}


def pairwise_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    if chosen.numel() == 0:
        return float("nan")
    wins = (chosen > rejected).float() + 0.5 * (chosen == rejected).float()
    return float(wins.mean())


def pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    """Pearson correlation; nan when either side is constant or there are fewer than two points."""
    x, y = x.double().flatten(), y.double().flatten()
    if x.numel() < 2:
        return float("nan")
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum()) * float((y * y).sum()))
    return float((x * y).sum()) / denom if denom > 0 else float("nan")


def pair_metrics(chosen: torch.Tensor, rejected: torch.Tensor, chosen_len: torch.Tensor,
                 rejected_len: torch.Tensor) -> dict[str, float]:
    chosen, rejected = chosen.detach().float().cpu(), rejected.detach().float().cpu()
    rewards = torch.cat([chosen, rejected])
    shorter, longer = chosen_len < rejected_len, chosen_len > rejected_len
    acc_short = pairwise_accuracy(chosen[shorter], rejected[shorter])
    acc_long = pairwise_accuracy(chosen[longer], rejected[longer])
    return {
        "accuracy": pairwise_accuracy(chosen, rejected),
        "margin": float((chosen - rejected).mean()) if chosen.numel() else float("nan"),
        "reward_mean": float(rewards.mean()) if rewards.numel() else float("nan"),
        "reward_std": float(rewards.std(unbiased=False)) if rewards.numel() else float("nan"),
        "reward_min": float(rewards.min()) if rewards.numel() else float("nan"),
        "reward_max": float(rewards.max()) if rewards.numel() else float("nan"),
        "acc_chosen_shorter": acc_short,
        "acc_chosen_longer": acc_long,
        "length_bias_gap": acc_short - acc_long,
        "reward_length_corr": pearson(rewards, torch.cat([chosen_len, rejected_len]).float()),
    }


def reward_stats(rewards: torch.Tensor) -> dict[str, float | int]:
    """mean, std, min, max, the 1/5/50/95/99% quantiles and the count of a set of rewards."""
    r = rewards.detach().double().flatten().cpu()
    if r.numel() == 0:
        raise ValueError("reward_stats of no rewards")
    q = torch.quantile(r, torch.tensor(list(QUANTILES.values()), dtype=torch.float64))
    return {"mean": float(r.mean()), "std": float(r.std(unbiased=False)), "min": float(r.min()),
            "max": float(r.max()), **{name: float(v) for name, v in zip(QUANTILES, q)}, "count": int(r.numel())}
