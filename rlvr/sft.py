"""Supervised warm-up: teach the task's answer format from reference solutions.

Used by the embedded default (a freshly initialised tiny Llama cannot be rewarded
into arithmetic from nothing) and available to any run through ``model.sft.steps``.
Only completion tokens (solution + EOS) carry loss.

Small models learn arithmetic with a sudden jump, so a fixed step count lands on
either side of it depending on tiny details. ``sft.stop_at_accuracy`` makes the
warm-up stop once greedy accuracy on a probe of *training* prompts reaches a target:
the embedded default stops at a deliberately mediocre model, leaving RL work to do.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from rlvr.config import SFTConfig
from rlvr.data.chat import encode_prompt
from rlvr.data.schema import Prompt
from rlvr.data.sources import PromptSet, PromptStream
from rlvr.rollout.base import SamplingParams
from rlvr.rollout.hf import HFEngine, left_pad

__all__ = ["supervised_warmup", "probe_accuracy"]


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


def probe_accuracy(model, tokenizer, prompts: Sequence[Prompt], max_prompt_tokens: int, max_new_tokens: int) -> float:
    """Greedy accuracy by each prompt's own verifier (in-process: our own model's short outputs)."""
    from verifiers import get_verifier

    engine = HFEngine(model, tokenizer)
    out = engine.generate([encode_prompt(tokenizer, p, max_prompt_tokens) for p in prompts],
                          SamplingParams(greedy=True, max_new_tokens=max_new_tokens))
    correct = 0
    for p, text in zip(prompts, out.texts):
        try:
            correct += get_verifier(p.verifier).verify(completion=text, reference=p.reference, **p.fields).correct
        except Exception:  # noqa: BLE001 - a probe never stops the warm-up
            pass
    return correct / max(1, len(prompts))


def supervised_warmup(model: torch.nn.Module, tokenizer, prompts: PromptSet, cfg: SFTConfig, seed: int,
                      max_prompt_tokens: int, max_new_tokens: int = 32, log_every: int = 100) -> list[float]:
    """Up to `cfg.steps` AdamW steps of next-token loss on solutions; returns the loss curve."""
    torch.manual_seed(seed)
    stream = PromptStream(prompts, seed)
    probe = PromptStream(prompts, seed + 1).take(cfg.probe_size) if cfg.stop_at_accuracy > 0 else []
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, cfg.steps)))))
    losses: list[float] = []
    for step in range(1, cfg.steps + 1):
        model.train()
        ids, mask, labels = _batch(tokenizer, stream.take(cfg.batch_size), max_prompt_tokens)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        loss = model(input_ids=ids, attention_mask=mask, position_ids=positions, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log_every and step % log_every == 0:
            print(f"[sft] step {step}/{cfg.steps} loss {sum(losses[-log_every:]) / log_every:.4f}", flush=True)
        if probe and step % cfg.check_every == 0:
            acc = probe_accuracy(model, tokenizer, probe, max_prompt_tokens, max_new_tokens)
            if acc >= cfg.stop_at_accuracy:
                print(f"[sft] step {step}: probe accuracy {acc:.3f} >= sft.stop_at_accuracy="
                      f"{cfg.stop_at_accuracy}; warm-up done", flush=True)
                break
    model.eval()
    return losses
