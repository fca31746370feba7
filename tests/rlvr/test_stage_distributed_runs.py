"""`rlvr-rm` and `rlvr-dpo` on 2 gloo ranks under torchrun (CPU, ``trainer.backend=deepspeed``) against one
plain process with the same seed: the same logged values, one run directory written by rank 0, a final model
that plain ``from_pretrained`` loads with the one-process run's weights.

The tiny Llama of `tiny_model_dir` (1 layer, width 32), a few steps each; ZeRO-3 with a persistence threshold of
0, so the tiny model really is partitioned and every forward is a collective. About 30 s per 2-rank launch on 2
busy cores once DeepSpeed's shared-memory op is compiled into ``$RLVR_CACHE/torch_extensions`` (the first run on
a machine compiles it, 1-2 minutes). deepspeed is never imported into the pytest process. The 2-rank runs of
`rlvr-train` are in test_distributed_runs.py.
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

import pytest
import torch

from .test_distributed_runs import rows
from .test_distributed_runs import run as launch
from .test_dpo import TRAIN_OVERRIDES
from .test_rm import write_rows

pytestmark = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                reason="deepspeed is not installed (pip install deepspeed)")
OPS_CACHE = os.path.join(os.path.expanduser(os.environ.get("RLVR_CACHE", "~/.cache/rlvr")), "torch_extensions")
DS = ("trainer.backend=deepspeed", f"trainer.deepspeed.cache_dir={OPS_CACHE}", "trainer.deepspeed.timeout_s=120")
ZERO3 = ("trainer.deepspeed.zero_stage=3", "trainer.deepspeed.stage3_param_persistence_threshold=0")


@pytest.fixture(scope="module")
def env(train_env) -> dict[str, str]:
    return {**train_env, "OMP_NUM_THREADS": "1"}


def command(module: str, run_dir: Path, *overrides: str, nproc: int = 2) -> list[str]:
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc else []
    return [sys.executable, *launcher, "-m", module, f"hydra.run.dir={run_dir}", *overrides]


def assert_same_rows(want: list[dict], got: list[dict], tol: float, loose: tuple[str, ...] = (),
                     loose_steps: tuple[int, ...] = ()) -> None:
    """Every logged value equal within ``tol`` (timings skipped; ``loose`` keys skipped at ``loose_steps``)."""
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for w, g in zip(want, got):
        assert w.keys() == g.keys(), (w["step"], w.keys() ^ g.keys())
        for key, value in w.items():
            if key.startswith("time/") or (w["step"] in loose_steps and key.endswith(loose)):
                continue
            same = (math.isclose(value, g[key], abs_tol=tol) or (math.isnan(value) and math.isnan(g[key]))) \
                if isinstance(value, float) else value == g[key]
            assert same, (w["step"], key, value, g[key])


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module, atol: float) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], atol=atol, rtol=0, msg=name)


def test_rlvr_rm_on_two_zero3_ranks_matches_one_process(tmp_path, env, tiny_model_dir):
    """57 training pairs in batches of 8: the last batch is 1 pair, so rank 1's share is a weight-0 copy (every
    rank still makes the same passes); held-out and final-statistics scoring run in shares."""
    from transformers import AutoModelForSequenceClassification

    data = write_rows(tmp_path / "prefs.jsonl", 25)  # 19 training prompts x 3 pairs
    args = (f"model.path={tiny_model_dir}", f"data.path={data}", "data.eval_fraction=0.25", "trainer.batch_size=8",
            "trainer.micro_batch_size=4", "trainer.threads=1", "trainer.optim.lr=1e-3", "trainer.eval_every=4",
            "logger.console_every=1")
    launch(command("rlvr.rm.train", tmp_path / "one", *args, nproc=0), env, tmp_path)
    two = launch(command("rlvr.rm.train", tmp_path / "two", *args, *DS, *ZERO3), env, tmp_path)
    assert "57 pairs -> 8 steps" in two.stdout and "4 pairs per rank over 2 ranks" in two.stdout
    assert two.stdout.count("rm step     3/8") == 1 and two.stdout.count("done: 8 steps") == 1  # rank 0 prints
    assert {p.name for p in tmp_path.iterdir()} == {"prefs.jsonl", "one", "two"}  # no Hydra dirs of ranks > 0
    assert_same_rows(rows(tmp_path / "one"), rows(tmp_path / "two"), tol=1e-5)
    summaries = [json.loads((tmp_path / name / "summary.json").read_text()) for name in ("one", "two")]
    assert summaries[1]["world_size"] == 2 and summaries[1]["backend"] == "deepspeed"
    assert summaries[1]["reward_stats"]["mean"] == pytest.approx(summaries[0]["reward_stats"]["mean"], abs=1e-5)
    models = [AutoModelForSequenceClassification.from_pretrained(tmp_path / name / "model") for name in ("one", "two")]
    assert_same_weights(*models, atol=1e-5)  # gathered from 2 shards, written by rank 0


def test_rlvr_dpo_on_two_zero3_ranks_matches_one_process(tmp_path, env, tiny_model_dir):
    """Precomputed reference log-probs scored in shares, each rank its half of every batch, the greedy evaluation
    and the KL in step on both ranks. At steps 0 and 1 the policy is the reference: the implicit rewards are
    float noise (~1e-6), so only there their accuracy (a sign) is not compared."""
    from transformers import AutoModelForCausalLM

    args = ("+experiment=tiny_dpo", f"policy.path={tiny_model_dir}", TRAIN_OVERRIDES, "data.num_prompts=12",
            "data.num_eval_prompts=4",
            "trainer.max_steps=3", "trainer.batch_size=8", "trainer.micro_batch_size=4", "trainer.kl_samples=1",
            "trainer.eval_every=2", "logger.console_every=1", "trainer.threads=1", "trainer.optim.lr=1e-2",
            "trainer.optim.warmup_steps=0")
    launch(command("rlvr.dpo.train", tmp_path / "one", *args, nproc=0), env, tmp_path)
    two = launch(command("rlvr.dpo.train", tmp_path / "two", *args, *DS, *ZERO3), env, tmp_path)
    assert "4 pairs per rank over 2 ranks" in two.stdout and two.stdout.count("dpo step     2/3") == 1
    assert "full fine-tuning (0.01M parameters)" in two.stdout  # counted whole, not by the rank's shard
    assert {p.name for p in tmp_path.iterdir()} == {"one", "two"}
    assert_same_rows(rows(tmp_path / "one"), rows(tmp_path / "two"), tol=1e-4, loose=("reward_accuracy",),
                     loose_steps=(0, 1))
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3
    models = [AutoModelForCausalLM.from_pretrained(tmp_path / name / "model") for name in ("one", "two")]
    assert_same_weights(*models, atol=1e-5)


def _descendants(pid: int) -> list[int]:
    from .test_distributed_runs import _descendants as every_descendant

    return every_descendant(pid)


@pytest.mark.slow  # three 2-rank launches: about 1.5-2 minutes on 2 busy cores
def test_rlvr_dpo_with_lora_on_two_ranks_killed_and_resumed_logs_the_same_values(tmp_path, env, tiny_model_dir):
    """ZeRO-2, LoRA and gradient checkpointing on 2 ranks: the whole job SIGKILLed after the checkpoint of step 2
    (adapter, per-rank optimizer shards, reference log-probs), resume=auto on 2 ranks, every logged value the same
    as an uninterrupted 2-rank run's; model/ is the merged policy."""
    from rlvr.models.lora import is_adapter_dir

    args = ("+experiment=tiny_dpo", f"policy.path={tiny_model_dir}", TRAIN_OVERRIDES, "data.num_prompts=12",
            "data.num_eval_prompts=4",
            "trainer.max_steps=8", "trainer.batch_size=8", "trainer.micro_batch_size=4", "trainer.kl_samples=1",
            "trainer.eval_every=4", "trainer.save_every=2", "logger.console_every=1", "trainer.threads=1",
            "trainer.optim.lr=1e-2", "model.lora.rank=4", "model.lora.alpha=8",
            "trainer.gradient_checkpointing=true", *DS)
    launch(command("rlvr.dpo.train", tmp_path / "whole", *args), env, tmp_path)
    killed = tmp_path / "killed"
    cmd = command("rlvr.dpo.train", killed, *args)
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    marker, deadline = killed / "checkpoints" / "step_000002" / "COMPLETE", time.time() + 300
    try:
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.02)
    finally:
        for pid in [proc.pid, *_descendants(proc.pid)]:  # torchrun starts each rank in a session of its own
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        proc.wait()
    assert marker.exists() and not (killed / "summary.json").exists()
    assert is_adapter_dir(killed / "checkpoints" / "step_000002")
    resumed = launch(cmd + ["resume=auto"], env, tmp_path)
    assert "resumed from" in resumed.stdout
    assert_same_rows(rows(tmp_path / "whole"), rows(killed), tol=1e-6)
    assert not is_adapter_dir(killed / "model") and (killed / "model" / "config.json").is_file()
