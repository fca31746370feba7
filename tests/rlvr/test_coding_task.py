"""The built-in coding task: generator, its references under the `code` verifier, and `rlvr-train` on it."""
from __future__ import annotations

import json
import subprocess

import pytest

from rlvr.config import DataConfig
from rlvr.data import build_prompt_sets
from rlvr.data.chat import encode_prompt
from rlvr.data.coding import LEVELS, OPS, CodingTask
from rlvr.models.tiny import build_tokenizer

from .conftest import REPO, train_command

CODE_REASONS = {"correct", "wrong_answer", "compile_error", "runtime_error", "timeout", "early_exit", "no_code"}


def _sets(difficulty: int, eval_size: int = 64, num_train: int = 500):
    cfg = DataConfig(source="coding", eval_size=eval_size)
    cfg.coding.difficulty, cfg.coding.num_train = difficulty, num_train
    return build_prompt_sets(cfg)


@pytest.mark.parametrize("difficulty", sorted(LEVELS))
def test_levels_are_deterministic_and_well_formed(difficulty):
    task = CodingTask(difficulty, 40, seed=3, split="train")
    again = CodingTask(difficulty, 40, seed=3, split="train")
    tok = build_tokenizer()
    for i in range(40):
        p = task[i]
        assert p == again[i] and p.verifier == "code" and p.uid == f"train-{i}"
        ref = p.reference
        assert ref["kind"] == "call" and len(ref["cases"]) == 4
        assert p.solution.startswith(f"```python\ndef {ref['entry_point']}(") and p.solution.endswith("\n```")
        assert len(encode_prompt(tok, p, 96)) + len(p.solution) + 1 <= 160  # fits the tiny model's 256 positions
    assert CodingTask(difficulty, 40, seed=4, split="train")[0] != task[0] or difficulty == 1


def test_difficulty_adds_operations():
    assert LEVELS[1] == ("plus",)
    for d in range(2, max(LEVELS) + 1):
        assert set(LEVELS[d - 1]) < set(LEVELS[d])
    assert set(LEVELS[max(LEVELS)]) == set(OPS)


def test_bad_settings_name_the_knob():
    with pytest.raises(ValueError, match="data.coding.difficulty"):
        CodingTask(9, 10, seed=0, split="train")
    with pytest.raises(ValueError, match="data.coding.num_cases"):
        CodingTask(1, 10, seed=0, split="train", num_cases=0)


def test_held_out_prompts_never_appear_in_training():
    train, held = _sets(1, eval_size=64, num_train=2000)
    held_texts = {held[i].messages[0]["content"] for i in range(len(held))}
    assert len(held) == 64 and len(held_texts) > 50
    assert not held_texts & {train[i].messages[0]["content"] for i in range(len(train))}
    with pytest.raises(IndexError):
        train[2000]


@pytest.fixture(scope="module")
def code():
    from verifiers import get_verifier

    return get_verifier("code", timeout_s=5, workers=1)


@pytest.mark.parametrize("difficulty", sorted(LEVELS))
def test_own_solutions_pass_and_wrong_ones_fail(code, difficulty):
    task = CodingTask(difficulty, 12, seed=1, split="eval")
    for i in range(len(task)):
        p = task[i]
        verdict = code.verify(completion=f"Here it is:\n{p.solution}", reference=p.reference)
        assert (verdict.reward, verdict.reason) == (1.0, "correct"), (p.solution, verdict)
        name = p.reference["entry_point"]
        wrong = f"```python\ndef {name}(*args):\n    return 12345\n```"
        assert code.verify(completion=wrong, reference=p.reference).reason == "wrong_answer"
    # another problem's solution (a different function) scores 0 too
    assert code.verify(completion=task[1].solution, reference=task[0].reference).reward == 0.0


def test_reward_path_runs_the_sandbox():
    """Solutions through `RewardScorer` (verifier worker processes -> sandbox), as the loop scores them."""
    from rlvr.config import RewardConfig, RewardSource
    from rlvr.rewards import RewardScorer, reward_metrics

    task = CodingTask(3, 6, seed=0, split="train")
    prompts = [task[i] for i in range(len(task))]
    cfg = RewardConfig(sources=[RewardSource(options={"timeout_s": 2, "workers": 1})], workers=1, timeout=15.0)
    texts = [p.solution for p in prompts[:3]] + ["```python\ndef nope(:\n```", "```python\nprint(missing)\n```", ""]
    with RewardScorer(cfg) as scorer:
        metrics = reward_metrics(scorer.score(prompts, texts))
    assert metrics["verdict/verifier/correct"] == 3 and metrics["verdict/verifier/no_code"] == 1
    assert metrics["verdict/verifier/compile_error"] == 1 and metrics["verdict/verifier/runtime_error"] == 1
    assert metrics["pass_rate"] == 0.5


def test_train_smoke_on_coding(tmp_path, train_env):
    run_dir = tmp_path / "code"
    cmd = train_command(run_dir, "trainer.threads=1", "data=coding", "data.eval_size=4", "data.coding.difficulty=1",
                        "rollout.max_new_tokens=24", "trainer.total_steps=2", "trainer.save_every=0",
                        "reward.sources=[{name: verifier, weight: 1.0, options: {timeout_s: 2, workers: 1}}]")
    proc = subprocess.run(cmd, env=train_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for row in steps:
        reasons = {k.split("/", 2)[2]: v for k, v in row.items() if k.startswith("verdict/verifier/")}
        assert reasons and set(reasons) <= CODE_REASONS, reasons  # the sandbox judged them: no error/crash
        assert sum(reasons.values()) == 16
    assert [r["step"] for r in rows if "eval/pass@1" in r] == [0, 2]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2


def test_sandbox_limit_must_fit_inside_the_pool_deadline():
    from rlvr.config import ConfigError, RewardSource, TrainConfig
    from rlvr.config_checks import validate

    cfg = TrainConfig()
    cfg.data.source, cfg.data.verifier = "coding", "code"
    cfg.reward.sources = [RewardSource(options={"timeout_s": 10, "workers": 1})]
    with pytest.raises(ConfigError, match="raise reward.timeout"):
        validate(cfg)
    cfg.reward.timeout = 15.0
    validate(cfg)
