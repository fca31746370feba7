"""The learner: exact gradient accumulation, schedules, first-iteration ratios of 1."""
from __future__ import annotations

import copy

import pytest
import torch

from rlvr.config import AlgorithmConfig, TrainerConfig
from rlvr.learner import Learner, build_backend
from rlvr.learner.torch_backend import lr_lambda


@pytest.fixture(scope="module")
def setup(tiny_rollouts):
    model, _, batch = tiny_rollouts
    return model, batch


def _learner(model, micro: int, mini_steps: int = 1, aggregation: str = "token_mean", iterations: int = 1):
    trainer = TrainerConfig(total_steps=1, prompts_per_step=2, micro_batch_size=micro,
                            optimizer_steps_per_batch=mini_steps)
    trainer.optim.lr = 1e-4  # Adam normalizes: a larger step magnifies float rounding in near-zero gradients
    algo = AlgorithmConfig(group_size=4, aggregation=aggregation, num_iterations=iterations)
    return Learner(build_backend("torch", model, trainer, algo), algo, trainer, max_new_tokens=6, temperature=1.0,
                   dtype="fp32")


@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"])
def test_gradient_accumulation_is_exact(setup, aggregation):
    model, batch = setup
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.0, 2.0, -2.0, 0.0])
    mask = batch.completion_mask
    a, b = copy.deepcopy(model), copy.deepcopy(model)
    stats_a = _learner(a, micro=8, aggregation=aggregation).update(batch, adv, mask, None, seed=0)
    stats_b = _learner(b, micro=2, aggregation=aggregation).update(batch, adv, mask, None, seed=0)
    assert stats_a["loss"] == pytest.approx(stats_b["loss"], abs=1e-6)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb, atol=1e-6, rtol=1e-5)
    assert not torch.equal(next(a.parameters()), next(model.parameters()))  # it did update


def test_first_iteration_is_on_policy(setup):
    model, batch = setup
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.0, 2.0, -2.0, 0.0])
    stats = _learner(copy.deepcopy(model), micro=4, mini_steps=1).update(batch, adv, batch.completion_mask, None, 0)
    assert stats["clip_frac/low"] == 0.0 and stats["clip_frac/high"] == 0.0
    assert stats["kl"] == 0.0 and stats["entropy"] > 0 and stats["grad_norm"] > 0
    # ratio = 1 at the sampled policy: token_mean loss = -sum(A_i * len_i) / tokens
    lengths = batch.completion_mask.sum(-1)
    expected = -(adv * lengths).sum() / lengths.sum()
    assert stats["loss"] == pytest.approx(expected.item(), abs=1e-4)


def test_several_iterations_and_mini_batches_step_the_optimizer(setup):
    model, batch = setup
    learner = _learner(copy.deepcopy(model), micro=2, mini_steps=2, iterations=2)
    adv = torch.linspace(-1, 1, 8)
    learner.update(batch, adv, batch.completion_mask, None, seed=0)
    assert learner.backend.scheduler.last_epoch == 4  # 2 iterations x 2 mini-batches


def test_lr_schedules():
    warm = lr_lambda(warmup=3, total=13, schedule="constant")
    assert [warm(s) for s in range(5)] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    lin = lr_lambda(warmup=0, total=10, schedule="linear")
    assert lin(0) == 1.0 and lin(5) == pytest.approx(0.5) and lin(10) == 0.0
    cos = lr_lambda(warmup=0, total=10, schedule="cosine")
    assert cos(5) == pytest.approx(0.5) and cos(10) == pytest.approx(0.0)


def test_bf16_autocast_update_runs(setup):
    model, batch = setup
    trainer = TrainerConfig(total_steps=1, prompts_per_step=2, micro_batch_size=4)
    algo = AlgorithmConfig(group_size=4)
    learner = Learner(build_backend("torch", copy.deepcopy(model), trainer, algo), algo, trainer, 6, 1.0, dtype="bf16")
    stats = learner.update(batch, torch.linspace(-1, 1, 8), batch.completion_mask, None, seed=0)
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
    assert next(learner.model.parameters()).dtype == torch.float32  # fp32 master weights
