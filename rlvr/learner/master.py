"""An fp32 master copy of half-precision trained weights (``model.weights_dtype=bf16``, ``master_dtype=fp32``).

The optimizer steps the fp32 copies; after each step they are copied back (rounded) into the
model's bf16 parameters. Small updates that bf16 would round away accumulate in the copy, as in
every mixed-precision trainer; the model itself never holds fp32 weights.
"""
from __future__ import annotations

import torch

__all__ = ["MasterWeights"]


class MasterWeights:
    """fp32 copies of ``params`` (the trained, half-precision parameters), kept in step with them."""

    def __init__(self, params: list[torch.nn.Parameter]):
        self.params = params
        self.copies = [torch.nn.Parameter(p.detach().float().clone()) for p in params]

    @staticmethod
    def needed(params: list[torch.nn.Parameter], master_dtype: str) -> bool:
        return master_dtype == "fp32" and any(p.dtype != torch.float32 for p in params)

    def grads_in(self) -> None:
        """The model's gradients, in fp32, onto the copies (the model's are freed)."""
        for p, m in zip(self.params, self.copies):
            m.grad = None if p.grad is None else p.grad.float()
            p.grad = None

    def weights_out(self) -> None:
        with torch.no_grad():
            for p, m in zip(self.params, self.copies):
                p.copy_(m)

    def state_dict(self) -> list[torch.Tensor]:
        return [m.detach() for m in self.copies]

    def load_state_dict(self, state: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for m, saved in zip(self.copies, state):
                m.copy_(saved)
        self.weights_out()
