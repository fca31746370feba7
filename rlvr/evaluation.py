"""Held-out evaluation through the same engine and verifiers as training.

pass@1 is greedy; pass@k uses ``num_samples`` samples per prompt and the unbiased
estimator 1 - C(n - c, k) / C(n, k) (c = correct samples). Both need a source that
decides pass/fail (a verifier); the mean reward of the greedy outputs, overall and per
source, is always reported. The sampler runs under its
own seed inside `torch.random.fork_rng`, so evaluating never changes the training
random stream (a resumed run stays identical to an uninterrupted one).
"""
from __future__ import annotations

from math import comb
from typing import Any, Sequence

import torch

from rlvr.config import EvalConfig
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardScorer
from rlvr.rollout.base import Engine, SamplingParams

__all__ = ["pass_at_k", "evaluate"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k draws (without replacement) from n samples with c correct is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def evaluate(engine: Engine, scorer: RewardScorer, prompts: Sequence[Prompt], encoded: Sequence[list[int]],
             cfg: EvalConfig, top_p: float, max_new_tokens: int, seed: int) -> dict[str, Any]:
    """Greedy outputs: mean reward per source, and pass@1 where a source decides pass/fail;
    sampled pass@k (``num_samples`` per prompt, seeded per prompt) where one does."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        greedy = engine.generate(encoded, SamplingParams(n=1, greedy=True, max_new_tokens=max_new_tokens),
                                 seeds=list(range(len(encoded))))
        result = scorer.score(prompts, greedy.texts)
        out: dict[str, Any] = {"eval/reward/mean": result.rewards.mean().item()}
        out.update({f"eval/reward/{label}/mean": v.mean().item() for label, v in result.per_source.items()})
        if result.passed is not None:
            out["eval/pass@1"] = result.passed.float().mean().item()
        if result.passed is not None and cfg.k > 0 and cfg.num_samples > 0:
            params = SamplingParams(n=cfg.num_samples, temperature=cfg.temperature, top_p=top_p,
                                    max_new_tokens=max_new_tokens)
            sampled = engine.generate(encoded, params, seeds=[seed * 1_000_003 + i for i in range(len(encoded))])
            repeated = [p for p in prompts for _ in range(cfg.num_samples)]
            correct = scorer.score(repeated, sampled.texts).passed.view(len(prompts), cfg.num_samples).sum(-1)
            out["eval/pass@k"] = sum(pass_at_k(cfg.num_samples, int(c), cfg.k) for c in correct) / len(prompts)
            out["eval/k"] = cfg.k
    return out
