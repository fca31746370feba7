"""The DeepSpeed backend on CPU: 2 gloo ranks under torchrun match one plain-PyTorch process.

Each launch runs `tests/rlvr/ds_worker.py` (about 10-15 s on 2 cores). The very first run
on a machine compiles DeepSpeed's shared-memory op (about 1-2 minutes) into
``$RLVR_CACHE/torch_extensions`` (default ``~/.cache/rlvr/torch_extensions``); later runs
reuse it. deepspeed is never imported into the pytest process (it has broken vLLM
start-up elsewhere): the tests that need it skip when it is not installed.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from . import ds_worker

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(ds_worker.__file__)
CACHE = os.path.join(os.environ.get("RLVR_CACHE", "~/.cache/rlvr"), "torch_extensions")
needs_deepspeed = pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None,
                                     reason="deepspeed is not installed (pip install deepspeed)")
LOSS_TOL = 1e-4


@pytest.fixture(scope="module")
def data(tiny_model_dir, tmp_path_factory) -> dict[str, str]:
    """A saved rollout batch (3 prompts x 4 completions) and the model it was sampled from."""
    path = tmp_path_factory.mktemp("ds") / "batch.pt"
    ds_worker.make_batch(str(tiny_model_dir), str(path))
    return {"batch": str(path), "model": str(tiny_model_dir), "cache_dir": CACHE}


def launch(spec: dict[str, Any], out: Path, nproc: int, worker: Path = WORKER) -> list[dict[str, Any]]:
    """Run ``worker`` on ``nproc`` torchrun ranks (0: one plain process, no launcher); each rank's result."""
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    spec_path.write_text(json.dumps({**spec, "out": str(out)}))
    launcher = [] if nproc == 0 else ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, *launcher, str(worker), str(spec_path)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-4000:]}"
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(max(nproc, 1))]


def single_process(data: dict[str, str], steps: int, beta: float) -> list[dict[str, float]]:
    """The same updates through the plain TorchBackend, in this process, over the whole batch."""
    spec = {**data, "backend": "torch", "total_steps": steps, "beta": beta}
    return ds_worker.train(ds_worker.build(spec, data["model"]), spec, steps)


def rank_mean(results: list[dict[str, Any]], key: str, step: int, field: str = "stats") -> float:
    return sum(r[field][step][key] for r in results) / len(results)


@needs_deepspeed
@pytest.mark.parametrize("stage", [2, 3])
def test_two_ranks_match_single_process(data, tmp_path, stage):
    """5 steps of 3 micro-batches each per rank, clipping, a schedule and a KL reference (ZeRO-3:
    a sharded inference engine; persistence threshold 0, so the tiny model is really partitioned)."""
    steps, beta = 5, 0.04
    results = launch({**data, "backend": "deepspeed", "stage": stage, "total_steps": steps, "steps": steps,
                      "beta": beta}, tmp_path, nproc=2)
    expected = single_process(data, steps, beta)
    assert all(r["world_size"] == 2 for r in results)
    for step, want in enumerate(expected):
        assert rank_mean(results, "loss", step) == pytest.approx(want["loss"], abs=LOSS_TOL), step
        assert rank_mean(results, "kl", step) == pytest.approx(want["kl"], abs=LOSS_TOL), step
        for r in results:  # the norm and the schedule are global: the same on every rank
            assert r["stats"][step]["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-5), step
            assert r["stats"][step]["lr"] == pytest.approx(want["lr"], rel=1e-9), step
    assert expected[-1]["loss"] != pytest.approx(expected[0]["loss"], abs=1e-3)  # it did learn


@needs_deepspeed
def test_one_process_without_launcher(data, tmp_path):
    """World size 1 with no torchrun environment: 3 micro-batches + 1 step equals plain PyTorch."""
    steps = 3
    (result,) = launch({**data, "backend": "deepspeed", "stage": 2, "total_steps": steps, "steps": steps},
                       tmp_path, nproc=0)
    assert result["world_size"] == 1
    for step, want in enumerate(single_process(data, steps, 0.0)):
        assert result["stats"][step]["loss"] == pytest.approx(want["loss"], abs=1e-6)
        assert result["stats"][step]["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-5)


@needs_deepspeed
@pytest.mark.slow  # the first offload run compiles DeepSpeed's CPU Adam (about 1.5 minutes on 2 cores)
@pytest.mark.parametrize("stage, options, tol", [(2, {"dtype": "bf16"}, 5e-3),
                                                 (3, {"offload_optimizer": True, "offload_params": True}, 1e-4)])
def test_bf16_and_offload(data, tmp_path, stage, options, tol):
    """bf16 (a looser match: bf16 weights) and ZeRO-3 with parameters and optimizer state on the CPU."""
    steps = 3
    results = launch({**data, "backend": "deepspeed", "stage": stage, "total_steps": steps, "steps": steps,
                      **options}, tmp_path, nproc=2)
    for step, want in enumerate(single_process(data, steps, 0.0)):
        assert rank_mean(results, "loss", step) == pytest.approx(want["loss"], abs=tol), step


@pytest.fixture(scope="module")
def zero3_saved(data, tmp_path_factory) -> tuple[Path, list[dict[str, Any]]]:
    """Two ZeRO-3 ranks: 2 steps, a checkpoint (HF weights + DeepSpeed state), then 2 more steps."""
    root = tmp_path_factory.mktemp("zero3")
    results = launch({**data, "backend": "deepspeed", "stage": 3, "total_steps": 4, "steps": 2, "after": 2,
                      "save": str(root / "checkpoint")}, root / "run", nproc=2)
    return root / "checkpoint", results


@needs_deepspeed
def test_zero3_checkpoint_loads_with_from_pretrained(data, zero3_saved):
    from transformers import AutoModelForCausalLM

    from rlvr.learner.logprobs import token_logprobs

    checkpoint, results = zero3_saved
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32)
    batch = torch.load(data["batch"], weights_only=False)["batch"]
    with torch.no_grad():
        logp = token_logprobs(model, batch, 1.0, None, torch.device("cpu"))[0] * batch.completion_mask
    for r in results:  # the engine's log-probs at save time, computed on every rank
        trained = torch.tensor(r["logprobs"])[:, :logp.shape[1]]
        torch.testing.assert_close(logp, trained, atol=1e-5, rtol=0)
    untrained = AutoModelForCausalLM.from_pretrained(data["model"], dtype=torch.float32)
    assert not torch.equal(next(model.parameters()), next(untrained.parameters()))  # it saved the trained weights
    state = model.state_dict()
    for name, total in results[0]["named"].items():  # named_tensors: complete gathered weights
        assert float(state[name].double().sum()) == pytest.approx(total, abs=1e-6), name


@needs_deepspeed
def test_zero3_weights_stream_into_the_engine_one_gathered_tensor_at_a_time(zero3_saved):
    """`VLLMEngine.update_weights` from two ZeRO-3 ranks into an engine that reads like vLLM's loader: one
    call, every tensor complete, and at most two gathered tensors alive at once (the one read, the next)."""
    _, results = zero3_saved
    for r in results:
        push = r["push"]
        assert push["calls"] == 1 and push["loaded"].keys() == r["named"].keys()
        for name, total in r["named"].items():
            assert push["loaded"][name] == pytest.approx(total, abs=1e-6), name
        assert push["peak_live"] <= 2 and push["peak_live_numel"] <= push["two_largest_numel"]
        assert push["two_largest_numel"] < push["model_numel"] / 2  # the bound means something for this model


@needs_deepspeed
def test_resume_restores_optimizer_exactly(data, zero3_saved, tmp_path):
    """Fresh ranks from the checkpoint continue exactly as the uninterrupted ranks did."""
    checkpoint, uninterrupted = zero3_saved
    resumed = launch({**data, "backend": "deepspeed", "stage": 3, "total_steps": 4, "steps": 2, "skip": 2,
                      "resume_from": str(checkpoint)}, tmp_path, nproc=2)
    for before, after in zip(uninterrupted, resumed):
        for want, got in zip(before["after_save"], after["stats"]):
            assert got["loss"] == pytest.approx(want["loss"], abs=1e-7)
            assert got["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-6)
            assert got["lr"] == pytest.approx(want["lr"], rel=1e-9)


def test_missing_deepspeed_is_a_config_error(tiny_model_dir, monkeypatch):
    from rlvr.config import AlgorithmConfig, ConfigError, TrainerConfig
    from rlvr.learner import build_backend
    from rlvr.models import load_model

    monkeypatch.setitem(sys.modules, "deepspeed", None)  # import deepspeed -> ImportError
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)  # the backend sets it: restored afterwards
    with pytest.raises(ConfigError, match="pip install deepspeed"):
        build_backend("deepspeed", load_model(tiny_model_dir), TrainerConfig(backend="deepspeed"), AlgorithmConfig())


@pytest.mark.parametrize("stage, offload_params, message", [(1, False, "choose 2 or 3"),
                                                            (2, True, "needs zero_stage=3")])
def test_bad_deepspeed_options_are_config_errors(tiny_model_dir, stage, offload_params, message):
    from rlvr.config import AlgorithmConfig, ConfigError, TrainerConfig
    from rlvr.learner import build_backend
    from rlvr.models import load_model

    trainer = TrainerConfig(backend="deepspeed")
    trainer.deepspeed.zero_stage, trainer.deepspeed.offload_params = stage, offload_params
    with pytest.raises(ConfigError, match=message):
        build_backend("deepspeed", load_model(tiny_model_dir), trainer, AlgorithmConfig())
