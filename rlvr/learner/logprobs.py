"""Per-token log-probs and entropies from a causal LM without [tokens, vocabulary] copies.

`token_log_probs` is a selective log-softmax: ``z[id] / T - logsumexp(z / T)``,
computed over chunks of tokens, with a hand-written backward that recomputes the
softmax chunk by chunk. The only full-size tensors are the model's own logits and,
during backward, their gradient; no scaled, upcast or log-softmaxed copy of the
logits is ever kept for autograd. The entropy of each token's distribution comes out
of the same pass (no gradient).

When the caller gives the logits up (``consume=True``: `token_logprobs`, which makes them and
never shows them to anyone) and the op that made them never reads its own output in its
backward (the output head's matmul, a view of it, a dtype cast), the backward writes the
gradient over the logits, chunk by chunk, instead of into a second [tokens, vocabulary]
tensor: the backward's peak is one such tensor, not two. `token_logprobs` feeds the model
every token but the last (whose prediction is never scored) and keeps exactly the
completion's logits, so they are the head's own output, not a slice of a larger one
(whose backward would allocate the full-size gradient again).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from rlvr.rollout.base import RolloutBatch

__all__ = ["token_log_probs", "token_logprobs"]

_CHUNK_ELEMENTS = 1 << 24  # ~64 MB of float32 per chunk
# ops whose backward never reads their output: logits they made may hold their own gradient
_OUTPUT_FREE_BACKWARD = frozenset({"UnsafeViewBackward0", "ViewBackward0", "MmBackward0", "AddmmBackward0",
                                   "BmmBackward0", "ToCopyBackward0"})


def _reusable(logits: torch.Tensor) -> bool:
    """The logits' storage may be overwritten by their gradient: not a view of another tensor, not a leaf,
    and made by an op that does not keep them for its own backward (a tanh soft-cap does: not reused)."""
    fn = logits.grad_fn
    return logits._base is None and fn is not None and type(fn).__name__ in _OUTPUT_FREE_BACKWARD


def _chunks(rows: int, width: int, vocab: int):
    """(row slice, token slice) blocks of a [rows, width, vocab] tensor, about 16M logits each (views, no copies):
    whole rows together when a row is small, else pieces of one row."""
    per_row = width * vocab
    if per_row <= _CHUNK_ELEMENTS:
        step = max(1, _CHUNK_ELEMENTS // max(1, per_row))
        for i in range(0, rows, step):
            yield slice(i, min(i + step, rows)), slice(0, width)
        return
    step = max(1, _CHUNK_ELEMENTS // max(1, vocab))
    for i in range(rows):
        for s in range(0, width, step):
            yield slice(i, i + 1), slice(s, min(s + step, width))


class _SelectiveLogSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, ids: torch.Tensor, temperature: float,  # type: ignore[override]
                consume: bool):
        rows, width, vocab = logits.shape
        logp, lse, entropy = (torch.empty(rows, width, dtype=torch.float32, device=logits.device) for _ in range(3))
        for r, t in _chunks(rows, width, vocab):
            z = logits[r, t].float()
            if temperature != 1.0:
                z = z / temperature
            chunk_lse = torch.logsumexp(z, dim=-1)
            lse[r, t] = chunk_lse
            logp[r, t] = z.gather(-1, ids[r, t].unsqueeze(-1)).squeeze(-1) - chunk_lse
            entropy[r, t] = chunk_lse - (torch.exp(z - chunk_lse.unsqueeze(-1)) * z).sum(-1)
        ctx.save_for_backward(logits, ids, lse)
        ctx.temperature = temperature
        ctx.reuse = consume and _reusable(logits)
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp: torch.Tensor, _grad_entropy: Optional[torch.Tensor]):  # type: ignore[override]
        logits, ids, lse = ctx.saved_tensors
        t = ctx.temperature
        grad = logits if ctx.reuse else torch.empty_like(logits)  # each chunk is read before it is overwritten
        g = grad_logp.float()
        for r, c in _chunks(*logits.shape):
            gs = g[r, c].unsqueeze(-1)
            z = logits[r, c].float()
            d = torch.exp((z / t if t != 1.0 else z) - lse[r, c].unsqueeze(-1)).mul_(-gs)
            d.scatter_add_(-1, ids[r, c].unsqueeze(-1), gs)
            grad[r, c] = (d.div_(t) if t != 1.0 else d).to(grad.dtype)
        return grad, None, None, None


def token_log_probs(logits: torch.Tensor, ids: torch.Tensor, temperature: float = 1.0, consume: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs, entropies), both [N, T] float32, of ``ids`` under ``softmax(logits / temperature)``.

    ``consume=True``: the caller never reads ``logits`` after the backward, which may then hold their
    gradient (see the module docstring)."""
    return _SelectiveLogSoftmax.apply(logits, ids, float(temperature), consume)  # [N, T, V] logits


def token_logprobs(forward: Callable[..., Any], batch: RolloutBatch, temperature: float,
                   dtype: Optional[torch.dtype] = None, device: Optional[torch.device] = None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-probs, entropies) [N, C] of a rollout batch's completion tokens at the sampling temperature.

    ``forward`` is the policy (a module or a backend's forward); it sees every token but the last
    (whose next-token prediction is never scored), and only the completion positions' logits are
    computed (``logits_to_keep``), which are consumed (`token_log_probs`).
    """
    if device is None:
        device = next(forward.parameters()).device if isinstance(forward, torch.nn.Module) else torch.device("cpu")
    batch = batch.to(device)
    ids = torch.cat([batch.prompt_ids, batch.completion_ids], dim=1)[:, :-1]
    mask = batch.attention_mask[:, :-1]  # inserted (tool) tokens are context too
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    width = batch.completion_ids.shape[1]
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        logits = forward(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=width).logits
    if logits.shape[1] != width:  # a forward that returns more positions than asked for
        logits = logits[:, -width:]
    return token_log_probs(logits, batch.completion_ids, temperature, consume=True)
