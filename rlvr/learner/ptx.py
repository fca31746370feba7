"""The pretraining mix (PPO-ptx, InstructGPT): a supervised loss on a second dataset in
every policy update, so optimizing a reward does not erase what the model could do
before (the "alignment tax").

``algorithm.ptx_coef`` > 0 turns it on; ``data.ptx`` names the dataset (any registered
prompt source with target completions: a row's ``solution`` or final assistant turn,
e.g. the built-in arithmetic task). Every optimizer step adds

    ptx_coef x (mean next-token loss over the targets of ``data.ptx.batch_size`` rows)

to the policy loss: its gradients accumulate with the policy's before the one optimizer
step. The rows of optimizer step s are drawn from a generator seeded by (run seed, s,
rank), so a resumed run draws what the uninterrupted run drew, with no state to save.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Optional

import torch

from rlvr.config import TrainConfig
from rlvr.learner.base import Backend
from rlvr.learner.logprobs import token_logprobs

__all__ = ["PtxMix", "build_ptx"]


class PtxMix:
    """Draws a supervised batch per optimizer step and back-propagates ptx_coef x its loss."""

    def __init__(self, prompts: Any, tokenizer: Any, coef: float, batch_size: int, micro_batch_size: int,
                 seed: int, rank: int = 0):
        if len(prompts) == 0:
            raise ValueError("data.ptx: the pretraining-mix dataset is empty")
        self.prompts, self.tokenizer, self.coef = prompts, tokenizer, coef
        self.batch_size, self.micro, self.seed, self.rank = batch_size, micro_batch_size, seed, rank
        self.steps = 0  # optimizer steps taken (the draw's seed); set from the checkpointed step on resume

    def draw(self, step: int) -> list:
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + step) * 64 + self.rank)
        index = torch.randint(0, len(self.prompts), (self.batch_size,), generator=gen).tolist()
        return [self.prompts[i] for i in index]

    def backward(self, backend: Backend, dtype: Optional[torch.dtype], step: int) -> float:
        """Back-propagate ptx_coef x the mean target-token loss of step `step`'s rows; returns that loss."""
        from rlvr.learner.targets import sft_batch

        batch = sft_batch(self.tokenizer, self.draw(step))
        total = float(batch.completion_mask.sum())
        loss_sum = 0.0
        for start in range(0, len(batch), self.micro):
            part = batch.select(torch.arange(start, min(start + self.micro, len(batch)))).trimmed()
            logp, _ = token_logprobs(backend.forward, part, 1.0, dtype, backend.device)
            loss = -(logp * part.completion_mask.to(logp.device)).sum() / max(total, 1.0)
            backend.backward(self.coef * loss)
            loss_sum += loss.item()
        return loss_sum


def build_ptx(cfg: TrainConfig, tokenizer: Any, rank: int = 0) -> Optional[PtxMix]:
    """The run's pretraining mix, or None when ``algorithm.ptx_coef`` is 0."""
    if cfg.algorithm.ptx_coef <= 0:
        return None
    from rlvr.data.chat import LengthChecked
    from rlvr.data.sources import build_prompt_sets
    from rlvr.learner.targets import target_text

    p = cfg.data.ptx
    data = replace(cfg.data, source=p.source, path=p.path, prompt_template=p.prompt_template,
                   system_prompt=p.system_prompt)
    train, _ = build_prompt_sets(data)
    checked = LengthChecked(train, tokenizer, cfg.data.max_prompt_tokens, "drop", "pretraining-mix")
    target_text(checked[0])  # a dataset without targets fails here, naming the fix
    print(f"ptx: {checked.describe()}; coef {cfg.algorithm.ptx_coef}, {p.batch_size} rows per optimizer step",
          flush=True)
    return PtxMix(checked, tokenizer, cfg.algorithm.ptx_coef, p.batch_size, cfg.trainer.micro_batch_size,
                  cfg.trainer.seed, rank)
