"""The loop's dynamic sampling: zero-variance groups dropped and refilled, with a cap."""
from __future__ import annotations

import torch

from rlvr.config import TrainConfig
from rlvr.data import ArithmeticTask
from rlvr.loop import Loop
from rlvr.models.tiny import build_tokenizer
from rlvr.parts import Parts
from rlvr.rewards import RewardResult
from rlvr.rollout.base import RolloutBatch
from rlvr.run_dir import RunDir


class FakeEngine:
    """Completion text = the prompt's uid; G copies per prompt."""

    pad_id = 0

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, []

    def generate(self, prompts, params):
        self.calls.append(len(prompts))
        n = len(prompts) * params.n
        ids = torch.ones((n, 3), dtype=torch.long)
        return RolloutBatch(ids, torch.ones_like(ids), ids.clone(), torch.ones((n, 3)), torch.zeros((n, 3)),
                            torch.zeros(n, dtype=torch.bool), [str(i) for i in range(n)])


class FakeScorer:
    """Prompts whose index is even get mixed rewards; odd ones all-zero (no signal)."""

    def score(self, prompts, texts):
        rewards = torch.tensor([float(int(p.uid.split("-")[1]) % 2 == 0 and k % 2 == 0)
                                for k, p in enumerate(prompts)])
        reasons = ["correct" if r else "wrong_answer" for r in rewards]
        return RewardResult(rewards, {"verifier": rewards}, {"verifier": reasons}, rewards.bool(), "verifier")


class OrderedTask(ArithmeticTask):
    def __getitem__(self, index):
        p = super().__getitem__(index)
        return type(p)(messages=p.messages, verifier=p.verifier, reference=p.reference, uid=f"train-{index}")


def _loop(tmp_path, drop: bool, refills: int) -> tuple[Loop, FakeEngine]:
    cfg = TrainConfig()
    cfg.algorithm.group_size, cfg.algorithm.drop_zero_variance, cfg.algorithm.max_refill_rounds = 2, drop, refills
    cfg.trainer.prompts_per_step = 4
    tok = build_tokenizer()
    engine = FakeEngine(tok)
    task = OrderedTask(3, 1000, 0, "train")
    parts = Parts(None, tok, None, engine, FakeScorer(), None, task, OrderedTask(3, 2, 0, "eval"), None)
    loop = Loop(cfg, parts, RunDir(tmp_path, cfg.logger))
    loop.stream._order = list(range(1000))  # in order: even, odd, even, odd, ...
    return loop, engine


def test_without_dropping_every_group_is_kept(tmp_path):
    loop, engine = _loop(tmp_path, drop=False, refills=2)
    s = loop.sample()
    assert len(s.rollouts) == 8 and s.zero_variance_frac == 0.5 and engine.calls == [4]


def test_zero_variance_groups_are_refilled(tmp_path):
    loop, engine = _loop(tmp_path, drop=True, refills=5)
    s = loop.sample()
    # prompts 0-3: 0 and 2 kept; refill 4-5: 4 kept; refill 6: kept -> 4 groups
    assert engine.calls == [4, 2, 1] and len(s.rollouts) == 8 and s.refill_rounds == 2
    assert all(int(p.uid.split("-")[1]) % 2 == 0 for p in s.prompts)
    assert s.zero_variance_frac == 0.5  # reported for the first round: what the policy does now


def test_refill_is_capped(tmp_path):
    loop, engine = _loop(tmp_path, drop=True, refills=1)
    s = loop.sample()
    assert engine.calls == [4, 2] and len(s.rollouts) == 6 and s.refill_rounds == 1
