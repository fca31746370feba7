"""Policy losses and loss aggregation: pure tensor functions, registered by name.

A policy loss maps per-token log-probs to a per-token loss matrix plus per-token
statistics; `aggregate` reduces it. Aggregation takes its normalizers from the caller
so that a mini-batch split into micro-batches sums to exactly the mini-batch loss:

    token_mean               sum(loss * mask) / total tokens in the mini-batch
    seq_mean_token_mean      sum_i mean_t(loss_i) / sequences in the mini-batch
    seq_mean_token_sum_norm  sum_i sum_t(loss_i) / (max_new_tokens * sequences)   (Dr. GRPO)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from rlvr.registry import Registry

__all__ = ["LOSSES", "register_loss", "get_loss", "clipped_policy_loss", "k3_kl", "aggregate", "PolicyLossOutput"]


@dataclass
class PolicyLossOutput:
    loss: torch.Tensor  # [N, C] per-token loss (before aggregation)
    kl: torch.Tensor  # [N, C] per-token k3 KL to the reference (zeros when beta = 0)
    clipped_low: torch.Tensor  # [N, C] bool: ratio clipped at 1 - epsilon_low (negative advantage)
    clipped_high: torch.Tensor  # [N, C] bool: ratio clipped at 1 + epsilon_high (positive advantage)


LOSSES: Registry[Callable[..., PolicyLossOutput]] = Registry("algorithm.loss")
register_loss = LOSSES.register
get_loss = LOSSES.lookup


def k3_kl(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 estimator of KL(policy || ref) per token: exp(ref - logp) - (ref - logp) - 1 (>= 0)."""
    delta = ref_logprobs - logprobs
    return torch.exp(delta) - delta - 1


@register_loss("clipped")
def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                        epsilon_low: float, epsilon_high: float, beta: float = 0.0,
                        ref_logprobs: Optional[torch.Tensor] = None) -> PolicyLossOutput:
    """PPO/GRPO clipped surrogate with asymmetric clipping (DAPO) and optional k3 KL.

    loss_t = -min(r_t A, clip(r_t, 1 - eps_low, 1 + eps_high) A) + beta * KL_t,
    r_t = exp(logp_t - old_logp_t); advantages are per sequence, [N] (GRPO), or per token, [N, C] (PPO).
    """
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages
    ratio = torch.exp(logprobs - old_logprobs)
    clipped = torch.clamp(ratio, 1 - epsilon_low, 1 + epsilon_high)
    loss = -torch.min(ratio * adv, clipped * adv)
    kl = torch.zeros_like(logprobs)
    if beta > 0:
        if ref_logprobs is None:
            raise ValueError("beta > 0 needs reference log-probs")
        kl = k3_kl(logprobs, ref_logprobs)
        loss = loss + beta * kl
    with torch.no_grad():
        low = (ratio < 1 - epsilon_low) & (adv < 0)
        high = (ratio > 1 + epsilon_high) & (adv > 0)
    return PolicyLossOutput(loss, kl, low, high)


def aggregate(loss: torch.Tensor, mask: torch.Tensor, mode: str, *, num_sequences: int, num_tokens: float,
              max_len: int) -> torch.Tensor:
    """Reduce a per-token matrix to a scalar with mini-batch-wide normalizers (see module doc)."""
    masked = loss * mask
    if mode == "token_mean":
        return masked.sum() / max(num_tokens, 1.0)
    if mode == "seq_mean_token_mean":
        return (masked.sum(-1) / mask.sum(-1).clamp(min=1)).sum() / max(num_sequences, 1)
    if mode == "seq_mean_token_sum_norm":
        return masked.sum() / (max_len * max(num_sequences, 1))
    raise ValueError(f"unknown algorithm.aggregation {mode!r}; choose token_mean, seq_mean_token_mean or "
                     f"seq_mean_token_sum_norm")
