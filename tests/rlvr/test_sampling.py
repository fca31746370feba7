"""Token choice: the drawn distribution, top-p's nucleus, the reported log-prob, per-row seeding."""
from __future__ import annotations

import torch

from rlvr.rollout.sampling import choose_tokens, row_keys, step_uniforms

LOGITS = torch.tensor([0.0, 1.0, 2.0, -1.0, 0.5])
ROWS = 20_000


def _draw(temperature: float, top_p: float):
    keys = row_keys(list(range(ROWS)), 1)
    return choose_tokens(LOGITS.repeat(ROWS, 1), temperature, top_p, False, step_uniforms(keys, 0))


def test_frequencies_follow_the_tempered_distribution():
    tokens, _ = _draw(0.7, 1.0)
    freq = torch.bincount(tokens, minlength=5).float() / ROWS
    torch.testing.assert_close(freq, torch.softmax(LOGITS / 0.7, -1), atol=0.015, rtol=0)


def test_top_p_draws_from_the_nucleus_but_reports_the_full_log_prob():
    tokens, logp = _draw(1.0, 0.8)
    probs = torch.softmax(LOGITS, -1)  # sorted: 2 (.563), 1 (.207), 4 (.126) reach 0.8; 0 and 3 never drawn
    freq = torch.bincount(tokens, minlength=5).float() / ROWS
    assert freq[0] == 0 and freq[3] == 0
    nucleus = probs[[1, 2, 4]] / probs[[1, 2, 4]].sum()
    torch.testing.assert_close(freq[[1, 2, 4]], nucleus, atol=0.015, rtol=0)
    torch.testing.assert_close(logp, torch.log(probs)[tokens], atol=1e-6, rtol=0)


def test_greedy_is_argmax_at_temperature_one():
    tokens, logp = choose_tokens(LOGITS.repeat(2, 1), 0.3, 0.5, True, torch.zeros(2))
    assert tokens.tolist() == [2, 2]
    torch.testing.assert_close(logp, torch.log_softmax(LOGITS, -1)[[2, 2]])


def test_a_rows_draws_depend_only_on_its_own_seed():
    a = row_keys([5, 6, 7], 2)
    b = row_keys([7], 2)
    assert (a[4:] == b).all()  # prompt seeded 7: the same keys whatever precedes it
    assert len(set(a.tolist())) == 6  # completions of one prompt differ from each other
    u0, u1 = step_uniforms(a, 0), step_uniforms(a, 1)
    assert not torch.equal(u0, u1) and ((u0 >= 0) & (u0 < 1)).all()
