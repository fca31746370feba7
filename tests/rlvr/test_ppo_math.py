"""PPO's pure functions (rlvr/algo/gae.py, rlvr/algo/kl_control.py) against hand-computed numbers."""
from __future__ import annotations

import pytest
import torch

from rlvr.algo import clipped_policy_loss
from rlvr.algo.gae import clipped_value_loss, explained_variance, gae_advantages, token_rewards, whiten
from rlvr.algo.kl_control import adaptive_kl_coef

T = torch.tensor


def test_gae_by_hand_gamma_1_lambda_half():
    # delta_2 = 1 - 0.7 = 0.3; delta_1 = 0.7 - 0.6 = 0.1; delta_0 = 0.6 - 0.5 = 0.1
    # A_2 = 0.3; A_1 = 0.1 + 0.5 * 0.3 = 0.25; A_0 = 0.1 + 0.5 * 0.25 = 0.225; R = A + V
    adv, ret = gae_advantages(T([[0.0, 0.0, 1.0]]), T([[0.5, 0.6, 0.7]]), T([[1.0, 1.0, 1.0]]), gamma=1.0, lam=0.5)
    assert torch.allclose(adv, T([[0.225, 0.25, 0.3]]))
    assert torch.allclose(ret, T([[0.725, 0.85, 1.0]]))


def test_gae_stops_at_the_row_end_and_lambda_1_gives_discounted_returns():
    # a row of 2 real tokens then padding (whose reward and value are garbage and must not leak in):
    # delta_1 = 2 - 0.5 = 1.5; delta_0 = 0.9 * 0.5 - 1 = -0.55; A_0 = -0.55 + 0.9 * 1.5 = 0.8
    # R_0 = 0.9 * 2 = 1.8 (Monte-Carlo with lambda = 1), R_1 = 2
    adv, ret = gae_advantages(T([[0.0, 2.0, 5.0]]), T([[1.0, 0.5, 9.0]]), T([[1.0, 1.0, 0.0]]), gamma=0.9, lam=1.0)
    assert torch.allclose(adv, T([[0.8, 1.5, 0.0]]))
    assert torch.allclose(ret, T([[1.8, 2.0, 0.0]]))


def test_gae_lambda_0_is_the_one_step_td_error():
    adv, _ = gae_advantages(T([[0.0, 1.0]]), T([[0.2, 0.4]]), T([[1.0, 1.0]]), gamma=1.0, lam=0.0)
    assert torch.allclose(adv, T([[0.4 - 0.2, 1.0 - 0.4]]))


def test_token_rewards_put_the_score_on_the_last_real_token_and_the_kl_on_every_token():
    kl = T([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5]])
    mask = T([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    got = token_rewards(T([1.0, 2.0]), kl, mask, kl_coef=0.5)
    assert torch.allclose(got, T([[-0.05, -0.1, 0.85], [1.75, 0.0, 0.0]]))
    assert torch.allclose(token_rewards(T([1.0, 2.0]), kl, mask, kl_coef=0.0), T([[0, 0, 1.0], [2.0, 0, 0]]))


def test_a_row_with_no_real_token_gets_no_reward():
    got = token_rewards(T([3.0]), T([[0.0, 0.0]]), T([[0.0, 0.0]]), kl_coef=0.1)
    assert torch.equal(got, T([[0.0, 0.0]]))


def test_clipped_value_loss_by_hand():
    # V = 1.0, old 0.5, R = 2: (1-2)^2 = 1; clipped V = 0.7, (0.7-2)^2 = 1.69 -> 0.5 * 1.69, clipped
    # V = 0.0, old 0.5, R = 0: 0; clipped V = 0.3, 0.09 -> 0.045, clipped
    # V = 0.6, old 0.5, R = 0: inside the band: 0.36 both -> 0.18, not clipped
    values = T([1.0, 0.0, 0.6], requires_grad=True)
    out = clipped_value_loss(values, T([0.5, 0.5, 0.5]), T([2.0, 0.0, 0.0]), clip=0.2)
    assert torch.allclose(out.loss, T([0.845, 0.045, 0.18]))
    assert out.clipped.tolist() == [True, True, False]
    out.loss.sum().backward()
    # the clipped terms hold the value still (no gradient); the free one: d/dV 0.5 (V - R)^2 = V - R = 0.6
    assert torch.allclose(values.grad, T([0.0, 0.0, 0.6]))


def test_value_clip_0_is_the_plain_squared_error():
    out = clipped_value_loss(T([1.0, 3.0]), T([0.0, 0.0]), T([2.0, 2.0]), clip=0.0)
    assert torch.allclose(out.loss, T([0.5, 0.5])) and not out.clipped.any()


def test_explained_variance_by_hand():
    mask = T([1.0, 1.0, 1.0, 0.0])
    returns = T([1.0, 2.0, 3.0, 50.0])
    assert explained_variance(T([1.0, 2.0, 3.0, -7.0]), returns, mask) == pytest.approx(1.0)
    assert explained_variance(T([0.0, 0.0, 0.0, 0.0]), returns, mask) == pytest.approx(0.0)
    # residuals [0, -1, 0]: variance 2/9; returns' variance 2/3 -> 1 - 1/3
    assert explained_variance(T([1.0, 3.0, 3.0, 0.0]), returns, mask) == pytest.approx(2 / 3)
    assert explained_variance(T([1.0, 2.0]), T([4.0, 4.0]), T([1.0, 1.0])) == 0.0  # constant returns: no NaN


def test_whiten_uses_only_the_masked_entries():
    got = whiten(T([1.0, 2.0, 3.0, 100.0]), T([1.0, 1.0, 1.0, 0.0]))
    assert torch.allclose(got, T([-1.0, 0.0, 1.0, 0.0]), atol=1e-6)


def test_adaptive_kl_controller_by_hand():
    # KL 12 vs target 6: error clipped to +0.2; 100 completions, horizon 1000 -> x (1 + 0.02)
    assert adaptive_kl_coef(0.1, kl=12.0, target=6.0, n=100, horizon=1000) == pytest.approx(0.102)
    # KL 5.4 vs 6: error -0.1 -> x (1 - 0.01)
    assert adaptive_kl_coef(0.1, kl=5.4, target=6.0, n=100, horizon=1000) == pytest.approx(0.099)
    assert adaptive_kl_coef(0.1, kl=0.0, target=6.0, n=100, horizon=1000) == pytest.approx(0.098)  # floor -0.2
    assert adaptive_kl_coef(0.1, kl=99.0, target=0.0, n=100, horizon=1000) == 0.1  # target 0: fixed


def test_clipped_policy_loss_takes_per_token_advantages():
    logp, old = T([[-1.0, -2.0]]), T([[-1.0, -2.0]])
    per_sequence = clipped_policy_loss(logp, old, T([0.5]), 0.2, 0.2).loss
    per_token = clipped_policy_loss(logp, old, T([[0.5, 0.5]]), 0.2, 0.2).loss
    assert torch.equal(per_sequence, per_token)
    assert torch.allclose(clipped_policy_loss(logp, old, T([[1.0, -2.0]]), 0.2, 0.2).loss, T([[-1.0, 2.0]]))


def test_batch_statistics_over_shards_equal_the_whole_batchs():
    """``total`` sums a statistic over the shards of a batch (data-parallel ranks): two identical shards, each
    summing its statistics twice, see the statistics of the two stacked, so each whitens its rows as the
    whole batch would."""
    from rlvr.algo.gae import masked_mean

    torch.manual_seed(0)
    x, v = torch.randn(3, 5), torch.randn(3, 5)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.float32)
    both, both_v, both_mask = torch.cat([x, x]), torch.cat([v, v]), torch.cat([mask, mask])
    twice = lambda t: 2 * t  # noqa: E731 (the other shard's sums are this shard's)
    torch.testing.assert_close(whiten(x, mask, total=twice), whiten(both, both_mask)[:3])
    assert float(masked_mean(x, mask, twice)) == pytest.approx(float(masked_mean(both, both_mask)))
    assert explained_variance(v, x, mask, twice) == pytest.approx(explained_variance(both_v, both, both_mask), abs=1e-6)
    assert not torch.allclose(whiten(x, mask, total=twice), whiten(x, mask))  # the unbiased variance's n - 1


def test_a_value_inside_the_clip_range_is_never_counted_as_clipped():
    """old + clamp(V - old) can differ from V by rounding inside the range; that token is not clipped (its
    gradient is V's own), so ppo/value_clip_frac does not depend on float noise (nor on how rows are split)."""
    values, old, returns = T([-0.009925765916705132]), T([0.03431714326143265]), T([0.2691269516944885])
    bounded = old + torch.clamp(values - old, -0.2, 0.2)
    assert float((bounded - returns) ** 2) > float((values - returns) ** 2)  # the rounding this guards against
    assert clipped_value_loss(values, old, returns, clip=0.2).clipped.tolist() == [False]
