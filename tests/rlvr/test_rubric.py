"""Rubrics: shipped files compose into reward sources, the version follows the content, bad rubrics
are refused at validation (before any model), and a rubric never silently merges with reward.sources."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlvr.config import ConfigError, RewardSource, TrainConfig, register_schemas
from rlvr.config_checks import validate
from rlvr.eval.rubric import (RubricConfig, RubricDimension, rubric_banner, rubric_record, rubric_version,
                         write_rubric)

from .conftest import CONF

register_schemas()


def _compose(*overrides: str) -> TrainConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return OmegaConf.to_object(compose(config_name="config", overrides=list(overrides)))


def test_preference_rubric_becomes_one_source_per_dimension():
    cfg = _compose("data=preference", "rubric=preference")
    validate(cfg)
    got = [(s.name, s.kind, s.check, s.weight) for s in cfg.reward.sources]
    assert got == [("correct", "rule", "preference.correct", 2.0), ("clean", "rule", "preference.clean", 1.0),
                   ("polite", "rule", "preference.polite", 1.0), ("concise", "rule", "preference.concise", 1.0),
                   ("preference_rule", "verifier", "preference_rule", 0.0)]


def test_the_truth_is_an_ordinary_source_any_run_names():
    builtin = _compose("data=preference")  # the built-in task names its true rule; measured at weight 0
    validate(builtin)
    assert (builtin.reward.truth.source, builtin.reward.truth.name) == ("preference_rule", "true_preference")
    assert [(s.name, s.kind, s.weight) for s in builtin.reward.sources] == [
        ("verifier", "verifier", 1.0), ("preference_rule", "verifier", 0.0)]
    validate(builtin)  # idempotent: added once
    assert len(builtin.reward.sources) == 2
    mine = _compose("rubric=math", "reward.truth.source=correctness", "reward.truth.name=accuracy")
    validate(mine)
    validate(mine)  # a rubric dimension is the truth: nothing added, and applying twice is still a no-op
    assert [s.name for s in mine.reward.sources] == ["correctness", "format", "length"]
    assert _compose().reward.truth.source is None  # the arithmetic default names none
    with pytest.raises(ConfigError, match="reward.truth.name='true preference'"):
        validate(_compose("data=preference", "reward.truth.name=true preference"))


def test_math_rubric_scores_each_dimension_under_its_own_label():
    from rlvr.data.schema import Prompt
    from rlvr.rewards import RewardScorer, reward_metrics

    cfg = _compose("rubric=math")
    validate(cfg)
    cfg.reward.workers = 1
    prompt = Prompt(({"role": "user", "content": "1+1"},), "math", "2")
    with RewardScorer(cfg.reward) as scorer:
        result = scorer.score([prompt, prompt], ["so \\boxed{2}", "I think 3" + " and on" * 100])
    m = reward_metrics(result)
    assert result.gate == "correctness" and result.passed.tolist() == [True, False]
    assert m["reward/correctness/mean"] == 0.5 and m["reward/format/mean"] == 0.5
    assert m["verdict/length/met"] == 1.0 and m["verdict/length/too_long"] == 1.0
    assert result.rewards[0].item() == pytest.approx(1.0 + 0.1 + 0.1)


def test_the_version_is_a_hash_of_every_field_plus_the_label():
    rubric = _compose("rubric=math").rubric
    version = rubric_version(rubric)
    assert version.startswith("v1+") and len(version.split("+")[1]) == 12
    assert rubric_version(_compose("rubric=math").rubric) == version  # stable
    for change in (dict(weight=0.2), dict(description="other"), dict(options={"max_chars": 300, "falloff_chars": 1}),
                   dict(name="brevity"), dict(check="regex")):
        changed = replace(rubric, dimensions=rubric.dimensions[:2] + [replace(rubric.dimensions[2], **change)])
        assert rubric_version(changed) != version, change
    assert rubric_version(replace(rubric, version=None)) == version.split("+")[1]


def test_applying_twice_is_a_no_op_and_the_rubric_is_recorded(tmp_path, capsys):
    cfg = _compose("rubric=math")
    validate(cfg)
    first = list(cfg.reward.sources)
    validate(cfg)
    assert cfg.reward.sources == first
    out = capsys.readouterr().out
    assert out.count("rubric: math v1+") == 1 and "correctness verifier 1, format rule 0.1, length rule 0.1" in out
    record = rubric_record(cfg)
    assert record["version"] == rubric_version(cfg.rubric) and [d["name"] for d in record["dimensions"]] == [
        "correctness", "format", "length"]
    saved = json.loads(write_rubric(tmp_path, cfg).read_text())
    assert saved["dimensions"][1]["options"] == {"pattern": "\\\\boxed\\{[^{}]*\\}\\s*$"}
    assert rubric_banner(TrainConfig()) is None and rubric_record(TrainConfig()) is None


def test_a_rubric_beside_explicit_sources_is_refused():
    cfg = _compose("rubric=math", "reward=verifier_format")
    with pytest.raises(ConfigError, match="rubric math defines the reward sources, but reward.sources is also set "
                                          r"\(verifier, format\)"):
        validate(cfg)


def _cfg(*dimensions: RubricDimension) -> TrainConfig:
    cfg = TrainConfig()
    cfg.rubric = RubricConfig(name="mine", dimensions=list(dimensions))
    return cfg


OK = RubricDimension("ok", kind="verifier")


@pytest.mark.parametrize("dim, match", [
    (RubricDimension("x", kind="oracle"), r"unknown rubric.dimensions\[\].kind 'oracle'; registered: judge, rm, rule, "
                                          r"verifier"),
    (RubricDimension("x", kind="rule", check="lenght_budget"), "unknown rule 'lenght_budget'"),
    (RubricDimension("x", kind="rule"), "kind rule needs check"),
    (RubricDimension("x", kind="rule", check="length_budget"), "needs option.*max_chars"),
    (RubricDimension("x", kind="verifier", check="maths"), "unknown verifier|maths"),
    (RubricDimension("x", kind="rm", path="/no/such/rm"), "reward-model directory /no/such/rm does not exist"),
    (RubricDimension("x", kind="rm"), r"dimension 1 \(x\): set its path to a reward-model directory"),
    (RubricDimension("x", kind="rm", path="/tmp", check="y"), "kind rm has no check"),
    (RubricDimension("a/b"), "must be letters"),
    (RubricDimension("x", weight=-1.0), "finite number >= 0"),
    (RubricDimension("x", kind="judge", options={"base_url": "http://127.0.0.1:9/v1"}), "set options.model"),
])
def test_bad_dimensions_are_one_clear_error(dim, match):
    with pytest.raises(ConfigError, match=match):
        validate(_cfg(OK, dim))


def test_rubric_level_errors():
    with pytest.raises(ConfigError, match="used twice"):
        validate(_cfg(OK, RubricDimension("ok", kind="rule", check="greeting")))
    with pytest.raises(ConfigError, match="every weight is 0"):
        validate(_cfg(replace(OK, weight=0.0)))
    with pytest.raises(ConfigError, match="has no dimensions"):
        validate(_cfg())


def test_rm_dimension_needs_a_model_and_statistics_when_normalize_is_true(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    rm = RubricDimension("rm", kind="rm", path=str(tmp_path), weight=0.5)
    with pytest.raises(ConfigError, match="has no reward_stats.json"):
        validate(_cfg(OK, replace(rm, options={"normalize": True})))
    cfg = _cfg(OK, rm)  # normalize: auto (the default) falls back to running statistics
    cfg.algorithm.beta = 0.04
    validate(cfg)
    cfg = _cfg(OK, replace(rm, options={"normalize": False}))
    cfg.algorithm.beta = 0.04
    validate(cfg)
    assert cfg.reward.sources[1] == RewardSource("rm", 0.5, {"normalize": False}, kind="model", path=str(tmp_path))


def test_judge_dimension_defaults_its_item_to_itself():
    dim = RubricDimension("tone", "Friendly, not curt.", "judge", 0.5,
                          options={"base_url": "http://127.0.0.1:9/v1", "model": "m", "on_unreachable": "outage"})
    cfg = _cfg(OK, dim)
    cfg.algorithm.beta = 0.04
    validate(cfg)
    src = cfg.reward.sources[1]
    assert src.kind == "judge" and src.options["items"] == [{"name": "tone", "description": "Friendly, not curt."}]
    assert src.options["rubric_version"] == rubric_version(cfg.rubric)


def test_a_bad_rubric_stops_rlvr_train_before_any_model(tmp_path, train_env):
    (tmp_path / "rubric").mkdir()
    (tmp_path / "rubric" / "broken.yaml").write_text(
        "name: broken\ndimensions:\n  - {name: style, kind: rule, check: no_such_rule}\n")
    proc = subprocess.run([sys.executable, "-m", "rlvr.train", f"--config-dir={tmp_path}", "rubric=broken",
                           f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, env=train_env,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: rubric broken: dimension 0 (style)") and "unknown rule 'no_such_rule'" in last
    assert "model:" not in proc.stdout


def test_a_run_records_its_rubric(train_env, tmp_path):
    import json
    import subprocess

    from tests.rlvr.conftest import train_command

    run = tmp_path / "run"
    proc = subprocess.run(train_command(run, "rubric=math", "trainer.total_steps=2", "trainer.eval.every=0",
                                        "trainer.save_every=0"),
                          env=train_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    recorded = json.loads((run / "rubric.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert summary["rubric"]["version"] == recorded["version"] and recorded["name"] == "math"
    assert {d["name"] for d in summary["rubric"]["dimensions"]} >= {"correctness"}
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(f"reward/{d['name']}/mean" in metrics[1] for d in summary["rubric"]["dimensions"])
