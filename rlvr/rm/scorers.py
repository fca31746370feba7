"""How the trainer gets rewards for a set of pairs: the whole model, or the head on cached features.

Both are called as ``scorer(name, indices) -> (r_chosen [n], r_rejected [n])`` over the
encoded set ``name``; gradients flow when the caller has them enabled. An answer that
occurs in several of the pairs (K ranked answers make K(K-1)/2 pairs) is run through the
model once: `unique_sequences` maps the pairs' sequences onto the distinct ones.

    SequenceScorer  chosen and rejected answers of the pairs in one padded batch through the
                    backend's forward of the whole model (the backbone, or its adapters, train)
    FeatureScorer   the frozen backbone's last-real-token hidden states, computed once per
                    answer in length-sorted batches (`prepare`); afterwards each step is the
                    head alone, so epochs cost next to nothing
"""
from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence

import torch

from rlvr.rm.encode import EncodedPairs, collate
from rlvr.rm.model import head_scores, pooled_features, sequence_scores

__all__ = ["SequenceScorer", "FeatureScorer", "unique_sequences"]


def unique_sequences(sequences: Sequence[Sequence[int]]) -> tuple[list[list[int]], torch.Tensor]:
    """(the distinct sequences, [len(sequences)] index of each input among them)."""
    index: dict[tuple[int, ...], int] = {}
    where = [index.setdefault(tuple(seq), len(index)) for seq in sequences]
    return [list(seq) for seq in index], torch.tensor(where, dtype=torch.long)


class SequenceScorer:
    def __init__(self, model, sets: dict[str, EncodedPairs], pad_id: int, device: torch.device,
                 dtype: Optional[torch.dtype], forward: Optional[Callable[..., Any]] = None):
        self.model, self.sets, self.pad_id, self.device, self.dtype = model, sets, pad_id, device, dtype
        self.forward = forward  # the learner backend's (None: the model itself)

    def prepare(self, batch_size: int) -> None:
        pass

    def __call__(self, name: str, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.sets[name]
        distinct, where = unique_sequences([enc.chosen[i] for i in indices] + [enc.rejected[i] for i in indices])
        batch = {k: v.to(self.device) for k, v in collate(distinct, self.pad_id).items()}
        rewards = sequence_scores(self.model, batch, self.dtype, self.forward)[where.to(self.device)]
        return rewards[:len(indices)], rewards[len(indices):]


class FeatureScorer:
    def __init__(self, model, sets: dict[str, EncodedPairs], pad_id: int, device: torch.device,
                 dtype: Optional[torch.dtype], forward: Optional[Callable[..., Any]] = None):
        self.model, self.sets, self.pad_id, self.device, self.dtype = model, sets, pad_id, device, dtype
        self.features: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.distinct = 0  # answers run through the backbone

    @torch.no_grad()
    def _features(self, sequences: list[list[int]], batch_size: int) -> torch.Tensor:
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        out: Optional[torch.Tensor] = None
        began, said = time.perf_counter(), 0
        for start in range(0, len(order), batch_size):
            if len(order) >= 1000 and start >= said + len(order) // 4:  # long extractions say how far they are
                said = start
                print(f"features: {start}/{len(order)} answers ({time.perf_counter() - began:.0f}s)", flush=True)
            chunk = order[start:start + batch_size]
            batch = {k: v.to(self.device) for k, v in collate([sequences[i] for i in chunk], self.pad_id).items()}
            feats = pooled_features(self.model, batch, self.dtype)
            if out is None:
                out = torch.empty((len(sequences), feats.shape[1]), dtype=torch.float32, device=self.device)
            out[torch.tensor(chunk, device=self.device)] = feats
        assert out is not None
        return out

    def prepare(self, batch_size: int) -> None:
        """Every distinct answer of every set through the frozen backbone, once."""
        for name, enc in self.sets.items():
            if name not in self.features:
                distinct, where = unique_sequences(enc.chosen + enc.rejected)
                feats = self._features(distinct, 2 * batch_size)[where.to(self.device)]
                self.features[name] = (feats[:len(enc)], feats[len(enc):])
                self.distinct += len(distinct)

    def __call__(self, name: str, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        chosen, rejected = self.features[name]
        idx = torch.as_tensor(list(indices), dtype=torch.long, device=self.device)
        return head_scores(self.model, chosen[idx]), head_scores(self.model, rejected[idx])
