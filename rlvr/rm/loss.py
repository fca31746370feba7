"""The Bradley-Terry reward-model loss, a pure tensor function.

    loss_i = -log sigmoid(r_chosen_i - r_rejected_i - margin_i) + center_coef * (r_chosen_i + r_rejected_i)^2

The margin (from the data: a score difference, scaled by ``loss.margin_scale``) asks
the chosen answer to win by at least that much. The centering term (Eisenstein et al.,
2023, "Helping or Herding?") pulls each pair's rewards toward a zero sum, so the scale
of the rewards stays anchored without changing which answer wins.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["bradley_terry_loss"]


def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor, margin: torch.Tensor | None = None,
                       center_coef: float = 0.0) -> torch.Tensor:
    """[N] per-pair losses of rewards ``chosen`` [N] and ``rejected`` [N] (the caller reduces)."""
    diff = chosen - rejected
    if margin is not None:
        diff = diff - margin
    loss = -F.logsigmoid(diff)
    if center_coef:
        loss = loss + center_coef * (chosen + rejected).pow(2)
    return loss
