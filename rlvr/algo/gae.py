"""PPO's critic-side math as pure tensor functions: per-token rewards, GAE, whitening, the clipped
value loss and explained variance.

All tensors are ``[N, C]`` over completion tokens (N completions, C the longest), with a mask
that is 1 on a completion's real tokens: a prefix of each row, or with holes where a multi-turn
rollout inserted a tool's output (GAE skips those tokens: the TD chain runs from one *sampled*
token to the next). Token t's value V_t is the critic's estimate of the return from the state *before* the completion's token t.

    token rewards   r_t = -kl_coef * kl_t            (kl folded into the reward; kl_coef = 0 for none)
                    r_T += score                     (the sequence's reward on its last real token T)
    TD error        delta_t = r_t + gamma * V_{t+1} - V_t     (V_{T+1} = 0: the episode ends at T)
    GAE             A_t = delta_t + gamma * lam * A_{t+1}     (A_{T+1} = 0)
    returns         R_t = A_t + V_t                  (the critic's regression targets)
    value loss      0.5 * max((V - R)^2, (clip(V, V_old - c, V_old + c) - R)^2)   per token
    explained var.  1 - Var(R - V) / Var(R)          over masked tokens
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Total = Callable[[torch.Tensor], torch.Tensor]  # a sum over the batch's shards (data-parallel ranks); one shard: identity


def _one_shard(t: torch.Tensor) -> torch.Tensor:
    return t

__all__ = ["token_rewards", "gae_advantages", "whiten", "clipped_value_loss", "ValueLossOutput",
           "explained_variance", "masked_mean"]


def masked_mean(x: torch.Tensor, mask: torch.Tensor, total: Total = _one_shard) -> torch.Tensor:
    """The mean of ``x`` over the masked entries; ``total`` sums a statistic over every shard of the batch (a rank's
    rows are one shard: `rlvr.distributed.sum_over_ranks`), so each shard gets the whole batch's mean."""
    part = (x * mask).sum()
    sums = total(torch.stack([part, mask.sum().to(part.dtype)]))
    return sums[0] / sums[1].clamp(min=1)


def token_rewards(scores: torch.Tensor, kl: torch.Tensor, mask: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """[N, C] per-token rewards: ``-kl_coef * kl`` on every real token, plus the sequence's score [N] on
    its last real token (a row with no real token gets nothing). Real tokens need not be a prefix: in a
    multi-turn completion the inserted tool outputs are holes in the mask."""
    rewards = -kl_coef * kl * mask
    real = mask > 0
    rows = torch.nonzero(real.any(-1)).flatten()
    last = real.shape[1] - 1 - real.flip(-1).int().argmax(-1)  # the last real column (masks may have holes)
    rewards[rows, last[rows]] += scores[rows].to(rewards.dtype)
    return rewards


def gae_advantages(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float,
                   lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), both [N, C] and 0 off the mask: generalized advantage estimation
    (Schulman et al. 2016) over each row's real tokens, the value after the last one being 0."""
    rewards, values, mask = rewards.float(), values.float(), mask.float()
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(rewards.shape[0], dtype=rewards.dtype, device=rewards.device)
    next_adv = torch.zeros_like(next_value)
    for t in reversed(range(rewards.shape[1])):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        adv = delta + gamma * lam * next_adv
        advantages[:, t] = adv * m
        # off the mask (past a row's end, where they are still 0, or an inserted tool output inside a multi-turn
        # completion) the carried value and advantage pass through unchanged: the next *sampled* token's
        next_value = torch.where(m > 0, values[:, t], next_value)
        next_adv = torch.where(m > 0, adv, next_adv)
    returns = (advantages + values) * mask
    return advantages, returns


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, total: Total = _one_shard) -> torch.Tensor:
    """Zero mean and unit variance over the masked entries (unbiased variance), 0 off the mask; the statistics are
    the whole batch's (``total``: see `masked_mean`)."""
    mean = masked_mean(x, mask, total)
    part = (((x - mean) ** 2) * mask).sum()
    sums = total(torch.stack([part, mask.sum().to(part.dtype)]))
    var = sums[0] / (sums[1] - 1).clamp(min=1)
    return (x - mean) * torch.rsqrt(var + eps) * mask


@dataclass
class ValueLossOutput:
    loss: torch.Tensor  # [N, C] per-token loss (before aggregation)
    clipped: torch.Tensor  # [N, C] bool: outside the clip range and the clipped term the larger one (gradient cut)


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       clip: float) -> ValueLossOutput:
    """PPO's clipped value loss per token; ``clip <= 0`` turns the clipping off (plain squared error / 2)."""
    unclipped = (values - returns) ** 2
    if clip <= 0:
        return ValueLossOutput(0.5 * unclipped, torch.zeros_like(values, dtype=torch.bool))
    bounded = old_values + torch.clamp(values - old_values, -clip, clip)
    clipped = (bounded - returns) ** 2
    with torch.no_grad():  # inside the clip range the two terms are equal but for rounding: not a clipped token
        worse = (clipped > unclipped) & ((values - old_values).abs() > clip)
    return ValueLossOutput(0.5 * torch.max(unclipped, clipped), worse)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                       total: Total = _one_shard) -> float:
    """1 - Var(returns - values) / Var(returns) over masked tokens (1: perfect; 0: no better than the mean;
    NaN-free: 0 when the returns do not vary); the whole batch's (``total``: see `masked_mean`)."""
    m = mask.float()
    var_r = masked_mean((returns - masked_mean(returns, m, total)) ** 2, m, total)
    diff = returns - values
    var_d = masked_mean((diff - masked_mean(diff, m, total)) ** 2, m, total)
    return 0.0 if float(var_r) <= 1e-12 else float(1 - var_d / var_r)
