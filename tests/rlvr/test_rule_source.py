"""Rule sources: each shipped rule on hand-made answers, option checking, failures as counted reasons."""
from __future__ import annotations

import math

import pytest
import torch

from rlvr.config import ConfigError, RewardConfig, RewardSource, TrainConfig
from rlvr.config_checks import validate
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardScorer, reward_metrics
from rlvr.rewards.base import SourceContext
from rlvr.rewards.rule import RULES, RuleSource, check_rule_options, register_rule

SPEC = {"answer": "blue", "wrong": ["green", "red"], "max_chars": 20}  # a preference-task spec (verifiers.preference)
P = Prompt(({"role": "user", "content": "What color is the sky?"},), "preference_rule", SPEC)


def rule(name, completion, prompt=P, **options):
    return RULES.lookup(name)(prompt, completion, **options)


@pytest.mark.parametrize("text, options, expected", [
    ("short", {"max_chars": 5}, (1.0, "met")),
    ("  short \n", {"max_chars": 5}, (1.0, "met")),  # surrounding whitespace does not count
    ("longer", {"max_chars": 5}, (0.0, "too_long")),
    ("x" * 15, {"max_chars": 10, "falloff_chars": 10}, (0.5, "too_long")),  # 5 over a 10-character fall-off
    ("x" * 30, {"max_chars": 10, "falloff_chars": 10}, (0.0, "too_long")),
])
def test_length_budget(text, options, expected):
    assert rule("length_budget", text, **options) == expected


def test_banned_phrase_greeting_and_regex():
    assert rule("banned_phrase", "Well, AS AN AI I think", phrases=["as an ai"]) == (0.0, "banned_phrase")
    assert rule("banned_phrase", "AS AN AI", phrases=["as an ai"], case_sensitive=True) == (1.0, "met")
    assert rule("greeting", "Hello, it is 7.") == (1.0, "met")
    assert rule("greeting", "It is 7. Hi!") == (0.0, "impolite")
    assert rule("greeting", "Yo! 7", words=["yo"]) == (1.0, "met")
    assert rule("regex", "so \\boxed{7}", pattern=r"\\boxed\{[^{}]*\}\s*$") == (1.0, "met")
    assert rule("regex", "\\boxed{7} and more", pattern=r"\\boxed\{[^{}]*\}\s*$") == (0.0, "no_match")
    assert rule("regex", "7", pattern=r"\d+", mode="fullmatch") == (1.0, "met")


@pytest.mark.parametrize("text", ["Hi! It is blue.", "Hi! It is green.", "Hello! As an AI, it is blue.",
                                  "It is blue.", "Sure! It is blue. Have a nice day!", "blue green"])
def test_preference_rules_are_the_tasks_dimensions(text):
    from verifiers.preference import DIMENSIONS, failed_dimensions, parse_spec

    scores = {d: rule(f"preference.{d}", text)[0] for d in DIMENSIONS}
    assert {d for d, s in scores.items() if s == 0.0} == set(failed_dimensions(text, parse_spec(SPEC)))
    assert all(rule(f"preference.{d}", text)[1] in ("met", DIMENSIONS[d][1]) for d in DIMENSIONS)
    assert rule("preference.correct", text, prompt=Prompt(P.messages, "x", None)) == (0.0, "bad_reference")


def _source(check, **options):
    return RuleSource(RewardSource("r", 1.0, options, kind="rule", check=check), "r",
                      SourceContext(1, 5.0, torch.device("cpu")))


def test_a_failing_rule_is_a_counted_reason_not_a_crash():
    @register_rule("test.explodes")
    def explodes(prompt, completion):
        raise RuntimeError("boom")

    @register_rule("test.score_is")
    def score_is(prompt, completion, *, value: float):
        return value, "met"

    assert _source("test.explodes").score([P], ["x"]).reasons == ["rule_error"]
    for value in (1.5, -0.1, math.nan, "high"):
        out = _source("test.score_is", value=value).score([P], ["x"])
        assert out.reasons == ["bad_score"] and out.rewards.tolist() == [0.0]
    out = _source("test.score_is", value=0.25).score([P, P], ["x", "y"])
    assert out.rewards.tolist() == [0.25, 0.25] and out.passed is None and out.applies is None


def test_options_are_checked_against_the_rules_signature():
    check_rule_options("here", "length_budget", {"max_chars": 3})
    with pytest.raises(ConfigError, match="here: rule 'length_budget' has no option.*max_len.*valid: falloff_chars"):
        check_rule_options("here", "length_budget", {"max_chars": 3, "max_len": 2})
    with pytest.raises(ConfigError, match="needs option.*max_chars"):
        check_rule_options("here", "length_budget", {})
    with pytest.raises(ConfigError, match="unknown rule 'lenght_budget'; registered: .*length_budget"):
        check_rule_options("here", "lenght_budget", {})
    with pytest.raises(ConfigError, match="rule 'regex': .*unterminated character set"):
        check_rule_options("here", "regex", {"pattern": "[a-"})
    with pytest.raises(ConfigError, match="mode='all'; choose search or fullmatch"):
        check_rule_options("here", "regex", {"pattern": "a", "mode": "all"})


def test_validate_checks_rule_sources_before_anything_is_built():
    cfg = TrainConfig()
    cfg.reward.sources = [RewardSource("verifier"), RewardSource("length_budget", 0.1, {"max_chars": 30}, kind="rule")]
    validate(cfg)  # check null: the name is the rule
    cfg.reward.sources[1] = RewardSource("len", 0.1, {"max_chars": 30}, kind="rule", check="nope")
    with pytest.raises(ConfigError, match=r"reward.sources\[1\] \(len\): unknown rule 'nope'"):
        validate(cfg)


def test_rule_sources_in_the_scorer_have_their_own_metrics():
    cfg = RewardConfig(sources=[RewardSource("polite", 1.0, kind="rule", check="preference.polite"),
                                RewardSource("short", 0.5, {"max_chars": 15}, kind="rule", check="length_budget")])
    with RewardScorer(cfg) as scorer:
        result = scorer.score([P, P], ["Hi! It is blue.", "It is blue. Have a nice day!"])
    assert result.rewards.tolist() == [1.5, 0.0] and result.gate is None and not result.learned
    m = reward_metrics(result)
    assert m["reward/polite/mean"] == 0.5 and m["verdict/short/too_long"] == 1.0 and m["verdict/polite/met"] == 1.0
