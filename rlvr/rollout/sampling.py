"""Token choice from one step's logits, seeded per row, with the sampled token's log-prob.

Pure functions on tensors. Each row (one completion) owns a 64-bit key; the uniform it
uses at decode step ``t`` is a counter-based hash of ``(key, t)`` (splitmix64), so a
row's draws depend only on its own key: not on batch composition, batch splits or
the torch global RNG. Sampling is by inverse CDF over the (nucleus-truncated)
distribution; nothing of shape [rows, steps, vocabulary] is ever kept.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

__all__ = ["row_keys", "step_uniforms", "choose_tokens"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_keys(seeds: Sequence[int], n: int) -> np.ndarray:
    """Keys of the ``len(seeds) * n`` rows: completion ``j`` of prompt ``i`` from ``(seeds[i], j)``."""
    base = _splitmix64(np.asarray([s & 0xFFFFFFFFFFFFFFFF for s in seeds], dtype=np.uint64))
    j = np.arange(n, dtype=np.uint64)
    return _splitmix64(base[:, None] ^ _splitmix64(j)[None, :]).reshape(-1)


def step_uniforms(keys: np.ndarray, step: int) -> torch.Tensor:
    """One uniform in [0, 1) per row for decode step ``step`` (float64 for the CDF search)."""
    with np.errstate(over="ignore"):
        bits = _splitmix64(keys + np.uint64(step) * _GOLDEN) >> np.uint64(11)
    return torch.from_numpy(bits.astype(np.float64) * (1.0 / 2**53))


def choose_tokens(logits: torch.Tensor, temperature: float, top_p: float, greedy: bool,
                  uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [R], log-probs [R]) for one decode step of ``logits`` [R, V] (float32).

    The log-prob is ``log softmax(logits / T)`` of the chosen token over the whole
    vocabulary (T = 1 when greedy), also under ``top_p < 1`` (see `rlvr.rollout.base`).
    """
    scaled = logits if greedy or temperature == 1.0 else logits / temperature
    lse = torch.logsumexp(scaled, dim=-1)
    if greedy:
        tokens = scaled.argmax(-1)
    else:
        probs = torch.exp(scaled - lse.unsqueeze(-1))
        order = None
        if top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)
            before = probs.cumsum(-1) - probs
            probs = probs.masked_fill(before >= top_p, 0.0)  # the first token always stays
        cdf = probs.double().cumsum(-1)
        target = (uniforms.to(cdf.device) * cdf[:, -1]).unsqueeze(-1)
        index = torch.searchsorted(cdf, target, right=True).clamp(max=cdf.shape[-1] - 1).squeeze(-1)
        tokens = index if order is None else order.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    logp = scaled.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - lse
    return tokens, logp
