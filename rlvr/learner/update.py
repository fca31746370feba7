"""The policy update: per-token log-probs, the registered loss, steps through a backend.

`Learner.update` runs ``num_iterations`` passes over a rollout batch, each split into
``optimizer_steps_per_batch`` mini-batches of ``micro_batch_size`` micro-batches
(gradient accumulation). Loss normalizers are mini-batch-wide, so accumulation is
exact; across data-parallel ranks the token count is the global one (an all-reduce)
divided by the world size, because the backend averages gradients over ranks.
Forward, backward and optimizer steps all go through the backend
(`rlvr.learner.base.Backend`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from rlvr.algo import aggregate, get_loss
from rlvr.config import AlgorithmConfig, TrainerConfig
from rlvr.distributed import all_reduce_sum
from rlvr.learner.base import Backend
from rlvr.learner.logprobs import token_logprobs
from rlvr.learner.ptx import PtxMix
from rlvr.rollout.base import RolloutBatch

__all__ = ["Learner", "autocast_dtype", "total_optimizer_steps"]


def autocast_dtype(dtype: str) -> Optional[torch.dtype]:
    return {"fp32": None, "bf16": torch.bfloat16}[dtype]


def total_optimizer_steps(algo: AlgorithmConfig, trainer: TrainerConfig) -> int:
    return trainer.total_steps * trainer.optimizer_steps_per_batch * algo.num_iterations


@dataclass
class UpdateStats:
    sums: dict[str, float]
    tokens: float = 0.0
    steps: int = 0
    ptx_loss: float = 0.0  # the pretraining mix's loss, summed over optimizer steps


class Learner:
    """Turns (rollouts, advantages) into optimizer steps on the backend's policy."""

    def __init__(self, backend: Backend, algo: AlgorithmConfig, trainer: TrainerConfig, max_new_tokens: int,
                 temperature: float, dtype: str, ptx: Optional[PtxMix] = None):
        self.backend, self.algo, self.trainer, self.ptx = backend, algo, trainer, ptx
        self.max_new_tokens, self.temperature, self.dtype = max_new_tokens, temperature, autocast_dtype(dtype)
        self.loss_fn = get_loss(algo.loss)

    @property
    def model(self) -> torch.nn.Module:
        return self.backend.module

    def logprobs(self, batch: RolloutBatch, forward=None) -> torch.Tensor:
        """No-grad log-probs [N, C] of a batch (the reference model's with ``forward=ref``), micro-batched."""
        forward = forward or self.backend.forward
        micro, width = self.trainer.micro_batch_size, batch.completion_ids.shape[1]
        out = torch.zeros(len(batch), width)
        with torch.no_grad():
            for i in range(0, len(batch), micro):
                part = batch.select(torch.arange(i, min(i + micro, len(batch)))).trimmed()
                logp = token_logprobs(forward, part, self.temperature, self.dtype, self.backend.device)[0]
                out[i:i + len(part), :logp.shape[1]] = logp.cpu() * part.completion_mask
        return out

    def update(self, batch: RolloutBatch, advantages: torch.Tensor, loss_mask: torch.Tensor,
               ref_logprobs: Optional[torch.Tensor], seed: int, old_logprobs: Optional[torch.Tensor] = None,
               token_weights: Optional[torch.Tensor] = None, beta: Optional[float] = None) -> dict[str, float]:
        """All optimizer steps for one rollout batch; returns averaged statistics.

        ``old_logprobs`` are the learner's own log-probs of the batch before the update (the
        old policy of the clipped ratio); without them the engine's sampling log-probs serve,
        and the engine/learner mismatch is measured on the first mini-batch's forward (before
        any optimizer step) as ``rollout/logprob_diff_mean|max``. ``token_weights`` multiply
        each token's policy-gradient loss (an off-policy correction, `rlvr.algo.correction`).
        ``advantages`` are [N] (one per completion) or [N, C] (per token, PPO's GAE); ``beta`` is the
        coefficient of the k3 KL loss term (None: ``algorithm.beta``; PPO passes 0 when its KL is in the reward).
        """
        self.model.train()
        n = len(batch)
        mini = max(1, n // self.trainer.optimizer_steps_per_batch)
        gen = torch.Generator().manual_seed(seed)
        stats = UpdateStats(sums={"loss": 0.0, "grad_norm": 0.0, "kl": 0.0, "clip_frac/low": 0.0,
                                  "clip_frac/high": 0.0, "entropy": 0.0})
        self._diff = [0.0, 0.0, 0.0] if old_logprobs is None else None  # |learner - engine|: sum, max, tokens
        extra = (old_logprobs, token_weights, seed, self.algo.beta if beta is None else beta)
        for _ in range(self.algo.num_iterations):
            order = torch.randperm(n, generator=gen) if self.trainer.optimizer_steps_per_batch > 1 else torch.arange(n)
            for start in range(0, n, mini):
                self._optimizer_step(batch, advantages, loss_mask, ref_logprobs, order[start:start + mini], stats,
                                     extra)
        out = {k: v / max(stats.tokens, 1.0) for k, v in stats.sums.items() if k not in ("loss", "grad_norm")}
        out["loss"] = stats.sums["loss"] / max(stats.steps, 1)
        out["grad_norm"] = stats.sums["grad_norm"] / max(stats.steps, 1)
        out["lr"] = self.backend.lr
        if self.ptx is not None:
            out["ptx/loss"] = stats.ptx_loss / max(stats.steps, 1)
        if self._diff is not None and self._diff[2]:
            out["rollout/logprob_diff_mean"] = self._diff[0] / self._diff[2]
            out["rollout/logprob_diff_max"] = self._diff[1]
        return out

    def _optimizer_step(self, batch, advantages, loss_mask, ref_logprobs, index, stats: UpdateStats, extra) -> None:
        old_logprobs, token_weights, seed, beta = extra
        # DeepSpeed averages gradients over ranks: each rank divides by (global count / world size), so the
        # update equals one process's over the union of the shares (sequence counts are equal per rank)
        num_tokens = all_reduce_sum(float(loss_mask[index].sum())) / self.backend.world_size
        micro, device = self.trainer.micro_batch_size, self.backend.device
        step_loss = 0.0
        for start in range(0, len(index), micro):
            idx = index[start:start + micro]
            part = batch.select(idx).trimmed()
            width = part.completion_ids.shape[1]

            def rows(t: torch.Tensor) -> torch.Tensor:  # a per-token [N, C] tensor for this micro-batch
                return t[idx][:, :width].to(device)

            mask = rows(loss_mask)
            logp, entropy = token_logprobs(self.backend.forward, part, self.temperature, self.dtype, device)
            ref = None if ref_logprobs is None else rows(ref_logprobs)
            old = part.logprobs.to(device) if old_logprobs is None else rows(old_logprobs)
            if self._diff is not None and stats.steps == 0:  # before any optimizer step: still the sampling policy
                real = part.completion_mask.to(device).bool()
                gap = (logp.detach() - old).abs()[real]
                if gap.numel():
                    self._diff = [self._diff[0] + gap.sum().item(), max(self._diff[1], gap.max().item()),
                                  self._diff[2] + gap.numel()]
            adv = advantages[idx] if advantages.dim() == 1 else rows(advantages)
            out = self.loss_fn(logp, old, adv.to(device), self.algo.epsilon_low, self.algo.epsilon_high, beta, ref)
            per_token = out.loss
            if token_weights is not None:  # weight the policy-gradient term, not the KL leash
                kl_term = beta * out.kl
                per_token = (per_token - kl_term) * rows(token_weights) + kl_term
            loss = aggregate(per_token, mask, self.algo.aggregation, num_sequences=len(index),
                             num_tokens=num_tokens, max_len=self.max_new_tokens)
            self.backend.backward(loss)
            step_loss += loss.item()
            for key, value in (("kl", out.kl), ("clip_frac/low", out.clipped_low),
                               ("clip_frac/high", out.clipped_high), ("entropy", entropy)):
                stats.sums[key] += float((value.detach().float() * mask).sum())
            stats.tokens += float(mask.sum())
        if self.ptx is not None:  # its gradients join the policy's before the one optimizer step
            stats.ptx_loss += self.ptx.backward(self.backend, self.dtype, step=seed * 4096 + stats.steps)
        stats.sums["grad_norm"] += self.backend.step()
        stats.sums["loss"] += step_loss
        stats.steps += 1
