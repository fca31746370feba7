"""Supervised warm-up: teach the task's answer format from reference solutions.

Used by the embedded default (a freshly initialised tiny Llama cannot be rewarded
into arithmetic from nothing) and available to any run through ``model.sft.steps``.
Only completion tokens (solution + EOS) carry loss.
"""
from __future__ import annotations

import math

import torch

from rlvr.config import SFTConfig
from rlvr.data.chat import encode_prompt
from rlvr.data.sources import PromptSet, PromptStream
from rlvr.rollout.hf import left_pad

__all__ = ["supervised_warmup"]


def _batch(tokenizer, prompts, max_prompt_tokens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows, labels = [], []
    for p in prompts:
        if p.solution is None:
            raise ValueError(f"prompt {p.uid} has no `solution`; supervised warm-up needs reference completions")
        prompt_ids = encode_prompt(tokenizer, p, max_prompt_tokens)
        target = tokenizer(p.solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt_ids + target)
        labels.append([-100] * len(prompt_ids) + target)
    ids, mask = left_pad(rows, tokenizer.pad_token_id)
    lab, _ = left_pad(labels, -100)
    return ids, mask, lab


def supervised_warmup(model: torch.nn.Module, tokenizer, prompts: PromptSet, cfg: SFTConfig, seed: int,
                      max_prompt_tokens: int, log_every: int = 100) -> list[float]:
    """Run `cfg.steps` AdamW steps of next-token loss on solutions; returns the loss curve."""
    torch.manual_seed(seed)
    stream = PromptStream(prompts, seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, cfg.steps)))))
    model.train()
    losses = []
    for step in range(cfg.steps):
        ids, mask, labels = _batch(tokenizer, stream.take(cfg.batch_size), max_prompt_tokens)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        loss = model(input_ids=ids, attention_mask=mask, position_ids=positions, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"[sft] step {step + 1}/{cfg.steps} loss {sum(losses[-log_every:]) / log_every:.4f}", flush=True)
    return losses
