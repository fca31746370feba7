"""Off-policy correction for engine/learner mismatch: pure tensor functions, registered by name.

The engine samples with its own numerics (vLLM kernels, another dtype); its log-probs
``rollout`` differ from the learner's log-probs ``old`` of the same tokens under the same
weights. The per-token importance ratio ``rho_t = exp(old_t - rollout_t)`` measures it,
and a correction turns it into a weight on each token's policy-gradient loss and a mask:

    none             weight 1, nothing masked
    token_truncate   weight min(rho_t, cap), detached (truncated importance sampling)
    token_mask       weight 1, tokens with rho_t > cap masked out
    sequence_mask    weight 1, sequences whose product of ratios exceeds cap masked out
                     (long sequences accumulate ratio and are masked more often)

`mismatch_stats` reports what the metrics log: |old - rollout| mean and max over
completion tokens, the ratio's min / mean / max and the fraction of tokens whose weight
the correction changed (capped or masked).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from rlvr.registry import Registry

__all__ = ["CORRECTIONS", "get_correction", "Correction", "mismatch_stats"]


@dataclass
class Correction:
    weights: torch.Tensor  # [N, C] detached multiplier of each token's policy-gradient loss
    mask: torch.Tensor  # [N, C] 1 where the token stays in the loss
    changed: torch.Tensor  # [N, C] bool: the correction capped or masked this token


CORRECTIONS: Registry[Callable[..., Correction]] = Registry("algorithm.rollout_correction")
register_correction = CORRECTIONS.register
get_correction = CORRECTIONS.lookup


def _ratio(old: torch.Tensor, rollout: torch.Tensor) -> torch.Tensor:
    return torch.exp((old - rollout).detach())


@register_correction("none")
def no_correction(old: torch.Tensor, rollout: torch.Tensor, mask: torch.Tensor, cap: float) -> Correction:
    return Correction(torch.ones_like(old), mask, torch.zeros_like(mask, dtype=torch.bool))


@register_correction("token_truncate")
def token_truncate(old: torch.Tensor, rollout: torch.Tensor, mask: torch.Tensor, cap: float) -> Correction:
    ratio = _ratio(old, rollout)
    return Correction(ratio.clamp(max=cap), mask, (ratio > cap) & mask.bool())


@register_correction("token_mask")
def token_mask(old: torch.Tensor, rollout: torch.Tensor, mask: torch.Tensor, cap: float) -> Correction:
    over = (_ratio(old, rollout) > cap) & mask.bool()
    return Correction(torch.ones_like(old), mask * (~over).to(mask.dtype), over)


@register_correction("sequence_mask")
def sequence_mask(old: torch.Tensor, rollout: torch.Tensor, mask: torch.Tensor, cap: float) -> Correction:
    log_ratio = ((old - rollout).detach() * mask).sum(-1)
    over = log_ratio > torch.log(torch.tensor(cap, dtype=log_ratio.dtype))
    dropped = over.unsqueeze(1) & mask.bool()
    return Correction(torch.ones_like(old), mask * (~dropped).to(mask.dtype), dropped)


def mismatch_stats(old: torch.Tensor, rollout: torch.Tensor, mask: torch.Tensor,
                   changed: torch.Tensor) -> dict[str, float]:
    """rollout/logprob_diff_mean|max, rollout/is_ratio_min|mean|max, rollout/is_capped_frac over masked tokens."""
    keep = mask.bool()
    if not keep.any():
        return {}
    diff = (old - rollout).detach()[keep]
    ratio = torch.exp(diff)
    return {"rollout/logprob_diff_mean": diff.abs().mean().item(), "rollout/logprob_diff_max": diff.abs().max().item(),
            "rollout/is_ratio_min": ratio.min().item(), "rollout/is_ratio_mean": ratio.mean().item(),
            "rollout/is_ratio_max": ratio.max().item(), "rollout/is_capped_frac": changed[keep].float().mean().item()}
