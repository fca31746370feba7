"""The pretraining mix (algorithm.ptx_coef): a supervised loss on data.ptx joins every update."""
from __future__ import annotations

import copy

import pytest
import torch

from rlvr.config import AlgorithmConfig, ConfigError, TrainConfig, TrainerConfig
from rlvr.config_checks import validate
from rlvr.data import ArithmeticTask
from rlvr.learner import Learner, build_backend
from rlvr.learner.ptx import PtxMix, build_ptx
from rlvr.models import load_tokenizer
from rlvr.learner.targets import sft_batch
from rlvr.learner.logprobs import token_logprobs


@pytest.fixture(scope="module")
def setup(tiny_rollouts):
    return tiny_rollouts


def _learner(model, ptx=None):
    trainer = TrainerConfig(total_steps=1, prompts_per_step=2, micro_batch_size=4)
    trainer.optim.lr = 1e-3
    algo = AlgorithmConfig(group_size=4)
    return Learner(build_backend("torch", model, trainer, algo), algo, trainer, max_new_tokens=6, temperature=1.0,
                   dtype="fp32", ptx=ptx)


def test_draws_are_a_function_of_step_and_rank(setup):
    _, tok, _ = setup
    task = ArithmeticTask(1, 200, seed=0, split="train")
    a, b = PtxMix(task, tok, 1.0, 8, 4, seed=0), PtxMix(task, tok, 1.0, 8, 4, seed=0, rank=1)
    assert [p.uid for p in a.draw(3)] == [p.uid for p in a.draw(3)]  # resume-safe: no state
    assert [p.uid for p in a.draw(3)] != [p.uid for p in a.draw(4)]
    assert [p.uid for p in a.draw(3)] != [p.uid for p in b.draw(3)]


def test_the_mix_moves_the_policy_when_the_policy_gradient_is_zero(setup):
    model, tok, batch = setup
    zero = torch.zeros(len(batch))
    plain = copy.deepcopy(model)
    _learner(plain).update(batch, zero, batch.completion_mask, None, seed=1)
    for p0, p1 in zip(model.parameters(), plain.parameters()):
        torch.testing.assert_close(p0, p1)  # zero advantages, no KL: nothing moves
    mixed = copy.deepcopy(model)
    ptx = PtxMix(ArithmeticTask(1, 200, seed=0, split="train"), tok, 0.5, 8, 4, seed=0)
    stats = _learner(mixed, ptx).update(batch, zero, batch.completion_mask, None, seed=1)
    assert any(not torch.equal(p0, p1) for p0, p1 in zip(model.parameters(), mixed.parameters()))
    # the reported loss is the mix's mean next-token loss on the rows of that optimizer step
    rows = sft_batch(tok, ptx.draw(1 * 4096 + 0))
    with torch.no_grad():
        logp, _ = token_logprobs(lambda **kw: model(**kw), rows, 1.0, None, torch.device("cpu"))
    expected = -(logp * rows.completion_mask).sum() / rows.completion_mask.sum()
    assert stats["ptx/loss"] == pytest.approx(expected.item(), rel=1e-4)


def test_config_checks_and_build(tiny_model_dir):
    cfg = TrainConfig()
    assert build_ptx(cfg, None) is None
    cfg.algorithm.ptx_coef = -1.0
    with pytest.raises(ConfigError, match="ptx_coef must be >= 0"):
        validate(cfg)
    cfg.algorithm.ptx_coef, cfg.data.ptx.source = 0.5, "no_such_source"
    with pytest.raises(ConfigError, match="no_such_source"):
        validate(cfg)
    cfg.data.ptx.source = "arithmetic"
    validate(cfg)
    mix = build_ptx(cfg, load_tokenizer(tiny_model_dir))
    assert mix.coef == 0.5 and mix.batch_size == 8 and len(mix.draw(0)) == 8
