"""Shared fixtures for the trainer tests: a tiny model built once per session, offline."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "conf"


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A freshly initialised ~40k-parameter Llama with the character tokenizer."""
    from rlvr.models.tiny import build_tiny_llama

    out = tmp_path_factory.mktemp("tiny") / "model"
    return build_tiny_llama(out, hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)


@pytest.fixture(scope="module")
def tiny_rollouts(tiny_model_dir):
    """(model, tokenizer, batch): 2 prompts x 4 sampled completions of 6 tokens from the tiny model."""
    import torch

    from rlvr.models import load_model, load_tokenizer
    from rlvr.rollout import SamplingParams, build_engine

    torch.set_num_threads(1)
    model, tok = load_model(tiny_model_dir), load_tokenizer(tiny_model_dir)
    prompts = [tok.apply_chat_template([{"role": "user", "content": f"{i}+{i}"}], add_generation_prompt=True,
                                       tokenize=True, return_dict=False) for i in range(2)]
    torch.manual_seed(0)
    batch = build_engine("hf", model, tok).generate(prompts, SamplingParams(n=4, max_new_tokens=6))
    return model, tok, batch


@pytest.fixture(scope="session")
def train_env(tmp_path_factory) -> dict[str, str]:
    """Environment for `python -m rlvr.train` subprocesses: repo importable, private cache."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["RLVR_CACHE"] = str(tmp_path_factory.mktemp("rlvr_cache"))
    env["HF_HUB_OFFLINE"] = "1"
    env["TRANSFORMERS_OFFLINE"] = "1"
    return env


def train_command(run_dir: Path, *overrides: str) -> list[str]:
    """A small, fast `rlvr-train` invocation; `overrides` come last and win."""
    return [sys.executable, "-m", "rlvr.train", f"hydra.run.dir={run_dir}",
            "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64",
            "model.sft.steps=30", "model.sft.batch_size=32", "model.sft.stop_at_accuracy=0", "data.eval_size=8", "data.arithmetic.difficulty=1",
            "algorithm.group_size=4", "trainer.prompts_per_step=4", "trainer.micro_batch_size=8",
            "trainer.optimizer_steps_per_batch=2", "trainer.total_steps=4", "trainer.eval.every=2",
            "trainer.eval.num_samples=2", "trainer.eval.k=2", "trainer.sample_every=2", "trainer.save_every=2",
            "trainer.optim.warmup_steps=0", "trainer.optim.lr=1e-3", "rollout.max_new_tokens=8", "reward.workers=1",
            *overrides]


def kill_after(cmd: list[str], env: dict[str, str], marker: Path, timeout: float = 300) -> None:
    """Start ``cmd`` and SIGKILL it the moment ``marker`` (a checkpoint's COMPLETE file) exists."""
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while not marker.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def assert_resume_reproduces(reference_dir: Path, run_dir: Path, overrides: tuple[str, ...], env: dict[str, str],
                             kill_at: int = 2) -> None:
    """SIGKILL an `rlvr-train` run (`train_command` + ``overrides``) right after step ``kill_at``'s checkpoint,
    resume it, and check every deterministic metric equals the uninterrupted run's in ``reference_dir``."""
    import json
    import math
    import subprocess

    from rlvr.rl.loop import DETERMINISTIC_SKIP

    def rows(d: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if not any(k.startswith(s) for s in DETERMINISTIC_SKIP)}
                for line in (d / "metrics.jsonl").read_text().splitlines()]

    cmd = train_command(run_dir, *overrides)
    marker = run_dir / "checkpoints" / f"step_{kill_at:06d}" / "COMPLETE"
    kill_after(cmd, env, marker)
    assert marker.exists() and not (run_dir / "summary.json").exists()
    resumed = subprocess.run(cmd + ["resume=auto"], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout
    want, got = rows(reference_dir), rows(run_dir)
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for w, g in zip(want, got):
        assert w.keys() == g.keys()
        for key in w:
            if isinstance(w[key], float):
                assert math.isclose(w[key], g[key], abs_tol=1e-6), (w["step"], key, w[key], g[key])
            else:
                assert w[key] == g[key], (w["step"], key)
