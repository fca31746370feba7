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
    texts = ["\\boxed{5}", "\\boxed{6}", "seven", ""]
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


class LengthModel:
    """A test double of a learned reward: longer completions score higher; never decides `passed`."""

    decides_pass = False

    def __init__(self, cfg, label, ctx):
        self.label, self.weight = label, cfg.weight

    def score(self, prompts, completions):
        from rlvr.rewards import SourceScores

        return SourceScores(torch.tensor([float(len(c)) for c in completions]), ["scored"] * len(completions))

    def close(self):
        pass


@pytest.fixture
def length_kind():
    from rlvr.rewards import SOURCE_KINDS

    SOURCE_KINDS.register("test_length")(LengthModel)
    yield "test_length"
    del SOURCE_KINDS["test_length"]


def test_a_run_rewarded_only_by_a_model_has_no_pass_rate(length_kind):
    from rlvr.config import EvalConfig
    from rlvr.eval.heldout import evaluate
    from rlvr.rollout.base import RolloutBatch

    cfg = RewardConfig(sources=[RewardSource("rm", 1.0, kind=length_kind)], workers=1)
    with RewardScorer(cfg) as s:
        result = s.score([P] * 2, ["ab", "abcd"])
        assert result.passed is None and result.gate is None and not s.decides_pass
        m = reward_metrics(result)
        assert "pass_rate" not in m and m["reward/rm/mean"] == 3.0 and m["verdict/rm/scored"] == 2

        class Engine:
            def generate(self, prompts, params, seeds=None):
                n = len(prompts) * params.n
                ids = torch.ones((n, 1), dtype=torch.long)
                return RolloutBatch(ids, ids, ids, ids.float(), ids.float(), torch.zeros(n, dtype=torch.bool),
                                    ["xyz"] * n)

        out = evaluate(Engine(), s, [P, P], [[1], [1]], EvalConfig(), 1.0, 4, seed=0)
        # no pass@1 / pass@k invented
        assert out == {"eval/reward/mean": 3.0, "eval/reward/rm/mean": 3.0, "eval/reward/excluded_frac": 0.0}


def test_verifier_gates_while_a_model_adds_reward(length_kind):
    cfg = RewardConfig(sources=[RewardSource("rm", 0.1, kind=length_kind), RewardSource("verifier", 1.0)], workers=1)
    with RewardScorer(cfg) as s:
        result = s.score([P] * 2, ["\\boxed{5}", "\\boxed{6}"])
    assert result.gate == "verifier" and result.passed.tolist() == [True, False]
    torch.testing.assert_close(result.rewards, torch.tensor([1.9, 0.9]))


@pytest.fixture(scope="module")
def reward_model_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.eos_token_id,
                         eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("rm") / "model"
    LlamaForSequenceClassification(config).save_pretrained(out)
    tok.pad_token = tok.eos_token  # pad == eos: the case that breaks pad-based score positions
    tok.save_pretrained(out)
    (out / "reward_stats.json").write_text('{"mean": 0.5, "std": 2.0, "min": -3.0, "max": 4.0, "count": 10}')
    return out


def test_reward_model_score_ignores_padding_and_pad_equal_eos(reward_model_dir):
    from rlvr.rewards.model import RewardModelSource
    from rlvr.rewards.base import SourceContext

    src = RewardModelSource(RewardSource("rm", 1.0, {"batch_size": 8}, kind="model", path=str(reward_model_dir)),
                            "rm", SourceContext(1, 10.0, torch.device("cpu")))
    texts = ["\\boxed{5}", "a much longer answer that pads the others\\boxed{5}", "5"]
    together = src.score([P] * 3, texts).rewards
    alone = torch.cat([src.score([P], [t]).rewards for t in texts])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)
    assert len(set(together.tolist())) == 3


def test_reward_model_directory_errors_name_the_fix(tmp_path):
    from rlvr.rewards.base import SourceContext
    from rlvr.rewards.model import RewardModelSource

    ctx = SourceContext(1, 10.0, torch.device("cpu"))
    with pytest.raises(ValueError, match="needs path: a reward-model directory"):
        RewardModelSource(RewardSource("rm", kind="model", path=str(tmp_path / "none")), "rm", ctx)
