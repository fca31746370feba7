"""The plain-PyTorch learner backend: one process, AdamW, warm-up + schedule, clipping."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from rlvr.config import OptimConfig
from rlvr.learner.master import MasterWeights
from rlvr.models.lora import plain_tensors

__all__ = ["TorchBackend", "lr_lambda"]

_STATE = "optimizer.pt"


def lr_lambda(warmup: int, total: int, schedule: str, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Multiplier of the peak learning rate at optimizer step `step` (0-based)."""
    def fn(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return min_ratio + (1.0 - min_ratio) * (1.0 - progress)
        if schedule == "cosine":
            return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0
    return fn


class TorchBackend:
    """The module itself is the forward; the optimizer and scheduler live here. With half-precision
    trained weights and ``master_dtype=fp32`` the optimizer steps an fp32 copy (`MasterWeights`)."""

    rank, world_size = 0, 1

    def __init__(self, model: torch.nn.Module, optim: OptimConfig, total_optimizer_steps: int,
                 master_dtype: str = "fp32", **_: Any):
        self._module, self.cfg = model, optim
        params = [p for p in model.parameters() if p.requires_grad]
        self.master = MasterWeights(params) if MasterWeights.needed(params, master_dtype) else None
        self.optimizer = torch.optim.AdamW(self.master.copies if self.master else params, lr=optim.lr, betas=tuple(optim.betas),
                                           weight_decay=optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(optim.warmup_steps, total_optimizer_steps, optim.schedule, optim.min_lr_ratio))

    @property
    def module(self) -> torch.nn.Module:
        return self._module

    @property
    def device(self) -> torch.device:
        return next(self._module.parameters()).device

    @property
    def is_main(self) -> bool:
        return True

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def forward(self, **inputs: Any) -> Any:
        return self._module(**inputs)

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def step(self) -> float:
        """Clip, step, advance the schedule; returns the pre-clip gradient norm."""
        if self.master is not None:
            self.master.grads_in()
            params = [m for m in self.master.copies if m.grad is not None]
        else:
            params = [p for p in self._module.parameters() if p.grad is not None]
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.master is not None:
            self.master.weights_out()
        return float(norm)

    def save(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        if self.master is not None:
            state["master"] = self.master.state_dict()
        torch.save(state, Path(directory) / _STATE)

    def load(self, directory: Path) -> None:
        state = torch.load(Path(directory) / _STATE, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.master is not None and "master" in state:
            self.master.load_state_dict(state["master"])

    def save_pretrained(self, directory: Path, tokenizer: Any) -> None:
        self._module.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    def named_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from plain_tensors(self._module)

    def reference(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device).eval().requires_grad_(False)
