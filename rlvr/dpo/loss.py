"""The DPO objective as pure tensor functions (Rafailov et al. 2023; conservative DPO's label smoothing).

For a pair (chosen y+, rejected y-) with whole-answer log-probs under the policy
(``pc``, ``pr``) and the frozen reference (``rc``, ``rr``)::

    implicit rewards   r+ = beta * (pc - rc)        r- = beta * (pr - rr)
    z                  = r+ - r-
    loss               = -(1 - eps) * log sigmoid(z) - eps * log sigmoid(-z)

``eps`` (label smoothing) is the assumed probability that the label is flipped; 0 is
plain sigmoid DPO. An optional SFT term adds ``sft_coef`` times the chosen answer's
per-token negative log-likelihood to each pair. Metrics: the mean rewards, their
margin ``r+ - r-`` and the implicit-reward accuracy (the share of pairs with r+ > r-).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["DPOTerms", "dpo_loss", "pair_metrics"]


@dataclass
class DPOTerms:
    loss: torch.Tensor  # [B] per-pair loss (with grad)
    chosen_rewards: torch.Tensor  # [B] beta * (pc - rc), detached
    rejected_rewards: torch.Tensor  # [B] beta * (pr - rr), detached


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float, label_smoothing: float = 0.0,
             chosen_nll: torch.Tensor | None = None, sft_coef: float = 0.0) -> DPOTerms:
    """Per-pair sigmoid DPO loss (see the module docstring); all inputs [B] sequence log-probs."""
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    z = chosen - rejected
    loss = -(1.0 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    if sft_coef and chosen_nll is not None:
        loss = loss + sft_coef * chosen_nll
    return DPOTerms(loss, chosen.detach(), rejected.detach())


def pair_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> dict[str, float]:
    """Mean implicit rewards, their margin and the implicit-reward accuracy of a set of pairs."""
    if not len(chosen_rewards):
        return {}
    margin = chosen_rewards - rejected_rewards
    return {"reward_chosen": chosen_rewards.mean().item(), "reward_rejected": rejected_rewards.mean().item(),
            "reward_margin": margin.mean().item(), "reward_accuracy": (margin > 0).float().mean().item()}
