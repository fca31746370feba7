"""Off-policy corrections and the mismatch statistics, against hand-computed numbers."""
from __future__ import annotations

import math

import pytest
import torch

from rlvr.algo import CORRECTIONS, get_correction, mismatch_stats

# ratios exp(old - rollout): [[1, e, e^-1], [e^2, 1, (pad)]]
OLD = torch.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 5.0]])
ROLLOUT = torch.zeros(2, 3)
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_registry_has_the_four_corrections():
    assert set(CORRECTIONS) == {"none", "token_truncate", "token_mask", "sequence_mask"}


def test_none_changes_nothing():
    fix = get_correction("none")(OLD, ROLLOUT, MASK, 2.0)
    assert torch.equal(fix.weights, torch.ones(2, 3)) and torch.equal(fix.mask, MASK) and not fix.changed.any()


def test_token_truncate_caps_the_ratio_and_keeps_every_token():
    fix = get_correction("token_truncate")(OLD, ROLLOUT, MASK, 2.0)
    want = torch.tensor([[1.0, 2.0, math.exp(-1)], [2.0, 1.0, 2.0]])
    torch.testing.assert_close(fix.weights, want)
    assert torch.equal(fix.mask, MASK)
    assert fix.changed.tolist() == [[False, True, False], [True, False, False]]  # padding never counts


def test_token_mask_drops_tokens_over_the_cap():
    fix = get_correction("token_mask")(OLD, ROLLOUT, MASK, 2.0)
    assert fix.mask.tolist() == [[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]] and torch.equal(fix.weights, torch.ones(2, 3))


def test_sequence_mask_drops_whole_sequences_whose_product_exceeds_the_cap():
    # row 0: sum of log ratios 0 -> kept; row 1: 2 (the padded 5 does not count) > log 3 -> dropped
    fix = get_correction("sequence_mask")(OLD, ROLLOUT, MASK, 3.0)
    assert fix.mask.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    assert fix.changed.tolist() == [[False, False, False], [True, True, False]]


def test_mismatch_stats_over_real_tokens_only():
    fix = get_correction("token_truncate")(OLD, ROLLOUT, MASK, 2.0)
    m = mismatch_stats(OLD, ROLLOUT, MASK, fix.changed)
    assert m["rollout/logprob_diff_mean"] == pytest.approx((0 + 1 + 1 + 2 + 0) / 5)
    assert m["rollout/logprob_diff_max"] == pytest.approx(2.0)
    assert m["rollout/is_ratio_min"] == pytest.approx(math.exp(-1))
    assert m["rollout/is_ratio_max"] == pytest.approx(math.exp(2))
    assert m["rollout/is_ratio_mean"] == pytest.approx((1 + math.e + math.exp(-1) + math.exp(2) + 1) / 5)
    assert m["rollout/is_capped_frac"] == pytest.approx(2 / 5)


def test_weights_scale_the_policy_gradient_not_the_kl(tiny_model_dir):
    """Weighting tokens by 2 doubles the policy-gradient loss of a KL-free on-policy update."""
    import copy

    from rlvr.config import AlgorithmConfig, TrainerConfig
    from rlvr.learner import Learner, build_backend
    from rlvr.models import load_model, load_tokenizer
    from rlvr.rollout import SamplingParams, build_engine

    model, tok = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    prompts = [tok.apply_chat_template([{"role": "user", "content": "1+1"}], add_generation_prompt=True,
                                       tokenize=True, return_dict=False)]
    batch = build_engine("hf", model, tok).generate(prompts, SamplingParams(n=4, max_new_tokens=5), seeds=[3])
    trainer, algo = TrainerConfig(total_steps=1, prompts_per_step=1, micro_batch_size=4), AlgorithmConfig(group_size=4)
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])

    def loss(weights):
        learner = Learner(build_backend("torch", copy.deepcopy(model), trainer, algo), algo, trainer, 5, 1.0, "fp32")
        return learner.update(batch, adv, batch.completion_mask, None, 0, old_logprobs=batch.logprobs,
                              token_weights=weights)["loss"]

    assert loss(2 * torch.ones_like(batch.logprobs)) == pytest.approx(2 * loss(None), rel=1e-5)
