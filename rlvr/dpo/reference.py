"""Where the reference model's log-probs come from (``trainer.reference``, a registry).

    precompute   every pair's reference log-probs computed once before training, by the
                 starting policy itself (it *is* the reference at step 0): no second model
                 in memory while training, one extra forward pass over the data
    online       a frozen copy of the starting policy scores each micro-batch as it comes
                 (two models in memory; nothing to wait for before the first step)

Both answer ``reference(pairs) -> (chosen, rejected)`` sequence log-probs, no gradient.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from rlvr.dpo.pairs import pair_key, sequence_logprobs
from rlvr.preference import Pair
from rlvr.registry import Registry

__all__ = ["REFERENCES", "PrecomputedReference", "OnlineReference"]

REFERENCES: Registry[Callable[..., Any]] = Registry("trainer.reference")


class _Scorer:
    def __init__(self, model: torch.nn.Module, tokenizer: Any, micro_batch_size: int,
                 dtype: Optional[torch.dtype], device: torch.device):
        self.model, self.tokenizer, self.micro, self.dtype, self.device = model, tokenizer, micro_batch_size, dtype, device

    @torch.no_grad()
    def score(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        was_training = self.model.training
        self.model.eval()
        chosen, rejected = [], []
        try:
            for i in range(0, len(pairs), self.micro):
                out = sequence_logprobs(self.model, self.tokenizer, pairs[i:i + self.micro], self.dtype, self.device)
                chosen.append(out.chosen.float().cpu())
                rejected.append(out.rejected.float().cpu())
        finally:
            self.model.train(was_training)
        return (torch.cat(chosen), torch.cat(rejected)) if chosen else (torch.zeros(0), torch.zeros(0))


@REFERENCES.register("precompute")
class PrecomputedReference(_Scorer):
    """`prepare` every set of pairs before training (with the starting policy); lookups afterwards."""

    needs_copy = False  # scored by the starting policy before its first update

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cache: dict[tuple[str, str, str], tuple[float, float]] = {}

    def prepare(self, pairs: Sequence[Pair]) -> None:
        todo = [p for p in pairs if pair_key(p) not in self.cache]
        chosen, rejected = self.score(todo)
        self.cache.update((pair_key(p), (float(c), float(r))) for p, c, r in zip(todo, chosen, rejected))

    def release(self) -> None:
        self.model = None  # type: ignore[assignment]  # the policy trains on; the cache is all that is needed

    def __call__(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            values = [self.cache[pair_key(p)] for p in pairs]
        except KeyError:
            raise RuntimeError("a pair without precomputed reference log-probs; prepare() every set first") from None
        return torch.tensor([v[0] for v in values]), torch.tensor([v[1] for v in values])


@REFERENCES.register("online")
class OnlineReference(_Scorer):
    """A frozen copy of the starting policy, scoring each micro-batch when it is needed."""

    needs_copy = True

    def prepare(self, pairs: Sequence[Pair]) -> None:  # nothing to do ahead of time
        pass

    def release(self) -> None:
        pass

    def __call__(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score(pairs)
