"""Dynamic sampling (DAPO): find groups whose rewards carry no learning signal."""
from __future__ import annotations

import torch

__all__ = ["zero_variance_groups"]


def zero_variance_groups(rewards: torch.Tensor, group_size: int, atol: float = 1e-6) -> torch.Tensor:
    """[prompts] bool: True where every reward in the group is equal (all advantages are 0)."""
    grouped = rewards.view(-1, group_size)
    return (grouped.max(dim=1).values - grouped.min(dim=1).values) <= atol
