"""Every file under conf/ composes against the typed schema; bad settings are rejected with a fix."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from rlvr.config import ConfigError, TrainConfig, register_schemas
from rlvr.config_checks import batch_arithmetic, validate

from .conftest import CONF

register_schemas()
GROUPS = ["model", "data", "algorithm", "rollout", "trainer", "reward", "logger", "preset", "rubric"]
# Files that document user-supplied values (`???`) get a placeholder so they compose.
FILL = {"model.path": "/models/placeholder", "data.path": "/data/placeholder.jsonl"}


def experiment_root(path) -> str:
    """The root config an experiment is for: a `# root: NAME.yaml` line in its header, else config.yaml
    (experiments of other entry points, e.g. rlvr-rm's rm.yaml, are composed by those entry points' tests)."""
    for line in path.read_text().splitlines()[:5]:
        if line.startswith("# root:"):
            return line.split(":", 1)[1].split()[0]
    return "config.yaml"


def _options():
    for group in GROUPS:
        for f in sorted((CONF / group).glob("*.yaml")):
            yield f"{group}={f.stem}"
    for f in sorted((CONF / "experiment").glob("*.yaml")):
        if experiment_root(f) == "config.yaml":
            yield f"+experiment={f.stem}"


def _compose(*overrides: str) -> TrainConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    for key in OmegaConf.missing_keys(cfg):
        OmegaConf.update(cfg, key, FILL[key])
    typed = OmegaConf.to_object(cfg)
    assert isinstance(typed, TrainConfig)
    return typed


def test_every_conf_file_is_listed():
    files = {p.relative_to(CONF).as_posix() for p in CONF.rglob("*.yaml")}
    covered = {"config.yaml"} | {f"{o.split('=')[0].lstrip('+')}/{o.split('=')[1]}.yaml" for o in _options()}
    other_roots = {p.name for p in CONF.glob("*.yaml")} - {"config.yaml"}  # rm.yaml: tests/rlvr/test_rm.py
    covered |= other_roots | {f"experiment/{p.name}" for p in (CONF / "experiment").glob("*.yaml")
                              if experiment_root(p) in other_roots}
    # constitutions are not Hydra groups: tests/rlvr/test_rlaif.py loads every one
    covered |= {f"constitution/{p.name}" for p in (CONF / "constitution").glob("*.yaml")}
    assert files == covered


@pytest.mark.parametrize("override", list(_options()))
def test_conf_file_composes_and_validates(override, tmp_path):
    cfg = _compose(override)
    fake_rm = tmp_path / "rm"  # presets that read a reward model rlvr-rm writes first: a stand-in directory
    fake_rm.mkdir()
    (fake_rm / "config.json").write_text("{}")
    (fake_rm / "reward_stats.json").write_text("{}")
    for src in cfg.reward.sources:
        if src.kind == "model":
            src.path = str(fake_rm)
        if src.kind == "judge" and src.options.get("path"):  # an in-process judge rlvr-train writes first
            src.options["path"] = str(fake_rm)
    validate(cfg)
    assert "completions per step" in batch_arithmetic(cfg)


def test_the_judge_rewarded_preset_reads_its_judge_and_matches_tiny_rm_grpo(tmp_path, monkeypatch):
    """+experiment=tiny_judge_grpo: the trained reasoning judge (RLVR_TINY_JUDGE) ranks each group, and only the
    reward differs from tiny_rm_grpo (task, warm-up, leash, steps), so bench/judge_vs_rm.py compares rewards."""
    judge = tmp_path / "judge"
    judge.mkdir()
    (judge / "config.json").write_text("{}")
    monkeypatch.setenv("RLVR_TINY_JUDGE", str(judge))
    cfg = _compose("+experiment=tiny_judge_grpo")
    validate(cfg)
    src = cfg.reward.sources[0]
    assert (src.kind, src.options["path"], src.options["mode"], src.options["response_format"]) == \
        ("judge", str(judge), "group", "rubrics")
    assert [(s.name, s.weight) for s in cfg.reward.sources[1:]] == [("preference_rule", 0.0)]
    rm = _compose("+experiment=tiny_rm_grpo")
    for key in ("data", "algorithm", "model", "rollout", "trainer"):
        assert OmegaConf.structured(getattr(cfg, key)) == OmegaConf.structured(getattr(rm, key)), key
    monkeypatch.setenv("RLVR_TINY_JUDGE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="options.path=.*missing: no such directory"):
        validate(_compose("+experiment=tiny_judge_grpo"))


def test_default_composes():
    cfg = _compose()
    validate(cfg)
    assert cfg.model.path is None and cfg.data.source == "arithmetic"


def test_unknown_key_is_an_error():
    with pytest.raises(ConfigCompositionException):
        _compose("trainer.learning_rate=1e-3")
    with pytest.raises(ConfigCompositionException):
        _compose("algorithm.loss_agg_mode=token_mean")


def test_wrong_type_is_an_error():
    with pytest.raises(ConfigCompositionException):
        _compose("trainer.total_steps=many")


@pytest.mark.parametrize("overrides, fix", [
    (["trainer.prompts_per_step=3", "algorithm.group_size=3", "trainer.optimizer_steps_per_batch=2"],
     "choose a divisor of 9"),
    (["trainer.micro_batch_size=7"], "set trainer.micro_batch_size to a divisor of"),
    (["algorithm.group_size=1"], "at least 2 completions"),
    (["algorithm.aggregation=mean"], "choose one of token_mean"),
    (["trainer.eval.k=8", "trainer.eval.num_samples=4"], "raise num_samples"),
    (["rollout.engine=vlm"], "unknown rollout.engine 'vlm'; registered: hf"),
    (["trainer.backend=deepspeed2"], "unknown trainer.backend 'deepspeed2'; registered: .*torch"),
    (["algorithm.advantage=ppo"], "unknown algorithm.advantage 'ppo'; registered: gae, grpo, rloo"),
    (["algorithm.loss=huber"], "unknown algorithm.loss 'huber'"),
    (["data.source=gsm8k"], "unknown data.source 'gsm8k'; registered: arithmetic, coding, file"),
    (["data.verifier=maths"], "data.verifier .*: unknown verifier 'maths'; known verifiers: .*math"),
    (["reward=verifier_format", "+reward.sources.1.options.patern=x"], r"reward.sources\[1\]: .*no option\(s\) patern"),
    (["reward.sources.0.kind=oracle"], r"unknown reward.sources\[\].kind 'oracle'; registered: judge, model, rule, verifier"),
    (["reward.sources.0.kind=model"], r"reward.sources\[0\] \(verifier\): set its path to a reward-model directory"),
    (["data.on_long_prompt=truncate"], "choose one of error, drop"),
])
def test_inconsistent_settings_name_the_fix(overrides, fix):
    cfg = _compose(*overrides)
    with pytest.raises(ConfigError, match=fix):
        validate(cfg)


def test_batch_arithmetic_is_spelled_out():
    cfg = _compose("trainer.prompts_per_step=8", "algorithm.group_size=4", "trainer.micro_batch_size=4",
                   "trainer.optimizer_steps_per_batch=2", "algorithm.num_iterations=2", "trainer.total_steps=10")
    text = batch_arithmetic(cfg)
    assert "8 prompts x 4 completions = 32 completions per step" in text
    assert "2 mini-batch(es) of 16 = 4 micro-batch(es) of 4 (gradient accumulation 4)" in text
    assert "4 optimizer step(s) per rollout batch; 10 steps -> 40 optimizer steps" in text


def test_unknown_key_in_a_yaml_file_is_an_error(tmp_path):
    (tmp_path / "config.yaml").write_text("defaults:\n  - rlvr_schema\n  - _self_\nalgorithm:\n  loss_agg_mode: x\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        with pytest.raises(ConfigCompositionException, match="loss_agg_mode"):
            compose(config_name="config")


def test_real_model_runs_get_the_schema_defaults_not_the_toy_preset():
    real, schema, toy = _compose("model=local", "model.path=/models/m"), TrainConfig(), _compose()
    for key in ("rollout.max_new_tokens", "trainer.optim.lr", "trainer.optim.warmup_steps", "trainer.threads",
                "trainer.micro_batch_size", "trainer.total_steps", "rollout.hf.batch_size", "model.sft.steps"):
        assert OmegaConf.select(OmegaConf.structured(real), key) == OmegaConf.select(OmegaConf.structured(schema), key), key
    assert real.rollout.max_new_tokens == 256 and real.trainer.optim.lr == 1e-6 and real.model.sft.steps == 0
    assert toy.rollout.max_new_tokens == 16 and toy.trainer.optim.lr == 1e-4 and toy.model.sft.steps == 1000
