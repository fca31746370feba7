"""Dynamic sampling (DAPO): find groups whose rewards carry no learning signal."""
from __future__ import annotations

from typing import Optional

import torch

__all__ = ["zero_variance_groups"]


def zero_variance_groups(rewards: torch.Tensor, group_size: int, atol: float = 1e-6,
                         valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """[prompts] bool: True where every reward in the group is equal (all advantages are 0).

    ``valid`` ([N] bool, False on excluded rows): only the valid rows count, and a group with
    fewer than two of them is flat too (its advantages are all 0)."""
    grouped = rewards.view(-1, group_size)
    if valid is None:
        return (grouped.max(dim=1).values - grouped.min(dim=1).values) <= atol
    keep = valid.view(-1, group_size)
    high = torch.where(keep, grouped, torch.full_like(grouped, -float("inf"))).max(dim=1).values
    low = torch.where(keep, grouped, torch.full_like(grouped, float("inf"))).min(dim=1).values
    return (keep.sum(dim=1) < 2) | ((high - low) <= atol)
