"""What a trained policy does on held-out prompts: its greedy pass rate and its KL to a reference.

`greedy_pass_rate` decodes one greedy answer per prompt and scores it with each row's
own verifier in the verifier pool (hard deadlines, as in `rlvr-train`'s evaluation);
`greedy_scores` scores them with any `RewardScorer` (rlvr-dpo's: each row's verifier plus
the run's truth source, ``reward.truth``; on the built-in preference task that is
``preference_rule``, whose mean is the *true-preference rate*: the share of answers that
meet every hidden dimension).

`sampled_kl` estimates the sequence-level KL(pi || pi_ref) = E_{y ~ pi}[log pi(y) -
log pi_ref(y)] from ``n`` answers sampled at temperature 1 per prompt: the mean over
samples of the summed per-token log-ratio (the unbiased k1 estimator; a single sample
can be negative). Both models score the same sampled tokens through the learner's
log-prob path, so the same function measures GRPO and DPO policies alike.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Optional, Sequence

import torch

from rlvr.data.chat import render_prompts
from rlvr.data.schema import Prompt
from rlvr.learner.logprobs import token_logprobs
from rlvr.rollout.base import SamplingParams
from rlvr.rollout.hf import HFEngine

__all__ = ["greedy_pass_rate", "greedy_scores", "sampled_kl", "row_verifier_scorer"]


def row_verifier_scorer(workers: int = 1, timeout: float = 10.0):
    """A `RewardScorer` that scores each row with its own verifier (close it when done)."""
    from rlvr.config import RewardConfig, RewardSource
    from rlvr.rewards import RewardScorer

    return RewardScorer(RewardConfig(sources=[RewardSource()], workers=workers, timeout=timeout))


def greedy_scores(model: torch.nn.Module, tokenizer: Any, prompts: Sequence[Prompt], max_new_tokens: int,
                  scorer: Any) -> tuple[Any, list[str]]:
    """(the scorer's `RewardResult` of one greedy answer per prompt, the answers)."""
    engine = HFEngine(model, tokenizer, batch_size=0)
    out = engine.generate(render_prompts(tokenizer, prompts), SamplingParams(greedy=True, max_new_tokens=max_new_tokens),
                          seeds=list(range(len(prompts))))
    return scorer.score(list(prompts), out.texts), out.texts


def greedy_pass_rate(model: torch.nn.Module, tokenizer: Any, prompts: Sequence[Prompt], max_new_tokens: int,
                     scorer: Any) -> tuple[float, Counter, list[str]]:
    """(share of greedy answers their verifier passes, verdict reasons counted, the answers)."""
    result, texts = greedy_scores(model, tokenizer, prompts, max_new_tokens, scorer)
    passed = result.passed if result.passed is not None else torch.zeros(len(prompts), dtype=torch.bool)
    return passed.float().mean().item(), Counter(result.gate_reasons()), texts


@torch.no_grad()
def sampled_kl(policy: torch.nn.Module, reference: Callable[..., Any], tokenizer: Any, prompts: Sequence[Prompt],
               samples_per_prompt: int, max_new_tokens: int, seed: int = 0,
               dtype: Optional[torch.dtype] = None) -> dict[str, float]:
    """Sequence-level KL(policy || reference) on the policy's own samples (see the module docstring);
    ``reference`` is a module or a forward callable (the policy with its adapter disabled)."""
    if samples_per_prompt < 1 or not prompts:
        return {}
    engine = HFEngine(policy, tokenizer, batch_size=0, autocast_dtype=dtype)
    params = SamplingParams(n=samples_per_prompt, temperature=1.0, max_new_tokens=max_new_tokens)
    with torch.random.fork_rng():
        out = engine.generate(render_prompts(tokenizer, prompts), params,
                              seeds=[seed * 1_000_003 + i for i in range(len(prompts))])
    modules = [m for m in (policy, reference) if isinstance(m, torch.nn.Module)]
    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        device = next(policy.parameters()).device
        own, _ = token_logprobs(policy, out, 1.0, dtype, device)
        ref, _ = token_logprobs(reference, out, 1.0, dtype, device)
    finally:
        for m, training in zip(modules, was):
            m.train(training)
    mask = out.completion_mask.to(own.device)
    per_sequence = ((own - ref.to(own.device)) * mask).sum(-1)
    n = len(per_sequence)
    return {"kl": per_sequence.mean().item(),
            "kl_stderr": (per_sequence.std().item() / n ** 0.5) if n > 1 else 0.0,
            "kl_per_token": (per_sequence.sum() / mask.sum().clamp(min=1)).item(),
            "kl_samples": float(n), "sample_len": out.lengths.float().mean().item()}
