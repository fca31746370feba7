"""The plain-PyTorch learner backend: one process, AdamW, warm-up + schedule, clipping."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from rlvr.config import OptimConfig

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
    """The module itself is the forward; the optimizer and scheduler live here."""

    rank, world_size = 0, 1

    def __init__(self, model: torch.nn.Module, optim: OptimConfig, total_optimizer_steps: int, **_: Any):
        self._module, self.cfg = model, optim
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=optim.lr, betas=tuple(optim.betas),
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
        params = [p for p in self._module.parameters() if p.grad is not None]
        max_norm = self.cfg.max_grad_norm if self.cfg.max_grad_norm > 0 else float("inf")
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def save(self, directory: Path) -> None:
        Path(directory).mkdir(parents=True, exist_ok=True)
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
                   Path(directory) / _STATE)

    def load(self, directory: Path) -> None:
        state = torch.load(Path(directory) / _STATE, weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def save_pretrained(self, directory: Path, tokenizer: Any) -> None:
        self._module.save_pretrained(directory)
        tokenizer.save_pretrained(directory)

    def named_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        yield from self._module.state_dict().items()

    def reference(self, model: torch.nn.Module) -> torch.nn.Module:
        return model.to(self.device).eval().requires_grad_(False)
