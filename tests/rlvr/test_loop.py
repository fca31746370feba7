"""The loop: dynamic sampling (zero-variance groups dropped and refilled, with a cap), and the
engine protocol's call order (wake -> one weight sync per version -> generate -> sleep) with
stale weights refused."""
from __future__ import annotations

import pytest
import torch

from rlvr.config import TrainConfig
from rlvr.data import ArithmeticTask
from rlvr.rl.loop import Loop
from rlvr.models.tiny import build_tokenizer
from rlvr.rl.parts import Parts
from rlvr.rewards import RewardResult
from rlvr.rollout.base import RolloutBatch, StaleWeightsError
from rlvr.run_dir import RunDir


class FakeEngine:
    """Completion text = the prompt's uid; G copies per prompt."""

    pad_id, eos_ids = 0, frozenset({1})

    def __init__(self, tokenizer):
        self.tokenizer, self.calls, self.log = tokenizer, [], []
        self.weight_version = -1

    def update_weights(self, source, version):
        self.log.append(("update", version))
        self.weight_version = version

    def wake(self):
        self.log.append(("wake",))

    def sleep(self):
        self.log.append(("sleep",))

    def close(self):
        self.log.append(("close",))

    def generate(self, prompts, params, seeds=None):
        assert seeds is not None and len(seeds) == len(prompts)
        self.calls.append(len(prompts))
        self.log.append(("generate", self.weight_version))
        n = len(prompts) * params.n
        ids = torch.ones((n, 3), dtype=torch.long)
        return RolloutBatch(ids, torch.ones_like(ids), ids.clone(), torch.ones((n, 3)), torch.zeros((n, 3)),
                            torch.zeros(n, dtype=torch.bool), [str(i) for i in range(n)], self.weight_version)


class StaleEngine(FakeEngine):
    """A sync that silently does not happen."""

    def update_weights(self, source, version):
        self.log.append(("update", version))


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


def _loop(tmp_path, drop: bool, refills: int, engine_cls=FakeEngine) -> tuple[Loop, FakeEngine]:
    cfg = TrainConfig()
    cfg.algorithm.group_size, cfg.algorithm.drop_zero_variance, cfg.algorithm.max_refill_rounds = 2, drop, refills
    cfg.trainer.prompts_per_step = 4
    tok = build_tokenizer()
    engine = engine_cls(tok)
    task = OrderedTask(3, 1000, 0, "train")
    parts = Parts(object(), tok, None, engine, FakeScorer(), None, task, OrderedTask(3, 2, 0, "eval"), None)
    loop = Loop(cfg, parts, RunDir(tmp_path, cfg.logger))
    loop.stream._order = list(range(1000))  # in order: even, odd, even, odd, ...
    return loop, engine


def test_without_dropping_every_group_is_kept(tmp_path):
    loop, engine = _loop(tmp_path, drop=False, refills=2)
    s = loop.sample(1)
    assert len(s.rollouts) == 8 and s.zero_variance_frac == 0.5 and engine.calls == [4]


def test_zero_variance_groups_are_refilled(tmp_path):
    loop, engine = _loop(tmp_path, drop=True, refills=5)
    s = loop.sample(1)
    # prompts 0-3: 0 and 2 kept; refill 4-5: 4 kept; refill 6: kept -> 4 groups
    assert engine.calls == [4, 2, 1] and len(s.rollouts) == 8 and s.refill_rounds == 2
    assert all(int(p.uid.split("-")[1]) % 2 == 0 for p in s.prompts)
    assert s.zero_variance_frac == 0.5  # reported for the first round: what the policy does now


def test_refill_is_capped(tmp_path):
    loop, engine = _loop(tmp_path, drop=True, refills=1)
    s = loop.sample(1)
    assert engine.calls == [4, 2] and len(s.rollouts) == 6 and s.refill_rounds == 1


def test_weights_are_synced_once_per_step_before_generating(tmp_path):
    loop, engine = _loop(tmp_path, drop=True, refills=5)
    loop.sample(1)
    # one push of version 0 (the learner's state before step 1), then three rounds on those weights
    assert engine.log == [("wake",), ("update", 0), ("generate", 0), ("sleep",),
                          ("wake",), ("generate", 0), ("sleep",), ("wake",), ("generate", 0), ("sleep",)]
    engine.log.clear()
    loop.sample(2)
    assert engine.log[:3] == [("wake",), ("update", 1), ("generate", 1)]


def test_a_sync_that_did_not_happen_stops_the_run(tmp_path):
    loop, engine = _loop(tmp_path, drop=False, refills=0, engine_cls=StaleEngine)
    with pytest.raises(StaleWeightsError, match="the weight sync failed"):
        loop.sample(1)
    assert engine.log[-1] == ("sleep",)  # the engine is put back to sleep even so


def test_truth_summary_reads_the_named_truth_source_and_the_final_kl():
    from rlvr.config import TruthConfig
    from rlvr.rl.loop import truth_summary

    builtin = TruthConfig("preference_rule", "true_preference")  # what data=preference sets
    rows = [{"step": 0, "eval/reward/mean": 0.1, "eval/reward/preference_rule/mean": 0.25, "eval/reward/tone/mean": 0.5}]
    rows += [{"step": s, "kl": 0.01 * s} for s in range(1, 21)]
    rows += [{"step": 20, "eval/reward/mean": 0.9, "eval/reward/preference_rule/mean": 0.75, "eval/reward/tone/mean": 0.6}]
    out = truth_summary(rows, rows[0], rows[-1], builtin, has_reference=True)
    assert out["true_preference_before"] == 0.25 and out["true_preference_after"] == 0.75
    assert out["truth"] == {"source": "preference_rule", "name": "true_preference"}
    assert abs(out["kl"] - (0.19 + 0.20) / 2) < 1e-9  # the last tenth of the steps
    assert truth_summary(rows[1:-1], {}, {}, builtin, has_reference=False) == {}
    # any run names its own: a rubric dimension under its own summary key; none named, no truth keys
    mine = truth_summary(rows, rows[0], rows[-1], TruthConfig("tone", "tone_rate"), has_reference=False)
    assert mine == {"tone_rate_before": 0.5, "tone_rate_after": 0.6, "truth": {"source": "tone", "name": "tone_rate"}}
    assert truth_summary(rows, rows[0], rows[-1], TruthConfig(), has_reference=False) == {}
