"""Rollouts with transformers' `generate`, sharing the policy module (no weight copy)."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from rlvr.rollout.base import RolloutBatch, SamplingParams, concat_rollouts, register_engine

__all__ = ["HFEngine", "left_pad", "completion_mask"]


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        if len(p):
            ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            mask[i, width - len(p):] = 1
    return ids, mask


def completion_mask(completion_ids: torch.Tensor, eos_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask up to and including the first EOS, truncated = no EOS at all)."""
    is_eos = completion_ids == eos_id
    has_eos = is_eos.any(-1)
    first = torch.where(has_eos, is_eos.int().argmax(-1), completion_ids.shape[1])
    positions = torch.arange(completion_ids.shape[1]).unsqueeze(0)
    return (positions <= first.unsqueeze(1)).float(), ~has_eos


@register_engine("hf")
class HFEngine:
    """Batched sampling with `model.generate`; log-probs from the returned logits."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, batch_size: int = 0, autocast_dtype=None):
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.autocast_dtype = autocast_dtype
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_id = tokenizer.eos_token_id

    def sync_weights(self, model: torch.nn.Module) -> None:
        self.model = model  # same module object: nothing to copy

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> RolloutBatch:
        expanded = [p for p in prompts for _ in range(params.n)]
        size = self.batch_size or len(expanded)
        parts = [self._generate(expanded[i:i + size], params) for i in range(0, len(expanded), size)]
        return concat_rollouts(parts, self.pad_id)

    @torch.no_grad()
    def _generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> RolloutBatch:
        ids, mask = left_pad(prompts, self.pad_id)
        sampling: dict[str, Any] = (
            {"do_sample": False} if params.greedy
            else {"do_sample": True, "temperature": params.temperature, "top_p": params.top_p, "top_k": 0})
        was_training = self.model.training
        self.model.eval()
        device = next(self.model.parameters()).device
        with torch.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
            out = self.model.generate(
                input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=params.max_new_tokens,
                eos_token_id=self.eos_id, pad_token_id=self.pad_id, output_logits=True,
                return_dict_in_generate=True, **sampling)
        self.model.train(was_training)
        completion = out.sequences[:, ids.shape[1]:].cpu()
        cmask, truncated = completion_mask(completion, self.eos_id)
        temperature = 1.0 if params.greedy else params.temperature
        logits = torch.stack(out.logits, dim=1).float().cpu() / temperature
        logprobs = torch.log_softmax(logits, -1).gather(-1, completion.unsqueeze(-1)).squeeze(-1) * cmask
        completion = torch.where(cmask.bool(), completion, self.pad_id)
        texts = self.tokenizer.batch_decode(completion, skip_special_tokens=True)
        return RolloutBatch(ids, mask, completion, cmask, logprobs, truncated, texts)
