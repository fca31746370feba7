"""Reward mixes: the weighted sum, the gated mix (learned scores never flip a verdict),
reward-model normalization by its saved statistics, and rows without a verifier."""
from __future__ import annotations

import json

import pytest
import torch

from rlvr.config import ConfigError, RewardConfig, RewardSource, TrainConfig
from rlvr.config_checks import validate
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardScorer, SourceScores, reward_metrics
from rlvr.rewards.mix import gated_total, normalize_scores, smallest_gap, weighted_sum

P = Prompt(messages=({"role": "user", "content": "2+3"},), verifier="math", reference="5")
FREE = Prompt(messages=({"role": "user", "content": "say hi"},), verifier="none", reference=None)


def test_weighted_sum_skips_rows_a_source_does_not_score():
    a, b = torch.tensor([1.0, 0.0, 1.0]), torch.tensor([2.0, 4.0, 6.0])
    total = weighted_sum([a, b], [1.0, 0.5], [torch.tensor([True, False, True]), None], 3)
    torch.testing.assert_close(total, torch.tensor([2.0, 2.0, 4.0]))


def test_smallest_gap_and_gated_total_keep_every_check_ordering():
    assert smallest_gap(torch.tensor([1.0, 1.0])) is None
    assert smallest_gap(torch.tensor([0.0, 1.0, 0.25, 1.0])) == pytest.approx(0.25)
    checks = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.5])
    learned = torch.tensor([50.0, -3.0, -50.0, 2.0, 0.0])  # the failed answer has by far the best learned score
    total = gated_total(checks, learned, scale=0.25)
    for i in range(5):
        for j in range(5):
            if checks[i] > checks[j]:
                assert total[i] > total[j]
    assert total[0] > total[1] and total[3] > total[2]  # within a level, the learned score orders
    # one level only: the full scale applies
    torch.testing.assert_close(gated_total(torch.ones(2), torch.tensor([10.0, -10.0]), 0.25),
                               torch.tensor([1.25, 0.75]), atol=1e-4, rtol=0)


def test_normalize_scores_uses_the_saved_statistics_and_clips():
    z = normalize_scores(torch.tensor([0.5, 2.5, 100.0]), mean=0.5, std=2.0, clip=5.0)
    torch.testing.assert_close(z, torch.tensor([0.0, 1.0, 5.0]))
    assert normalize_scores(torch.tensor([100.0]), 0.0, 1.0, clip=0).item() == 100.0


class Learned:
    """A stand-in learned source: score = completion length (a hackable reward)."""

    decides_pass, learned = False, True

    def __init__(self, cfg, label, ctx):
        self.label, self.weight = label, cfg.weight

    def score(self, prompts, completions):
        raw = torch.tensor([float(len(c)) for c in completions])
        return SourceScores(raw / 10, ["scored"] * len(completions), None, raw=raw)

    def close(self):
        pass


@pytest.fixture
def learned_kind():
    from rlvr.rewards import SOURCE_KINDS

    SOURCE_KINDS.register("test_learned")(Learned)
    yield "test_learned"
    del SOURCE_KINDS["test_learned"]


def test_gated_mix_orders_within_a_verdict_and_logs_raw_scores(learned_kind):
    cfg = RewardConfig(sources=[RewardSource("verifier", 1.0), RewardSource("rm", 1.0, kind=learned_kind)],
                       mix="gated", workers=1)
    texts = ["\\boxed{5}", "\\boxed{5} and a very long padded tail", "\\boxed{6}" + " filler" * 40, "\\boxed{6}"]
    with RewardScorer(cfg) as s:
        result = s.score([P] * 4, texts)
    r = result.rewards
    assert min(r[0], r[1]) > max(r[2], r[3])  # every correct answer above every wrong one
    assert r[1] > r[0] and r[2] > r[3]  # the learned score orders within each verdict
    assert result.learned == {"rm"}
    m = reward_metrics(result)
    assert m["reward/rm/raw_mean"] == pytest.approx(sum(len(t) for t in texts) / 4)
    assert m["pass_rate"] == 0.5


def test_rows_without_a_verifier_are_scored_by_the_model_alone(learned_kind):
    cfg = RewardConfig(sources=[RewardSource("verifier", 1.0), RewardSource("rm", 1.0, kind=learned_kind)], workers=1)
    with RewardScorer(cfg) as s:
        result = s.score([P, FREE, FREE], ["\\boxed{5}", "hello", "hi"])
    assert result.reasons["verifier"] == ["correct", "no_verifier", "no_verifier"]
    assert result.rows("verifier").tolist() == [True, False, False]
    torch.testing.assert_close(result.rewards, torch.tensor([1.9, 0.5, 0.2]))
    m = reward_metrics(result)
    assert m["pass_rate"] == 1.0 and m["reward/verifier/mean"] == 1.0  # over the rows it scored
    assert m["verdict/verifier/no_verifier"] == 2.0


def _cfg(**reward) -> TrainConfig:
    cfg = TrainConfig()
    for key, value in reward.items():
        setattr(cfg.reward, key, value)
    return cfg


def test_config_rules_for_learned_rewards(capsys, tmp_path):
    (tmp_path / "config.json").write_text("{}")  # checked up front: a model directory with its statistics
    (tmp_path / "reward_stats.json").write_text("{}")
    rm = RewardSource("rm", 1.0, kind="model", path=str(tmp_path))
    with pytest.raises(ConfigError, match="needs at least one verifier source and one reward-model source"):
        validate(_cfg(mix="gated", sources=[RewardSource("verifier", 1.0)]))
    with pytest.raises(ConfigError, match="needs at least one verifier source and one reward-model"):
        validate(_cfg(mix="gated", sources=[rm]))
    with pytest.raises(ConfigError, match="choose one of sum, gated"):
        validate(_cfg(mix="product"))
    cfg = _cfg(sources=[RewardSource("verifier", 1.0)])
    cfg.data.verifier = "none"
    with pytest.raises(ConfigError, match="no reward model"):
        validate(cfg)
    validate(_cfg(mix="gated", sources=[RewardSource("verifier", 1.0), rm]))
    assert "algorithm.beta=0" in capsys.readouterr().err  # a learned reward without a KL leash warns
    cfg = _cfg(mix="gated", sources=[RewardSource("verifier", 1.0), rm])
    cfg.algorithm.beta = 0.04
    validate(cfg)
    assert "algorithm.beta" not in capsys.readouterr().err


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory):
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, num_labels=1, pad_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("rms")
    LlamaForSequenceClassification(config).save_pretrained(root / "rm")
    LlamaForCausalLM(config).save_pretrained(root / "lm")
    for name in ("rm", "lm"):
        tok.save_pretrained(root / name)
    return root


def _source(path, **options):
    from rlvr.rewards.base import SourceContext
    from rlvr.rewards.model import RewardModelSource

    return RewardModelSource(RewardSource("rm", 1.0, options, kind="model", path=str(path)), "rm",
                             SourceContext(1, 10.0, torch.device("cpu")))


def test_reward_model_directory_without_head_or_statistics_names_the_fix(rm_dir):
    with pytest.raises(ValueError, match="no reward_stats.json.*rlvr-rm.*normalize=auto.*or false"):
        _source(rm_dir / "rm", normalize=True)  # auto (the default) falls back to running statistics
    with pytest.raises(ValueError, match="no reward head.*rlvr-rm"):
        _source(rm_dir / "lm", normalize=False)
    (rm_dir / "rm" / "reward_stats.json").write_text(json.dumps({"mean": "x"}))
    with pytest.raises(ValueError, match="'mean' is missing or not a number"):
        _source(rm_dir / "rm")
    (rm_dir / "rm" / "reward_stats.json").unlink()


def test_reward_model_scores_are_normalized_by_the_saved_statistics(rm_dir):
    (rm_dir / "rm" / "reward_stats.json").unlink(missing_ok=True)
    raw = _source(rm_dir / "rm", normalize=False).score([P] * 2, ["\\boxed{5}", "five"])
    mean, std = float(raw.rewards.mean()), 0.001  # a tiny std: clipping matters
    (rm_dir / "rm" / "reward_stats.json").write_text(json.dumps({"mean": mean, "std": std}))
    out = _source(rm_dir / "rm", clip=3.0).score([P] * 2, ["\\boxed{5}", "five"])
    torch.testing.assert_close(out.raw, raw.rewards)
    expected = ((raw.rewards - mean) / std).clamp(-3.0, 3.0)
    torch.testing.assert_close(out.rewards, expected)
