"""Where the reference model's log-probs come from (``trainer.reference``, a registry).

    precompute   every pair's reference log-probs computed once before training, by the
                 starting policy itself (it *is* the reference at step 0): no second model
                 in memory while training, one extra forward pass over the data; across
                 ranks each scores a share and every rank keeps them all. The values are
                 part of every checkpoint (`state_dict`), so a resumed run, whose policy
                 has moved, uses the very same ones
    online       the frozen reference policy scores each micro-batch as it comes: a copy
                 of the starting policy (two models in memory; nothing to wait for before
                 the first step), or with LoRA the policy with its adapter disabled

Both answer ``reference(pairs) -> (chosen, rejected)`` sequence log-probs, no gradient. ``model``
is what runs the answers: a module, or a forward callable (a backend's, an adapter-disabled one).
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable, Optional, Sequence

import torch

from rlvr.distributed import map_in_shares
from rlvr.dpo.pairs import pair_key, sequence_logprobs
from rlvr.preference import Pair
from rlvr.registry import Registry

__all__ = ["REFERENCES", "PrecomputedReference", "OnlineReference"]

REFERENCES: Registry[Callable[..., Any]] = Registry("trainer.reference")


class _Scorer:
    def __init__(self, model: Callable[..., Any], tokenizer: Any, micro_batch_size: int,
                 dtype: Optional[torch.dtype], device: torch.device, module: Optional[torch.nn.Module] = None):
        self.model, self.tokenizer, self.micro, self.dtype, self.device = model, tokenizer, micro_batch_size, dtype, device
        self.module = module if module is not None else model if isinstance(model, torch.nn.Module) else None

    @torch.no_grad()
    def score(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        was_training = self.module.training if self.module is not None else False
        if self.module is not None:
            self.module.eval()
        chosen, rejected = [], []
        try:
            for i in range(0, len(pairs), self.micro):
                out = sequence_logprobs(self.model, self.tokenizer, pairs[i:i + self.micro], self.dtype, self.device)
                chosen.append(out.chosen.float().cpu())
                rejected.append(out.rejected.float().cpu())
        finally:
            if self.module is not None:
                self.module.train(was_training)
        return (torch.cat(chosen), torch.cat(rejected)) if chosen else (torch.zeros(0), torch.zeros(0))


def _fingerprint(pairs: Sequence[Pair]) -> str:
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(repr(pair_key(p)).encode())
    return f"{len(pairs)}:{digest.hexdigest()[:16]}"


@REFERENCES.register("precompute")
class PrecomputedReference(_Scorer):
    """`prepare` every set of pairs before training (with the starting policy); lookups afterwards."""

    needs_copy = False  # scored by the starting policy before its first update

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.cache: dict[tuple[str, str, str], tuple[float, float]] = {}

    def prepare(self, pairs: Sequence[Pair]) -> None:
        """Score the pairs not cached yet; across ranks in shares (collective: call it on every rank)."""
        todo = list({pair_key(p): p for p in pairs if pair_key(p) not in self.cache}.values())
        chosen, rejected = map_in_shares(self.score, todo)
        self.cache.update((pair_key(p), (float(c), float(r))) for p, c, r in zip(todo, chosen, rejected))

    def release(self) -> None:
        self.model = self.module = None  # type: ignore[assignment]  # the policy trains on; the cache is all that is needed

    def state_dict(self, pairs: Sequence[Pair]) -> dict[str, Any]:
        """The cached log-probs of ``pairs`` in their order (what a checkpoint keeps)."""
        values = torch.tensor([self.cache[pair_key(p)] for p in pairs], dtype=torch.float64).reshape(-1, 2)
        return {"logprobs": values, "pairs": _fingerprint(pairs)}

    def load_state_dict(self, pairs: Sequence[Pair], state: dict[str, Any]) -> None:
        from rlvr.checkpoint import ResumeError

        if state.get("pairs") != _fingerprint(pairs):
            raise ResumeError(f"the checkpoint's reference log-probs belong to other pairs than this run's "
                              f"{len(pairs)}: resume with the data and data.* settings it was trained with")
        self.cache.update((pair_key(p), (float(c), float(r))) for p, (c, r) in zip(pairs, state["logprobs"].tolist()))

    def __call__(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            values = [self.cache[pair_key(p)] for p in pairs]
        except KeyError:
            raise RuntimeError("a pair without precomputed reference log-probs; prepare() every set first") from None
        return torch.tensor([v[0] for v in values]), torch.tensor([v[1] for v in values])


@REFERENCES.register("online")
class OnlineReference(_Scorer):
    """The frozen reference policy, scoring each micro-batch when it is needed."""

    needs_copy = True

    def prepare(self, pairs: Sequence[Pair]) -> None:  # nothing to do ahead of time
        pass

    def release(self) -> None:
        pass

    def state_dict(self, pairs: Sequence[Pair]) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, pairs: Sequence[Pair], state: dict[str, torch.Tensor]) -> None:
        pass

    def __call__(self, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score(pairs)
