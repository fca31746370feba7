"""The policy update: per-token log-probs, the registered loss, and an optimizer backend.

`Learner.update` runs ``num_iterations`` passes over a rollout batch, each split into
``optimizer_steps_per_batch`` mini-batches of ``micro_batch_size`` micro-batches
(gradient accumulation). Loss normalizers are mini-batch-wide, so accumulation is
exact. The optimizer lives behind a backend (`BACKENDS`, ``trainer.backend``): the
plain-torch one here (AdamW, warm-up + schedule, clipping); a DeepSpeed engine
implements the same four methods (backward, step, state_dict, load_state_dict).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch

from rlvr.algo import aggregate, get_loss
from rlvr.config import AlgorithmConfig, OptimConfig, TrainerConfig
from rlvr.registry import Registry
from rlvr.rollout.base import RolloutBatch

__all__ = ["Learner", "TorchBackend", "BACKENDS", "token_logprobs", "lr_lambda", "autocast_dtype"]


def autocast_dtype(dtype: str) -> Optional[torch.dtype]:
    return {"fp32": None, "bf16": torch.bfloat16}[dtype]


def lr_lambda(warmup: int, total: int, schedule: str) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return 1.0 - progress
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0
    return fn


class TorchBackend:
    """Plain PyTorch AdamW with a LambdaLR schedule and gradient-norm clipping."""

    def __init__(self, model: torch.nn.Module, cfg: OptimConfig, total_optimizer_steps: int):
        self.model, self.cfg = model, cfg
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.warmup_steps, total_optimizer_steps, cfg.schedule))

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> float:
        """Clip, step, advance the schedule; returns the pre-clip gradient norm."""
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


BACKENDS: Registry[Callable[..., TorchBackend]] = Registry("trainer.backend", {"torch": TorchBackend})


def token_logprobs(model: torch.nn.Module, batch: RolloutBatch, temperature: float,
                   dtype: Optional[torch.dtype] = None, with_entropy: bool = False):
    """Per-completion-token log-probs [N, C] (and entropies) at the sampling temperature, on the model's device."""
    device = next(model.parameters()).device
    batch = batch.to(device)
    ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)
    mask = torch.cat([batch.prompt_mask, batch.completion_mask.long()], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    width = batch.completion_ids.shape[1]
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=width + 1).logits
    logp_all = torch.log_softmax(logits[:, :-1].float() / temperature, dim=-1)
    logp = logp_all.gather(-1, batch.completion_ids.unsqueeze(-1)).squeeze(-1)
    if not with_entropy:
        return logp, None
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, entropy


@dataclass
class UpdateStats:
    sums: dict[str, float]
    tokens: float = 0.0
    steps: int = 0


class Learner:
    """Turns (rollouts, advantages) into optimizer steps on the policy."""

    def __init__(self, model: torch.nn.Module, algo: AlgorithmConfig, trainer: TrainerConfig, max_new_tokens: int,
                 temperature: float, dtype: str, on_step: Callable[[torch.nn.Module], None] = lambda m: None):
        self.model, self.algo, self.trainer = model, algo, trainer
        self.max_new_tokens, self.temperature, self.dtype = max_new_tokens, temperature, autocast_dtype(dtype)
        self.loss_fn = get_loss(algo.loss)
        self.device = next(model.parameters()).device
        total = trainer.total_steps * trainer.optimizer_steps_per_batch * algo.num_iterations
        self.backend = BACKENDS.lookup(trainer.backend)(model, trainer.optim, total)
        self.on_step = on_step

    def update(self, batch: RolloutBatch, advantages: torch.Tensor, loss_mask: torch.Tensor,
               ref_logprobs: Optional[torch.Tensor], seed: int) -> dict[str, float]:
        """All optimizer steps for one rollout batch; returns averaged statistics."""
        self.model.train()
        n = len(batch)
        mini = max(1, n // self.trainer.optimizer_steps_per_batch)
        gen = torch.Generator().manual_seed(seed)
        stats = UpdateStats(sums={"loss": 0.0, "grad_norm": 0.0, "kl": 0.0, "clip_frac/low": 0.0,
                                  "clip_frac/high": 0.0, "entropy": 0.0})
        for _ in range(self.algo.num_iterations):
            order = torch.randperm(n, generator=gen) if self.trainer.optimizer_steps_per_batch > 1 else torch.arange(n)
            for start in range(0, n, mini):
                self._optimizer_step(batch, advantages, loss_mask, ref_logprobs, order[start:start + mini], stats)
        out = {k: v / max(stats.tokens, 1.0) for k, v in stats.sums.items() if k not in ("loss", "grad_norm")}
        out["loss"] = stats.sums["loss"] / max(stats.steps, 1)
        out["grad_norm"] = stats.sums["grad_norm"] / max(stats.steps, 1)
        out["lr"] = self.backend.lr
        return out

    def _optimizer_step(self, batch, advantages, loss_mask, ref_logprobs, index, stats: UpdateStats) -> None:
        num_tokens = float(loss_mask[index].sum())
        micro = self.trainer.micro_batch_size
        step_loss = 0.0
        for start in range(0, len(index), micro):
            idx = index[start:start + micro]
            part, mask = batch.select(idx), loss_mask[idx].to(self.device)
            logp, entropy = token_logprobs(self.model, part, self.temperature, self.dtype, with_entropy=True)
            ref = None if ref_logprobs is None else ref_logprobs[idx].to(self.device)
            out = self.loss_fn(logp, part.logprobs.to(self.device), advantages[idx].to(self.device),
                               self.algo.epsilon_low, self.algo.epsilon_high, self.algo.beta, ref)
            loss = aggregate(out.loss, mask, self.algo.aggregation, num_sequences=len(index),
                             num_tokens=num_tokens, max_len=self.max_new_tokens)
            self.backend.backward(loss)
            step_loss += loss.item()
            for key, value in (("kl", out.kl), ("clip_frac/low", out.clipped_low),
                               ("clip_frac/high", out.clipped_high), ("entropy", entropy)):
                stats.sums[key] += float((value.float() * mask).sum())
            stats.tokens += float(mask.sum())
        stats.sums["grad_norm"] += self.backend.step()
        stats.sums["loss"] += step_loss
        stats.steps += 1
        self.on_step(self.model)

    def state_dict(self) -> dict[str, Any]:
        return self.backend.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.backend.load_state_dict(state)
