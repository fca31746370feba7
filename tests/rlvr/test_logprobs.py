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


def _head(consume: bool, cap: float = 0.0):
    """Gradients of a linear output head through token_log_probs (a tanh soft-cap keeps its output)."""
    torch.manual_seed(0)
    hidden, head = torch.randn(2, 5, 8), torch.nn.Linear(8, 13, bias=False)
    ids, weights = torch.randint(0, 13, (2, 5)), torch.randn(2, 5)
    logits = head(hidden)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    seen = []
    logits.register_hook(lambda g: seen.append(g.data_ptr() == logits.data_ptr()))
    logp, _ = token_log_probs(logits, ids, 0.7, consume=consume)
    (logp * weights).sum().backward()
    return head.weight.grad, seen[0]


def test_consumed_logits_hold_their_own_gradient_with_the_same_result():
    kept, reused_kept = _head(consume=False)
    consumed, reused = _head(consume=True)
    torch.testing.assert_close(consumed, kept)
    assert reused and not reused_kept  # the [tokens, vocabulary] gradient is written over the logits


def test_logits_an_op_keeps_for_its_backward_are_never_overwritten():
    kept, _ = _head(consume=False, cap=3.0)
    consumed, reused = _head(consume=True, cap=3.0)  # tanh's backward reads its output: a second tensor
    torch.testing.assert_close(consumed, kept)
    assert not reused


def test_token_logprobs_reads_the_completion_without_its_last_token():
    from rlvr.learner.logprobs import token_logprobs
    from rlvr.rollout.base import RolloutBatch

    torch.manual_seed(0)
    head = torch.nn.Embedding(11, 11)
    calls = []

    def forward(input_ids, attention_mask, position_ids, logits_to_keep):  # a bigram "model"
        calls.append(input_ids.shape[1])
        return type("Out", (), {"logits": head(input_ids)[:, -logits_to_keep:]})()

    prompt, completion = torch.randint(0, 11, (2, 3)), torch.randint(0, 11, (2, 4))
    batch = RolloutBatch(prompt, torch.ones(2, 3, dtype=torch.long), completion, torch.ones(2, 4), torch.zeros(2, 4),
                         torch.zeros(2, dtype=torch.bool), ["", ""])
    got, _ = token_logprobs(forward, batch, 1.0)
    previous = torch.cat([prompt[:, -1:], completion[:, :-1]], dim=1)
    want = torch.log_softmax(head(previous), -1).gather(-1, completion.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(got, want)
    assert calls == [6]  # 3 prompt + 4 completion tokens, less the last
