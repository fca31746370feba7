"""Supervised targets as a batch: a prompt (left-padded) followed by its target completion and the
token that closes it (right-padded, mask 1 on the target tokens), the shape the learner's log-prob
path reads. The closing token is the chat template's end of turn (``<|im_end|>``, ``<|eot_id|>``),
what the model will emit to finish an answer in the rollouts, or EOS without a template
(`rlvr.models.eos.closing_id`).

Shared by the SFT stage (`rlvr.sft.supervised`), DPO's whole-answer log-probs (`rlvr.dpo.pairs`)
and the pretraining mix (`rlvr.learner.ptx`), so all three render and pad exactly alike.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

from rlvr.data.chat import DataError, render_prompts
from rlvr.data.schema import Prompt
from rlvr.models.eos import closing_id
from rlvr.rollout.base import RolloutBatch
from rlvr.rollout.hf import left_pad

__all__ = ["sft_batch", "target_text"]


def target_text(prompt: Prompt) -> str:
    """The prompt's SFT target; a row without one is a `DataError` naming the ways out."""
    if prompt.solution is None:
        raise DataError(f"prompt {prompt.uid} has no `solution` (nor a final assistant message, nor a data.format "
                        f"target): supervised fine-tuning needs target completions; add a solution column, or skip "
                        f"the supervised warm-up with model.sft.steps=0")
    return prompt.solution


def sft_batch(tokenizer: Any, prompts: Sequence[Prompt]) -> RolloutBatch:
    """Prompts (left-padded) with their targets + the closing token (the template's end of turn, else EOS) as the
    completion (right-padded, mask 1 on targets)."""
    prompt_ids = render_prompts(tokenizer, prompts)
    close = closing_id(tokenizer)
    targets = [tokenizer(target_text(p), add_special_tokens=False)["input_ids"] + [close] for p in prompts]
    ids, mask = left_pad(prompt_ids, tokenizer.pad_token_id)
    width = max(len(t) for t in targets)
    completion = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    cmask = torch.zeros((len(prompts), width))
    for i, t in enumerate(targets):
        completion[i, :len(t)] = torch.tensor(t)
        cmask[i, :len(t)] = 1.0
    return RolloutBatch(ids, mask, completion, cmask, torch.zeros_like(cmask), torch.zeros(len(prompts), dtype=torch.bool),
                        [p.solution or "" for p in prompts])
