"""Weighted reward sources through the verifier runtime, with per-source and per-verdict counts."""
from __future__ import annotations

import pytest
import torch

from rlvr.config import RewardConfig, RewardSource
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardScorer, reward_metrics

P = Prompt(messages=({"role": "user", "content": "2+3"},), verifier="math", reference="5")


@pytest.fixture(scope="module")
def scorer():
    cfg = RewardConfig(sources=[RewardSource("verifier", 1.0),
                                RewardSource("format", 0.5, {"pattern": r".*\\boxed\{[^{}]*\}\s*"})],
                       workers=1, timeout=10.0)
    with RewardScorer(cfg) as s:
        yield s


def test_weighted_sum_and_breakdown(scorer):
    texts = ["\\boxed{5}", "\\boxed{6}", "five", ""]
    result = scorer.score([P] * 4, texts)
    torch.testing.assert_close(result.per_source["verifier"], torch.tensor([1.0, 0.0, 0.0, 0.0]))
    torch.testing.assert_close(result.per_source["format"], torch.tensor([1.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(result.rewards, torch.tensor([1.5, 0.5, 0.0, 0.0]))
    assert result.passed.tolist() == [True, False, False, False] and result.gate == "verifier"
    assert result.reasons["verifier"][:2] == ["correct", "wrong_answer"]


def test_metrics_count_every_verdict(scorer):
    result = scorer.score([P] * 3, ["\\boxed{5}", "\\boxed{5}", "\\boxed{7}"])
    m = reward_metrics(result)
    assert m["verdict/verifier/correct"] == 2 and m["verdict/verifier/wrong_answer"] == 1
    assert m["verdict/format/correct"] == 3
    assert m["pass_rate"] == pytest.approx(2 / 3) and m["reward/verifier/mean"] == pytest.approx(2 / 3)
    assert m["reward/mean"] == pytest.approx((1.5 + 1.5 + 0.5) / 3)


def test_rows_route_to_their_own_verifier(scorer):
    exact = Prompt(messages=P.messages, verifier="exact", reference="five")
    result = scorer.score([P, exact], ["\\boxed{5}", "five"])
    assert result.per_source["verifier"].tolist() == [1.0, 1.0]


def test_unknown_verifier_names_are_errors_listing_the_known_ones():
    with pytest.raises(KeyError, match="math"):
        RewardScorer(RewardConfig(sources=[RewardSource("no-such-verifier")], workers=1))
    with RewardScorer(RewardConfig(sources=[RewardSource("verifier")], workers=1)) as s:
        bad = Prompt(messages=P.messages, verifier="no-such-verifier", reference="5")
        with pytest.raises(KeyError, match="math"):
            s.score([bad], ["\\boxed{5}"])
