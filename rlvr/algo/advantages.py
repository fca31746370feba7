"""Advantage estimators: pure functions of rewards, registered by name.

Rewards arrive flat, ``[prompts * G]``, with each prompt's G completions consecutive.

    grpo:  A_i = (r_i - mean(group)) / scale
    rloo:  A_i = (r_i - mean(group without i)) / scale   (= G/(G-1) x the grpo numerator)

    gae:   per-token advantages from a critic's values (PPO, `rlvr.algo.gae.gae_advantages`): a
           different signature, computed by the RL stage's PPO step (`rlvr.rl.ppo`), never by the
           group-relative path; `CRITIC_ESTIMATORS` names such estimators

where scale is the group's standard deviation (``group``, GRPO), the whole batch's
(``batch``), or 1 (``none``, Dr. GRPO). Standard deviations are unbiased (n - 1),
and ``eps`` keeps zero-variance groups at advantage 0 instead of NaN.

**Excluded rows** (``valid``: [prompts * G] bool, False where a reward source failed on the
row, `rlvr.rewards.scorer`): every mean and standard deviation above is over the group's
(or the batch's) valid rows only, with n the number of valid rows, and an excluded row's
advantage is 0. A group with fewer than two valid rows has advantage 0 everywhere. With
``valid`` None (or all True) the formulas are the plain ones above.

An estimator is called as ``fn(rewards, group_size, scale, valid=valid)``.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from rlvr.registry import Registry

__all__ = ["ADVANTAGE_ESTIMATORS", "register_advantage", "get_advantage", "group_advantages", "rloo_advantages",
           "group_std", "CRITIC_ESTIMATORS", "uses_critic"]

ADVANTAGE_ESTIMATORS: Registry[Callable[..., torch.Tensor]] = Registry("algorithm.advantage")
register_advantage = ADVANTAGE_ESTIMATORS.register
get_advantage = ADVANTAGE_ESTIMATORS.lookup
ADVANTAGE_ESTIMATORS.register_lazy("gae", "rlvr.algo.gae:gae_advantages")
CRITIC_ESTIMATORS = ("gae",)  # estimators that need a critic's values (algorithm=ppo)


def uses_critic(advantage: str) -> bool:
    """The estimator needs a critic (PPO's GAE), not only the rewards."""
    return advantage in CRITIC_ESTIMATORS


def _some_excluded(valid: Optional[torch.Tensor]) -> bool:
    return valid is not None and not bool(valid.all())


def _masked_mean_std(grouped: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-row mean, unbiased std (0 below two rows) and count over the rows where ``keep`` ([R, C] bool)."""
    w = keep.float()
    n = w.sum(dim=1, keepdim=True)
    mean = (grouped * w).sum(dim=1, keepdim=True) / n.clamp(min=1)
    var = (((grouped - mean) ** 2) * w).sum(dim=1, keepdim=True) / (n - 1).clamp(min=1)
    return mean, var.sqrt(), n


def group_std(rewards: torch.Tensor, group_size: int, valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Per-group unbiased standard deviation over the valid rows, shape [prompts]."""
    if not _some_excluded(valid):
        return rewards.view(-1, group_size).std(dim=1)
    return _masked_mean_std(rewards.view(-1, group_size), valid.view(-1, group_size))[1].flatten()


def _scale(centered: torch.Tensor, rewards: torch.Tensor, group_size: int, scale: str, eps: float,
           valid: Optional[torch.Tensor]) -> torch.Tensor:
    if scale == "group":
        return centered / (group_std(rewards, group_size, valid).repeat_interleave(group_size) + eps)
    if scale == "batch":
        std = rewards.std() if not _some_excluded(valid) else _masked_mean_std(rewards.view(1, -1),
                                                                               valid.view(1, -1))[1].flatten()[0]
        return centered / (std + eps)
    if scale == "none":
        return centered
    raise ValueError(f"unknown reward scaling {scale!r}; choose group, batch or none")


def _zero_excluded(adv: torch.Tensor, valid: Optional[torch.Tensor], group_size: int) -> torch.Tensor:
    """0 on excluded rows and on every row of a group with fewer than two valid rows."""
    if not _some_excluded(valid):
        return adv
    keep = valid.view(-1, group_size)
    enough = (keep.sum(dim=1, keepdim=True) >= 2) & keep
    return torch.where(enough.flatten(), adv, torch.zeros_like(adv))


@register_advantage("grpo")
def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4,
                     valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Group-relative advantages: reward minus its group's mean (over valid rows), scaled."""
    grouped = rewards.view(-1, group_size)
    if _some_excluded(valid):
        mean = _masked_mean_std(grouped, valid.view(-1, group_size))[0]
    else:
        mean = grouped.mean(dim=1, keepdim=True)
    centered = (grouped - mean).flatten()
    return _zero_excluded(_scale(centered, rewards, group_size, scale, eps, valid), valid, group_size)


@register_advantage("rloo")
def rloo_advantages(rewards: torch.Tensor, group_size: int, scale: str = "none", eps: float = 1e-4,
                    valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Leave-one-out baseline: reward minus the mean of the group's other (valid) rewards, scaled."""
    grouped = rewards.view(-1, group_size)
    if _some_excluded(valid):
        keep = valid.view(-1, group_size).float()
        n = keep.sum(dim=1, keepdim=True)
        others = ((grouped * keep).sum(dim=1, keepdim=True) - grouped) / (n - 1).clamp(min=1)
    else:
        others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return _zero_excluded(_scale((grouped - others).flatten(), rewards, group_size, scale, eps, valid), valid,
                          group_size)
