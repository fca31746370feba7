"""The learner backend protocol: who owns the policy module, its optimizer and its state.

Everything the loop does to the policy goes through a backend, so a data-parallel or
sharded backend (DeepSpeed ZeRO) slots in without touching any caller:

    out = backend.forward(input_ids=..., attention_mask=..., position_ids=..., logits_to_keep=...)
    backend.backward(loss)        # once per micro-batch; the loss carries mini-batch-wide normalizers
    grad_norm = backend.step()    # clip, optimizer step, schedule; returns the pre-clip norm
    backend.save(dir) / backend.load(dir)      # resumable optimizer/schedule state (a directory)
    backend.save_pretrained(dir, tokenizer)    # full weights in Hugging Face format (rank 0 writes)
    backend.named_tensors()       # complete, gathered weights, for engines with their own copy
    backend.reference(model)      # a frozen reference policy, placed and wrapped like the policy

``rank`` and ``world_size`` say where this process sits (1 process today: rank 0 of 1);
``is_main`` decides who writes files. ``module`` is the unwrapped Hugging Face model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import torch

from rlvr.registry import Registry

__all__ = ["Backend", "BACKENDS", "register_backend"]


class Backend(Protocol):
    rank: int
    world_size: int

    @property
    def module(self) -> torch.nn.Module: ...

    @property
    def device(self) -> torch.device: ...

    @property
    def is_main(self) -> bool: ...

    @property
    def lr(self) -> float: ...

    def forward(self, **inputs: Any) -> Any: ...

    def backward(self, loss: torch.Tensor) -> None: ...

    def step(self) -> float: ...

    def save(self, directory: Path) -> None: ...

    def load(self, directory: Path) -> None: ...

    def save_pretrained(self, directory: Path, tokenizer: Any) -> None: ...

    def named_tensors(self) -> Iterator[tuple[str, torch.Tensor]]: ...

    def reference(self, model: torch.nn.Module) -> Callable[..., Any]: ...


BACKENDS: Registry[Callable[..., Backend]] = Registry("trainer.backend")
register_backend = BACKENDS.register
BACKENDS.register_lazy("torch", "rlvr.learner.torch_backend:TorchBackend")
BACKENDS.register_lazy("deepspeed", "rlvr.learner.deepspeed_backend:DeepSpeedBackend")
