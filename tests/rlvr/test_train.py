"""`rlvr-train` end to end in subprocesses: a smoke run, the run directory, SIGKILL + resume."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest


from .conftest import REPO, assert_resume_reproduces, train_command

THREADS = "trainer.threads=1"
# The smoke run exercises the reference model and the k3 KL term (beta > 0) and two reward sources.
SMOKE = (THREADS, "trainer.total_steps=6", "reward=verifier_format", "algorithm.beta=0.04",
         "model.sft.steps=300")  # a warm-up long enough that some completions earn reward


def _run(cmd, env, timeout=600):
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, train_env):
    run_dir = tmp_path_factory.mktemp("runs") / "smoke"
    proc = _run(train_command(run_dir, *SMOKE), train_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir, proc.stdout


def test_smoke_run_prints_the_batch_arithmetic_and_progress(smoke):
    _, out = smoke
    assert "4 prompts x 4 completions = 16 completions per step" in out
    assert "step     6/6" in out and "done: held-out pass@1" in out
    assert "reference model: loaded" in out


def test_run_directory(smoke):
    run_dir, _ = smoke
    for name in ("config.yaml", "metrics.jsonl", "curve.png", "summary.json"):
        assert (run_dir / name).exists(), name
    rows = _metrics(run_dir)
    steps = [r for r in rows if "reward/mean" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6]
    for key in ("reward/mean", "reward/std", "reward/verifier/mean", "reward/format/mean", "pass_rate",
                "zero_variance_frac", "completion_len/mean", "completion_len/max", "truncated_frac", "kl",
                "clip_frac/low", "clip_frac/high", "entropy", "grad_norm", "lr", "loss", "time/generate",
                "time/reward", "time/update", "tokens_per_s"):
        assert key in steps[0], key
    assert any(k.startswith("verdict/verifier/") for k in steps[0])
    # the engine shares the policy: its log-probs are the learner's, measured on the first forward
    assert all(r["rollout/logprob_diff_mean"] < 1e-4 and r["rollout/logprob_diff_max"] < 1e-3 for r in steps)
    assert any(r["kl"] > 0 for r in steps[1:])  # beta > 0: the policy moved away from the reference
    evals = [r for r in rows if "eval/pass@1" in r]
    assert [r["step"] for r in evals] == [0, 2, 4, 6] and all("eval/pass@k" in r for r in evals)
    samples = sorted((run_dir / "samples").glob("*.jsonl"))
    assert [p.name for p in samples] == ["step_000002.jsonl", "step_000004.jsonl", "step_000006.jsonl"]
    first = [json.loads(line) for line in samples[0].read_text().splitlines()]
    assert first and {"prompt", "completion", "reference", "reward", "passed", "verdict"} <= set(first[0])
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 6 and "accuracy_before" in summary and "accuracy_after" in summary


def test_checkpoints_are_hugging_face_models(smoke):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run_dir, _ = smoke
    ckpts = sorted((run_dir / "checkpoints").glob("step_*"))
    assert [c.name for c in ckpts] == ["step_000004", "step_000006"]  # keep_checkpoints=2
    AutoModelForCausalLM.from_pretrained(ckpts[-1])
    assert AutoTokenizer.from_pretrained(ckpts[-1]).chat_template


def test_sigkill_and_resume_reproduce_the_uninterrupted_run(smoke, tmp_path, train_env):
    reference_dir, _ = smoke
    assert_resume_reproduces(reference_dir, tmp_path / "killed", tuple(SMOKE), train_env)


def test_resume_with_nothing_left_refuses_loudly(smoke, train_env):
    run_dir, _ = smoke
    proc = _run(train_command(run_dir, THREADS, "trainer.total_steps=6", "resume=auto"), train_env)
    assert proc.returncode != 0
    assert "nothing left to do" in proc.stderr and "trainer.total_steps=12" in proc.stderr


def test_fresh_run_into_a_used_directory_refuses(smoke, train_env):
    run_dir, _ = smoke
    proc = _run(train_command(run_dir, THREADS), train_env)
    assert proc.returncode != 0 and "resume=auto" in proc.stderr


def test_unknown_key_fails_at_start(tmp_path, train_env):
    proc = _run(train_command(tmp_path / "x", "trainer.learning_rate=1"), train_env)
    assert proc.returncode != 0 and "learning_rate" in proc.stderr


def _fails_fast(proc, *needles: str) -> None:
    """Exit 2, one `error:` line naming the fix, and nothing expensive ran (no warm-up, no model)."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and all(n in lines[0] for n in needles), proc.stderr[-2000:]
    assert "[sft]" not in proc.stdout and "model:" not in proc.stdout


@pytest.mark.parametrize("overrides, needles", [
    (["rollout.engine=vllm2"], ["unknown rollout.engine 'vllm2'", "registered: hf"]),
    (["data.verifier=maths"], ["unknown verifier 'maths'", "math"]),
    (["reward=verifier_format", "+reward.sources.1.options.patern=x"], ["no option(s) patern", "pattern"]),
    (["data.max_prompt_tokens=4"], ["prompt train-", "data.max_prompt_tokens=4", "data.on_long_prompt=drop"]),
    (["data.chat_template=/nowhere/chat.jinja"], ["data.chat_template='/nowhere/chat.jinja'", "no such file"]),
])
def test_bad_config_or_data_exits_2_before_anything_expensive(tmp_path, train_env, overrides, needles):
    _fails_fast(_run(train_command(tmp_path / "x", *overrides), train_env), *needles)


def test_model_directory_without_a_tokenizer_exits_2(tmp_path, train_env, tiny_model_dir):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for f in tiny_model_dir.iterdir():
        if not f.name.startswith(("tokenizer", "special_tokens", "chat_template")):
            shutil.copy(f, bare / f.name)
    _fails_fast(_run(train_command(tmp_path / "x", "model=local", f"model.path={bare}"), train_env),
                "no usable tokenizer", "tokenizer.save_pretrained")
    _fails_fast(_run(train_command(tmp_path / "y", "model=local", f"model.path={tmp_path}/nowhere"), train_env),
                "no config.json")


def test_chat_rows_need_a_chat_template(tmp_path, train_env, tiny_model_dir):
    import shutil

    plain = tmp_path / "plain"
    shutil.copytree(tiny_model_dir, plain)
    config = json.loads((plain / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(config))
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    rows = tmp_path / "rows.jsonl"
    # earlier turns need a template (a system prompt alone would be prepended as raw text)
    rows.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "1+1"},
                                                     {"role": "assistant", "content": "2"},
                                                     {"role": "user", "content": f"{i}+1"}],
                                        "reference": str(i + 1)}) + "\n" for i in range(20)))
    proc = _run(train_command(tmp_path / "x", "model=local", f"model.path={plain}", "data=jsonl",
                              f"data.path={rows}", "data.eval_size=4"), train_env)
    _fails_fast(proc, "no chat template", "chat_template")


def test_a_correction_makes_the_learner_recompute_and_log_the_importance_ratio(tmp_path, train_env):
    run_dir = tmp_path / "corrected"
    proc = _run(train_command(run_dir, THREADS, "trainer.total_steps=2", "model.sft.steps=300",
                              "algorithm.rollout_correction=token_truncate"), train_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = [r for r in _metrics(run_dir) if "reward/mean" in r and r["groups_trained"]]
    assert steps
    for r in steps:
        assert r["rollout/logprob_diff_mean"] < 1e-4 and r["rollout/is_capped_frac"] == 0.0
        assert 0.999 < r["rollout/is_ratio_min"] <= r["rollout/is_ratio_mean"] <= r["rollout/is_ratio_max"] < 1.001
