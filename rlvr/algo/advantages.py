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
"""
from __future__ import annotations

from typing import Callable

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


def group_std(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Per-group unbiased standard deviation, shape [prompts]."""
    return rewards.view(-1, group_size).std(dim=1)


def _scale(centered: torch.Tensor, rewards: torch.Tensor, group_size: int, scale: str, eps: float) -> torch.Tensor:
    if scale == "group":
        return centered / (group_std(rewards, group_size).repeat_interleave(group_size) + eps)
    if scale == "batch":
        return centered / (rewards.std() + eps)
    if scale == "none":
        return centered
    raise ValueError(f"unknown reward scaling {scale!r}; choose group, batch or none")


@register_advantage("grpo")
def group_advantages(rewards: torch.Tensor, group_size: int, scale: str = "group", eps: float = 1e-4) -> torch.Tensor:
    """Group-relative advantages: reward minus its group's mean, scaled."""
    grouped = rewards.view(-1, group_size)
    centered = (grouped - grouped.mean(dim=1, keepdim=True)).flatten()
    return _scale(centered, rewards, group_size, scale, eps)


@register_advantage("rloo")
def rloo_advantages(rewards: torch.Tensor, group_size: int, scale: str = "none", eps: float = 1e-4) -> torch.Tensor:
    """Leave-one-out baseline: reward minus the mean of the other G-1 rewards, scaled."""
    grouped = rewards.view(-1, group_size)
    others = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)
    return _scale((grouped - others).flatten(), rewards, group_size, scale, eps)
