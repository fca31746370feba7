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


# ---- excluded rows (a reward source failed on them): out of every mean and std, advantage 0 ----------------
VALID = torch.tensor([True, False, True, True, True, True, False, False])


def test_group_scaling_over_the_scored_rows_only():
    adv = group_advantages(REWARDS, 4, "group", eps=EPS, valid=VALID)
    # group 1 scored 1, 0, 1: mean 2/3, unbiased std sqrt(((1/3)^2 * 2 + (2/3)^2) / 2) = sqrt(1/3)
    s = math.sqrt(1 / 3) + EPS
    torch.testing.assert_close(adv, torch.tensor([(1 / 3) / s, 0, (-2 / 3) / s, (1 / 3) / s, 0, 0, 0, 0]))


def test_batch_scaling_over_the_scored_rows_only():
    adv = group_advantages(REWARDS, 4, "batch", eps=EPS, valid=VALID)
    scored = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0])  # batch std of the five scored rewards
    s = scored.std().item() + EPS
    torch.testing.assert_close(adv, torch.tensor([(1 / 3) / s, 0, (-2 / 3) / s, (1 / 3) / s, 0, 0, 0, 0]))


def test_rloo_leaves_one_out_of_the_scored_rows():
    adv = rloo_advantages(REWARDS, 4, "none", valid=VALID)
    # row 0: 1 - (0 + 1) / 2; row 2: 0 - (1 + 1) / 2; group 2 keeps two equal rows: 0
    torch.testing.assert_close(adv, torch.tensor([0.5, 0, -1.0, 0.5, 0, 0, 0, 0]))


def test_a_group_with_one_scored_row_has_no_advantage_and_is_flat():
    valid = torch.tensor([True, False, False, False, True, True, True, True])
    assert group_advantages(REWARDS, 4, "group", valid=valid)[:4].tolist() == [0, 0, 0, 0]
    assert rloo_advantages(REWARDS, 4, "none", valid=valid)[:4].tolist() == [0, 0, 0, 0]
    assert zero_variance_groups(REWARDS, 4, valid=valid).tolist() == [True, True]
    assert zero_variance_groups(REWARDS, 4, valid=VALID).tolist() == [False, True]
    # an excluded row's value never makes a group look varied
    assert zero_variance_groups(torch.tensor([1.0, 1.0, 0.0, 1.0]), 4, valid=torch.tensor([1, 1, 0, 1]).bool()
                                ).tolist() == [True]


def test_all_valid_is_the_plain_formula():
    every = torch.ones(8, dtype=torch.bool)
    assert torch.equal(group_advantages(REWARDS, 4, "group", valid=every), group_advantages(REWARDS, 4, "group"))
    assert torch.equal(rloo_advantages(REWARDS, 4, "none", valid=every), rloo_advantages(REWARDS, 4, "none"))
