"""Preference pairs -> whole-answer log-probs, through the same batching as supervised fine-tuning.

A pair's chosen and rejected answers are two supervised targets after the same chat
context (`rlvr.learner.targets.sft_batch`: prompt left-padded, answer + the template's end
of turn, or EOS without a template, right-padded), so rendering, positions and padding are
exactly those of `rlvr-sft` and the RL learner, and the log-probs come from the same
selective log-softmax (`rlvr.learner.logprobs`).
`fit_pairs` drops, and counts, pairs whose context plus longer answer exceed the token
budget, once, when the data is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch

from rlvr.data.chat import render_prompts
from rlvr.data.schema import Prompt
from rlvr.learner.logprobs import token_logprobs
from rlvr.learner.targets import sft_batch
from rlvr.preference import Pair

__all__ = ["SequenceLogprobs", "answer_prompts", "sequence_logprobs", "fit_pairs", "pair_key"]


@dataclass
class SequenceLogprobs:
    chosen: torch.Tensor  # [B] sum of the chosen answer's token log-probs (its closing token included)
    rejected: torch.Tensor  # [B] the same for the rejected answer
    chosen_tokens: torch.Tensor  # [B] tokens in the chosen answer (its closing token included)


def pair_key(pair: Pair) -> tuple[str, str, str]:
    """Content identity of a pair (the reference cache's key: ids may repeat across files)."""
    return (repr(pair.messages), pair.chosen, pair.rejected)


def answer_prompts(pairs: Sequence[Pair]) -> list[Prompt]:
    """The chosen answers as supervised targets, then the rejected ones (same contexts)."""
    def as_prompt(pair: Pair, answer: str) -> Prompt:
        return Prompt(messages=tuple(dict(m) for m in pair.messages), verifier="", reference=None,
                      solution=answer, uid=pair.uid)

    return [as_prompt(p, p.chosen) for p in pairs] + [as_prompt(p, p.rejected) for p in pairs]


def sequence_logprobs(forward: Callable[..., Any], tokenizer: Any, pairs: Sequence[Pair],
                      dtype: Optional[torch.dtype] = None, device: Optional[torch.device] = None) -> SequenceLogprobs:
    """Whole-answer log-probs of both answers of every pair under ``forward`` (grad if enabled)."""
    batch = sft_batch(tokenizer, answer_prompts(pairs)).trimmed()
    logp, _ = token_logprobs(forward, batch, 1.0, dtype, device)
    mask = batch.completion_mask.to(logp.device)
    seq, tokens = (logp * mask).sum(-1), mask.sum(-1)
    n = len(pairs)
    return SequenceLogprobs(seq[:n], seq[n:], tokens[:n])


def fit_pairs(tokenizer: Any, pairs: Sequence[Pair], max_tokens: int) -> tuple[list[Pair], int]:
    """(pairs within ``max_tokens`` = context + longer answer + its closing token, how many were dropped)."""
    if not pairs:
        return [], 0
    contexts = [len(ids) for ids in render_prompts(tokenizer, answer_prompts(pairs)[:len(pairs)])]
    answers = tokenizer([p.chosen for p in pairs] + [p.rejected for p in pairs], add_special_tokens=False)["input_ids"]
    n = len(pairs)
    kept = [p for i, p in enumerate(pairs) if contexts[i] + max(len(answers[i]), len(answers[n + i])) + 1 <= max_tokens]
    return kept, n - len(kept)
