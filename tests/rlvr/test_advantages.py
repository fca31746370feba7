"""Advantage estimators against hand-computed numbers."""
import math

import pytest
import torch

from rlvr.algo import ADVANTAGE_ESTIMATORS, get_advantage, group_advantages, rloo_advantages, zero_variance_groups

REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])  # two groups of 4; the second is all-correct
EPS = 1e-4


def test_group_scaling_divides_by_each_groups_unbiased_std():
    adv = group_advantages(REWARDS, 4, "group", eps=EPS)
    a = 0.5 / (math.sqrt(1 / 3) + EPS)  # mean 0.5, unbiased std sqrt(4 * 0.25 / 3)
    torch.testing.assert_close(adv, torch.tensor([a, -a, -a, a, 0, 0, 0, 0]))


def test_batch_scaling_divides_by_the_batch_std():
    adv = group_advantages(REWARDS, 4, "batch", eps=EPS)
    std = math.sqrt((6 * 0.25**2 + 2 * 0.75**2) / 7)  # batch mean 0.75
    a = 0.5 / (std + EPS)
    torch.testing.assert_close(adv, torch.tensor([a, -a, -a, a, 0, 0, 0, 0]))


def test_no_scaling_is_dr_grpo():
    adv = group_advantages(REWARDS, 4, "none")
    torch.testing.assert_close(adv, torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0]))


def test_rloo_baseline_leaves_one_out():
    adv = rloo_advantages(REWARDS, 4, "none")
    t = 2 / 3  # 1 - (0 + 0 + 1) / 3
    torch.testing.assert_close(adv, torch.tensor([t, -t, -t, t, 0, 0, 0, 0]))


def test_registry_lists_names_on_unknown():
    assert {"grpo", "rloo"} <= set(ADVANTAGE_ESTIMATORS)
    with pytest.raises(KeyError, match="grpo"):
        get_advantage("nope")


def test_unknown_scaling_is_an_error():
    with pytest.raises(ValueError, match="group, batch or none"):
        group_advantages(REWARDS, 4, "std")


def test_zero_variance_groups():
    assert zero_variance_groups(REWARDS, 4).tolist() == [False, True]
    assert zero_variance_groups(torch.tensor([0.0, 0.0, 0.5, 0.5]), 2).tolist() == [True, True]
