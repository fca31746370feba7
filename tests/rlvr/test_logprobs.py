"""Selective log-softmax: values, gradients and entropies equal the full log-softmax's, at any chunking."""
from __future__ import annotations

import pytest
import torch

import rlvr.learner.logprobs as lp
from rlvr.learner.logprobs import token_log_probs


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("chunk", [1 << 24, 37, 1])
def test_matches_full_log_softmax(monkeypatch, temperature, chunk):
    monkeypatch.setattr(lp, "_CHUNK_ELEMENTS", chunk)
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 37, dtype=torch.float64, requires_grad=True)
    ids = torch.randint(0, 37, (3, 5))
    weights = torch.randn(3, 5)
    got, entropy = token_log_probs(logits, ids, temperature)
    full = torch.log_softmax(logits / temperature, -1)
    want = full.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(got, want.float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(entropy, -(full.exp() * full).sum(-1).float(), atol=1e-6, rtol=1e-6)  # float32
    (g_got,) = torch.autograd.grad((got * weights).sum(), logits)
    (g_want,) = torch.autograd.grad((want * weights).sum(), logits)
    torch.testing.assert_close(g_got, g_want, atol=1e-6, rtol=0)


def test_works_on_a_non_contiguous_slice_without_copying_it():
    logits = torch.randn(2, 6, 11, requires_grad=True)
    view = logits[:, :-1]  # what the learner passes: logits_to_keep = width + 1, last position dropped
    ids = torch.randint(0, 11, (2, 5))
    got, _ = token_log_probs(view, ids)
    got.sum().backward()
    want = torch.log_softmax(logits[:, :-1].detach(), -1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(got, want)
    assert logits.grad[:, -1].abs().sum() == 0 and logits.grad[:, :-1].abs().sum() > 0
