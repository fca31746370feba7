"""PPO under ``trainer.backend=deepspeed``: the critic as a DeepSpeed engine of its own (`rlvr.learner.critic`).

- The critic alone (`critic_worker.py`), 2 gloo ranks under torchrun against one plain-PyTorch process:
  every rank holds the same critic (under ZeRO-2 each rank's own whole copy, bit for bit), and it is
  the one a single process trains on the union of the rows. About 15 s per launch.
- `rlvr-train algorithm=ppo` end to end: one DeepSpeed process logs the torch backend's metrics (value
  loss, explained variance, the KL controller's beta), 2 ranks under ZeRO-2 log one process's PPO
  metrics (the same advantages: whitened over every rank's rows, the same KL for the controller), and
  a SIGKILLed DeepSpeed run resumes exactly (critic, its optimizer and beta). About 15-40 s a run on
  2 busy cores once the warm-up is cached (`test_ppo.py` shares it).

deepspeed is never imported into the pytest process.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch

from . import critic_worker, ds_worker
from .conftest import REPO, assert_resume_reproduces, train_command
from .test_deepspeed import CACHE, launch, needs_deepspeed
from .test_ppo import PPO

pytestmark = needs_deepspeed
WORKER = Path(critic_worker.__file__)
DS = ("trainer.backend=deepspeed", f"trainer.deepspeed.cache_dir={os.path.expanduser(CACHE)}")
ZERO3 = ("trainer.deepspeed.zero_stage=3", "trainer.deepspeed.stage3_param_persistence_threshold=0")
# one mini-batch per rollout batch: then 2 ranks' updates equal one process's (with several, each rank would
# shuffle its own rows into mini-batches, unlike one process shuffling all of them; GRPO's runs do the same)
RUN = (*PPO, "trainer.optimizer_steps_per_batch=1", "trainer.micro_batch_size=4")
PPO_KEYS = ("ppo/value_loss", "ppo/explained_variance", "ppo/value_clip_frac", "ppo/critic_grad_norm",
            "ppo/value_mean", "ppo/return_mean", "ppo/advantage_mean", "ppo/advantage_std", "ppo/kl",
            "ppo/kl_coef")


@pytest.fixture(scope="module")
def saved(tiny_model_dir, tmp_path_factory) -> dict[str, str]:
    """A saved rollout batch (3 prompts x 4 completions) and the model it was sampled from."""
    path = tmp_path_factory.mktemp("critic") / "batch.pt"
    ds_worker.make_batch(str(tiny_model_dir), str(path))
    return {"batch": str(path), "model": str(tiny_model_dir), "cache_dir": CACHE}


@pytest.mark.parametrize("stage, shared", [(2, False), (3, True)])
def test_two_ranks_keep_one_critic_that_matches_one_process(saved, tmp_path, stage, shared):
    """3 updates (2 passes each, 3 micro-batches per rank, clipping) of a separate value model under ZeRO-2 and
    of a value head on a ZeRO-3-partitioned policy trunk (its head partitioned too)."""
    spec = {**saved, "steps": 3, "stage": stage, "shared": shared}
    ranks = launch({**spec, "backend": "deepspeed"}, tmp_path, nproc=2, worker=WORKER)
    want = critic_worker.run({**spec, "backend": "torch"})
    assert [r["world_size"] for r in ranks] == [2, 2]
    if stage == 2:  # each rank's own whole copy, not a gathered one
        assert ranks[0]["local_digest"] == ranks[1]["local_digest"]
    assert ranks[0]["sums"] == ranks[1]["sums"] and ranks[0]["values"] == ranks[1]["values"]
    assert ranks[0]["sums"].keys() == want["sums"].keys()
    for name, total in want["sums"].items():
        assert ranks[0]["sums"][name] == pytest.approx(total, rel=1e-5, abs=1e-5), name
    torch.testing.assert_close(torch.tensor(ranks[0]["values"]), torch.tensor(want["values"]), atol=1e-5, rtol=0)
    for step, expected in enumerate(want["stats"]):
        for key, value in expected.items():  # every rank reports the global figures
            assert all(r["stats"][step][key] == pytest.approx(value, rel=1e-4, abs=1e-6) for r in ranks), (step, key)
    assert want["stats"][-1]["ppo/value_loss"] < want["stats"][0]["ppo/value_loss"]  # it did learn


def _run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def _torchrun(cmd: list[str], nproc: int = 2) -> list[str]:
    return [cmd[0], "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *cmd[1:]]


def _steps(run_dir: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "reward/mean" in r]


@pytest.fixture(scope="module")
def env(train_env) -> dict[str, str]:
    return {**train_env, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, env) -> dict[str, Path]:
    """One plain-PyTorch process (the reference), one DeepSpeed process, 2 DeepSpeed ranks under ZeRO-2."""
    root = tmp_path_factory.mktemp("ppo_ds")
    out = {name: root / name for name in ("torch", "one", "zero2")}
    _run(train_command(out["torch"], *RUN), env)
    out["one_stdout"] = _run(train_command(out["one"], *RUN, *DS), env).stdout  # type: ignore[assignment]
    _run(_torchrun(train_command(out["zero2"], *RUN, *DS)), env)
    return out


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5)


def test_one_deepspeed_process_logs_the_torch_backends_ppo_run(runs):
    from rlvr.rl.loop import DETERMINISTIC_SKIP

    assert "backend: deepspeed (rank 0 of 1)" in runs["one_stdout"]
    want, got = _steps(runs["torch"]), _steps(runs["one"])
    assert [r["step"] for r in got] == [r["step"] for r in want] == [1, 2, 3, 4, 5, 6]
    for w, g in zip(want, got):
        assert all(key in g for key in PPO_KEYS) and w.keys() == g.keys(), g["step"]
        for key, value in w.items():
            if isinstance(value, float) and not key.startswith(DETERMINISTIC_SKIP):
                assert _close(value, g[key]), (g["step"], key, value, g[key])
    assert len({r["ppo/kl_coef"] for r in got}) == len(got)  # the controller moved beta every step
    critic = sorted((runs["one"] / "checkpoints").glob("step_*"))[-1] / "critic"
    weights = torch.load(critic / "weights.pt", weights_only=True)
    assert "score.weight" in weights and (critic / "backend" / "state").is_dir()  # DeepSpeed's own state


def test_two_ranks_log_one_processes_ppo_metrics(runs):
    """Same rollouts (per-prompt seeds on the global index), so the same values, advantages (whitened over both
    ranks' rows), KL and beta (the controller reads the global KL), value and policy losses."""
    want, got = _steps(runs["torch"]), _steps(runs["zero2"])
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for w, g in zip(want, got):
        for key in (*PPO_KEYS, "beta", "reward/mean", "completion_len/mean", "loss", "grad_norm", "kl"):
            if key in w:
                assert _close(w[key], g[key]), (g["step"], key, w[key], g[key])
    layout = json.loads((sorted((runs["zero2"] / "checkpoints").glob("step_*"))[-1] / "layout.json").read_text())
    assert layout["world_size"] == 2


def test_deepspeed_ppo_sigkill_and_resume_reproduce_the_uninterrupted_run(runs, tmp_path, env):
    """Killed right after step 2's checkpoint, resumed: the critic's engine state (weights, AdamW moments),
    the policy's and beta come back, and every deterministic metric equals the uninterrupted run's."""
    assert_resume_reproduces(runs["one"], tmp_path / "killed", (*RUN, *DS), env)


def test_two_zero3_ranks_run_ppo_with_a_value_head_on_the_partitioned_policy(tmp_path, env):
    """critic.shared=true under ZeRO-3: the head (its own engine, partitioned) reads the policy's partitioned trunk,
    gathered layer by layer on both ranks (about 35 s)."""
    run_dir = tmp_path / "zero3_shared"
    proc = _run(_torchrun(train_command(run_dir, *RUN, *DS, *ZERO3, "algorithm.critic.shared=true")), env)
    assert "a value head on the policy's trunk" in proc.stdout
    steps = _steps(run_dir)
    assert [r["step"] for r in steps] == [1, 2, 3, 4, 5, 6] and all(k in r for r in steps for k in PPO_KEYS)
    assert all(math.isfinite(r["ppo/value_loss"]) for r in steps) and "grad_norm" in steps[-1]
    weights = torch.load(sorted((run_dir / "checkpoints").glob("step_*"))[-1] / "critic" / "weights.pt",
                         weights_only=True)
    assert list(weights) == ["weight"] and weights["weight"].numel() > 0  # the head, gathered from its shards

