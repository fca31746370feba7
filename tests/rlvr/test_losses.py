"""Policy loss, k3 KL and aggregation against hand-computed numbers."""
import math

import pytest
import torch

from rlvr.algo import LOSSES, aggregate, clipped_policy_loss, get_loss, k3_kl

LN = math.log


def test_clipped_surrogate_each_branch():
    # ratios 2, 2, 0.5, 0.5 with advantages +1, -1, -1, +1; eps_low 0.2, eps_high 0.28
    logp = torch.tensor([[LN(0.5), LN(0.5), LN(0.25), LN(0.25)]])
    old = torch.tensor([[LN(0.25), LN(0.25), LN(0.5), LN(0.5)]])
    rows = []
    for adv in (1.0, -1.0, -1.0, 1.0):
        rows.append(adv)
    out = [clipped_policy_loss(logp[:, i:i + 1], old[:, i:i + 1], torch.tensor([a]), 0.2, 0.28)
           for i, a in enumerate(rows)]
    losses = [o.loss.item() for o in out]
    # -min(2*1, 1.28*1) ; -min(2*-1, 1.28*-1) ; -min(.5*-1, .8*-1) ; -min(.5*1, .8*1)
    assert losses == pytest.approx([-1.28, 2.0, 0.8, -0.5], abs=1e-6)
    assert [bool(o.clipped_high) for o in out] == [True, False, False, False]
    assert [bool(o.clipped_low) for o in out] == [False, False, True, False]


def test_ratio_one_gives_minus_advantage_and_gradient():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    out = clipped_policy_loss(logp, logp.detach(), torch.tensor([0.5]), 0.2, 0.2)
    torch.testing.assert_close(out.loss, torch.tensor([[-0.5, -0.5]]))
    out.loss.sum().backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[-0.5, -0.5]]))  # d(-r A)/dlogp = -r A


def test_k3_kl():
    # delta = ref - logp = ln(0.25) - ln(0.5) = -ln 2 ; exp(delta) - delta - 1 = 0.5 + ln 2 - 1
    kl = k3_kl(torch.tensor([LN(0.5)]), torch.tensor([LN(0.25)]))
    assert kl.item() == pytest.approx(0.5 + math.log(2) - 1, abs=1e-7)
    assert k3_kl(torch.tensor([-1.3]), torch.tensor([-1.3])).item() == 0.0


def test_beta_adds_weighted_kl():
    logp, ref = torch.tensor([[LN(0.5)]]), torch.tensor([[LN(0.25)]])
    out = clipped_policy_loss(logp, logp, torch.tensor([1.0]), 0.2, 0.2, beta=0.1, ref_logprobs=ref)
    assert out.loss.item() == pytest.approx(-1.0 + 0.1 * (0.5 + math.log(2) - 1), abs=1e-6)
    with pytest.raises(ValueError, match="reference"):
        clipped_policy_loss(logp, logp, torch.tensor([1.0]), 0.2, 0.2, beta=0.1)


LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


@pytest.mark.parametrize("mode, expected", [
    ("token_mean", (1 + 2 + 4) / 3),
    ("seq_mean_token_mean", ((1 + 2) / 2 + 4 / 1) / 2),
    ("seq_mean_token_sum_norm", (1 + 2 + 4) / (4 * 2)),  # max_len 4
])
def test_aggregation(mode, expected):
    value = aggregate(LOSS, MASK, mode, num_sequences=2, num_tokens=3, max_len=4)
    assert value.item() == pytest.approx(expected)


@pytest.mark.parametrize("mode", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"])
def test_micro_batches_sum_to_the_mini_batch_loss(mode):
    whole = aggregate(LOSS, MASK, mode, num_sequences=2, num_tokens=3, max_len=4)
    parts = sum(aggregate(LOSS[i:i + 1], MASK[i:i + 1], mode, num_sequences=2, num_tokens=3, max_len=4)
                for i in range(2))
    assert parts.item() == pytest.approx(whole.item())


def test_registry():
    assert get_loss("clipped") is clipped_policy_loss and "clipped" in LOSSES
    with pytest.raises(KeyError, match="clipped"):
        get_loss("ppo2")
    with pytest.raises(ValueError, match="token_mean"):
        aggregate(LOSS, MASK, "mean", num_sequences=2, num_tokens=3, max_len=4)
