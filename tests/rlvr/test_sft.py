"""`rlvr-sft` end to end: run directory, metrics, checkpoints that load, resume, summary; chat rows."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO


def _sft(run_dir, env, *overrides):
    cmd = [sys.executable, "-m", "rlvr.sft", f"hydra.run.dir={run_dir}", "model.hidden_size=32",
           "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64", "model.sft.steps=20",
           "model.sft.batch_size=16", "model.sft.stop_at_accuracy=0", "model.sft.probe_size=16",
           "data.eval_size=8", "data.arithmetic.difficulty=1", "trainer.micro_batch_size=8", "trainer.save_every=10",
           "trainer.threads=1", "reward.workers=1", "logger.console_every=10", *overrides]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


@pytest.mark.timeout(900)  # two rlvr-sft processes: room for a loaded CI machine
def test_sft_run_directory_resume_and_summary(tmp_path, train_env):
    from transformers import AutoModelForCausalLM

    run_dir = tmp_path / "sft"
    proc = _sft(run_dir, train_env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 21)) and rows[-1]["sft/loss"] < rows[0]["sft/loss"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 20 and 0.0 <= summary["probe_accuracy_after"] <= 1.0
    assert summary["probe_failures"] == {}
    AutoModelForCausalLM.from_pretrained(summary["model"])  # a Hugging Face checkpoint
    resumed = _sft(run_dir, train_env, "model.sft.steps=30", "resume=auto")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert json.loads((run_dir / "summary.json").read_text())["resumed_from_step"] == 20


def test_sft_on_chat_rows_ending_with_the_answer(tmp_path, train_env, tiny_model_dir):
    rows = tmp_path / "chat.jsonl"
    rows.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{i}+1"},
                                                     {"role": "assistant", "content": f"\\boxed{{{i + 1}}}"}]})
                            + "\n" for i in range(40)))
    proc = _sft(tmp_path / "chat", train_env, "model=local", f"model.path={tiny_model_dir}", "data=jsonl",
                f"data.path={rows}", "model.sft.steps=5", "model.sft.probe_size=0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "done: 5 steps" in proc.stdout


def test_sft_without_steps_is_an_error(tmp_path, train_env):
    proc = _sft(tmp_path / "none", train_env, "model.sft.steps=0")
    assert proc.returncode == 2 and "model.sft.steps=0: nothing to train" in proc.stderr
