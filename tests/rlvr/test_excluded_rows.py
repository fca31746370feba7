"""Excluded rows on the total the loop trains on: a judge that fails on some answers (parse error,
timeout) against a stdlib server on loopback, both mixes; what the learner receives (advantages,
loss mask), the step's reward metrics and the held-out evaluation. A failure is never a 0."""
from __future__ import annotations

import json

import pytest
import torch

from rlvr.config import EvalConfig, RewardConfig, RewardSource, TrainConfig
from rlvr.data.schema import Prompt
from rlvr.eval.heldout import eval_records, run_evaluation
from rlvr.models.tiny import build_tokenizer
from rlvr.rewards import RewardScorer
from rlvr.rewards.base import EXCLUDED_REASONS
from rlvr.rewards.judge import EXCLUDED
from rlvr.rl.loop import Loop
from rlvr.rl.parts import Parts
from rlvr.rollout.base import RolloutBatch
from rlvr.run_dir import RunDir
from tests.rlvr.test_judge import serve  # noqa: F401  (the fixture: stdlib servers on loopback)

G = 4
EPS = 1e-4
# the judge's answer per completion: 10/10 -> 1.0, 5/10 -> 0.5, 0/10 -> 0.0 (`judge_answers` makes some fail)
SCORES = {"zulu-0": "SCORES: correct=10; polite=10", "zulu-2": "SCORES: correct=5; polite=5",
          "zulu-3": "SCORES: correct=0; polite=0", "zulu-1": "SCORES: correct=0; polite=0"}


def _completion(content: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


def judge_answers(fail_with: str = "parse_error", fails=("zulu-1",)):
    """The server's rule: the answer quoted in the judge's prompt decides the verdict."""
    def respond(n, path, request):
        text = request["messages"][-1]["content"]
        answer = next(a for a in SCORES if a in text)
        if answer in fails:
            return None if fail_with == "timeout" else (200, _completion("I would rather not say."))
        return 200, _completion(SCORES[answer])
    return respond


class Dataset:
    def __init__(self, verifiers):
        self.rows = [Prompt(({"role": "user", "content": f"Question {i}?"},), v, "zulu-0", f"train-{i}")
                     for i, v in enumerate(verifiers)]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


class Engine:
    """Each prompt's G answers are zulu-0 .. zulu-3 (greedy: the i-th prompt answers zulu-<i mod 4>)."""

    pad_id, eos_ids, shares_policy = 0, frozenset({1}), True

    def __init__(self):
        self.weight_version = -1

    def update_weights(self, source, version):
        self.weight_version = version

    def wake(self):
        pass

    def sleep(self):
        pass

    def close(self):
        pass

    def generate(self, prompts, params, seeds=None):
        n = len(prompts) * params.n
        texts = [f"zulu-{k % G}" for k in range(n)]
        ids = torch.ones((n, 3), dtype=torch.long)
        return RolloutBatch(ids, torch.ones_like(ids), ids.clone(), torch.ones((n, 3)), torch.zeros((n, 3)),
                            torch.zeros(n, dtype=torch.bool), texts, self.weight_version)


class Learner:
    """Records what the update receives."""

    def __init__(self):
        self.calls = []

    def update(self, batch, advantages, loss_mask, ref, seed, old_logprobs=None, token_weights=None, beta=None):
        self.calls.append({"advantages": advantages.clone(), "loss_mask": loss_mask.clone()})
        return {"loss": 0.0}

    def logprobs(self, batch, forward=None):
        return batch.logprobs.clone()


def _judge(url, weight=1.0, **options):
    opts = {"base_url": url, "model": "judge", "items": ["correct", "polite"], "cache": False, "backoff_s": 0.01,
            **options}
    return RewardSource("judge", weight, opts, kind="judge")


def _loop(tmp_path, sources, mix="sum", verifiers=("exact",) * 4, prompts_per_step=2):
    cfg = TrainConfig()
    cfg.reward = RewardConfig(sources=list(sources), mix=mix, workers=1)
    a = cfg.algorithm
    a.group_size, a.rollout_correction, a.beta = G, "none", 0.0
    cfg.trainer.prompts_per_step = prompts_per_step
    cfg.watch.enabled = False
    scorer, learner = RewardScorer(cfg.reward), Learner()
    parts = Parts(object(), build_tokenizer(), None, Engine(), scorer, learner, Dataset(verifiers),
                  Dataset(verifiers), None)
    return Loop(cfg, parts, RunDir(tmp_path, cfg.logger)), learner


def _expected(rewards):
    """grpo, group scale, over the scored rows of one group; None marks an excluded row (advantage 0)."""
    kept = torch.tensor([r for r in rewards if r is not None])
    mean, std = kept.mean(), kept.std()
    return [0.0 if r is None else float((r - mean) / (std + EPS)) for r in rewards]


def test_the_two_kinds_of_failure_reasons_agree():
    assert set(EXCLUDED) == EXCLUDED_REASONS


@pytest.mark.parametrize("fail_with", ["parse_error", "timeout"])
def test_sum_mix_leaves_a_failed_judge_row_out_of_advantages_loss_and_mean(serve, tmp_path, fail_with):  # noqa: F811
    server = serve(judge_answers(fail_with))
    loop, learner = _loop(tmp_path, [_judge(server.url, request_timeout_s=0.5, retries=0)])
    try:
        metrics = loop.train_step(1)
    finally:
        loop.p.scorer.close()
    got = learner.calls[0]
    want = _expected([1.0, None, 0.5, 0.0]) * 2  # the old fault: zulu-1 scored 0, the worst of its group
    torch.testing.assert_close(got["advantages"], torch.tensor(want))
    assert got["loss_mask"].sum(-1).tolist() == [3.0, 0.0, 3.0, 3.0] * 2
    assert metrics["reward/excluded_frac"] == 0.25 and metrics[f"verdict/judge/{fail_with}"] == 2.0
    assert metrics["reward/mean"] == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3, not (1 + 0 + 0.5 + 0) / 4


def test_gated_mix_leaves_a_failed_judge_row_out(serve, tmp_path):  # noqa: F811
    server = serve(judge_answers())
    check = RewardSource("form", 1.0, {"pattern": "zulu-[02]"}, kind="rule", check="regex")
    loop, learner = _loop(tmp_path, [check, _judge(server.url)], mix="gated")
    try:
        metrics = loop.train_step(1)
    finally:
        loop.p.scorer.close()
    got = learner.calls[0]
    # levels 1 (zulu-0, zulu-2) and 0 (zulu-3) of the scored rows: gap 1, learned term 0.25 tanh(judge)
    s = 0.25
    totals = [1 + s * torch.tanh(torch.tensor(1.0)).item(), None, 1 + s * torch.tanh(torch.tensor(0.5)).item(), 0.0]
    torch.testing.assert_close(got["advantages"], torch.tensor(_expected(totals) * 2))
    assert got["loss_mask"][1].sum() == 0 and got["loss_mask"][0].sum() == 3
    assert metrics["reward/excluded_frac"] == 0.25


def test_a_row_without_a_verifier_is_scored_by_the_judge_alone_not_excluded(serve, tmp_path):  # noqa: F811
    server = serve(judge_answers(fails=()))
    verifier = RewardSource()  # each row's own verifier; "none" rows are not its to score (by design)
    loop, learner = _loop(tmp_path, [verifier, _judge(server.url)], verifiers=("none",) * 4)
    try:
        metrics = loop.train_step(1)
    finally:
        loop.p.scorer.close()
    got = learner.calls[0]
    torch.testing.assert_close(got["advantages"], torch.tensor(_expected([1.0, 0.0, 0.5, 0.0]) * 2))
    assert bool((got["loss_mask"].sum(-1) == 3).all()) and metrics["reward/excluded_frac"] == 0.0
    assert metrics["verdict/verifier/no_verifier"] == 8.0


def test_a_failed_source_of_weight_0_excludes_nothing(serve, tmp_path):  # noqa: F811
    server = serve(judge_answers())
    check = RewardSource("form", 1.0, {"pattern": "zulu-[02]"}, kind="rule", check="regex")
    loop, learner = _loop(tmp_path, [check, _judge(server.url, weight=0.0)])
    try:
        metrics = loop.train_step(1)
    finally:
        loop.p.scorer.close()
    assert metrics["reward/excluded_frac"] == 0.0 and metrics["verdict/judge/parse_error"] == 2.0
    assert bool((learner.calls[0]["loss_mask"].sum(-1) == 3).all())


def test_every_row_failed_means_no_update(serve, tmp_path):  # noqa: F811
    server = serve(judge_answers(fails=tuple(SCORES)))
    loop, learner = _loop(tmp_path, [_judge(server.url)])
    try:
        metrics = loop.train_step(1)
    finally:
        loop.p.scorer.close()
    assert learner.calls == [] and metrics["groups_trained"] == 0
    assert metrics["reward/excluded_frac"] == 1.0 and metrics["zero_variance_frac"] == 1.0
    assert metrics["reward/mean"] != metrics["reward/mean"]  # NaN: no row was scored, so there is no mean


def test_a_group_with_one_scored_row_is_flat_and_refilled(serve, tmp_path):  # noqa: F811
    server = serve(judge_answers(fails=("zulu-1", "zulu-2", "zulu-3")))
    loop, _ = _loop(tmp_path, [_judge(server.url)])
    loop.cfg.algorithm.drop_zero_variance, loop.cfg.algorithm.max_refill_rounds = True, 1
    try:
        s = loop.sample(1)
    finally:
        loop.p.scorer.close()
    assert s.zero_variance_frac == 1.0 and s.refill_rounds == 1 and len(s.rollouts) == 0


def test_heldout_evaluation_leaves_excluded_rows_out_of_the_mean(serve, tmp_path):  # noqa: F811
    server = serve(judge_answers())
    scorer = RewardScorer(RewardConfig(sources=[_judge(server.url)], workers=1))
    prompts = Dataset(("none",) * 4).rows
    try:
        ev = run_evaluation(Engine(), scorer, prompts, [[5, 6]] * 4, EvalConfig(k=0, num_samples=0), 1.0, 8, seed=0)
    finally:
        scorer.close()
    # greedy answers zulu-0 .. zulu-3: scored 1.0, failed, 0.5, 0.0
    assert ev.metrics["eval/reward/mean"] == pytest.approx(0.5)
    assert ev.metrics["eval/reward/excluded_frac"] == 0.25
    rows = eval_records(0, prompts, ev.greedy, ev.result)
    assert [r["reward"] for r in rows] == [1.0, None, 0.5, 0.0]
