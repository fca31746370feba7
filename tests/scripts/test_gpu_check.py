"""scripts/gpu_check.sh on a machine without a GPU (one line, exit 2), its summary's arithmetic, and
(slow) its CPU dry run, GPU_CHECK_CPU=1, end to end with the tiny sizes."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu_check.sh"


def _summary_module():
    spec = importlib.util.spec_from_file_location("gpu_check_summary", REPO / "scripts" / "gpu_check_summary.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check(tmp_path: Path, timeout: int, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k != "OUT"}
    full.update({"GPU_CHECK_PYTHON": sys.executable, "GPU_CHECK_DIR": str(tmp_path / "work"),
                 "GPU_CHECK_WHEELS": str(tmp_path / "no_wheels"), **env})  # never the 3.12 wheels of .gpu_wheels/
    return subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=full, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the check would run")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(tmp_path):
    proc = _check(tmp_path, timeout=120)
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: no CUDA GPU here") and "GPU_CHECK_CPU=1" in lines[0]
    assert not (tmp_path / "work").exists()  # nothing was set up


def test_without_torch_it_says_so_in_one_line_and_exits_2(tmp_path):
    proc = _check(tmp_path, timeout=60, GPU_CHECK_PYTHON=str(tmp_path / "no-python"))
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "cannot import torch" in lines[0], proc.stderr


def test_summary_figures_skip_the_warm_up_step_and_count_updates(tmp_path):
    summary = _summary_module()
    rows = [{"step": 0, "eval/reward/mean": 1.0, "time/eval": 1.0},
            {"step": 1, "time/step": 9.0, "tokens_per_s": 100.0, "groups_trained": 8, "memory/gpu_peak_gib": 5.0,
             "rollout/logprob_diff_mean": 1e-3, "rollout/logprob_diff_max": 0.5, "zero_variance_frac": 0.0},
            {"step": 2, "time/step": 2.0, "tokens_per_s": 400.0, "groups_trained": 0, "memory/gpu_peak_gib": 7.0,
             "rollout/logprob_diff_mean": 3e-3, "rollout/logprob_diff_max": 0.25, "zero_variance_frac": 1.0},
            {"step": 3, "time/step": 4.0, "tokens_per_s": 200.0, "groups_trained": 8, "memory/gpu_peak_gib": 6.0,
             "rollout/logprob_diff_mean": 2e-3, "rollout/logprob_diff_max": 0.1, "zero_variance_frac": 0.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    f = summary.figures(tmp_path)
    assert (f["steps"], f["updates"]) == (3, 2)
    assert f["step_s"] == 3.0 and f["tokens_per_s"] == 300.0  # steps 2-3: the first step warms up
    assert f["gpu_peak_gib"] == 7.0 and f["logprob_diff_max"] == 0.5
    assert f["logprob_diff_mean"] == pytest.approx(2e-3)


def test_summary_names_why_a_run_failed(tmp_path):
    summary = _summary_module()
    cases = {"hydra": ("Could not override 'model.lora'.\nTo append to your config use +model.lora=1\n"
                       "Key 'lora' not in 'ModelConfig'\n", "Could not override 'model.lora'. Key 'lora' not in"),
             "rlvr": ("batch: ...\nerror: model.lora.rank: no module named q_proj\n", "error: model.lora.rank"),
             "raised": ("Traceback (most recent call last):\n  File x\ntorch.OutOfMemoryError: CUDA out of memory\n"
                        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n",
                        "torch.OutOfMemoryError: CUDA out of memory")}
    for name, (text, expected) in cases.items():
        (tmp_path / name).write_text(text)
        assert summary.failure_reason(tmp_path / name).startswith(expected), name


@pytest.mark.slow
def test_cpu_dry_run_reports_every_configuration(tmp_path):
    """GPU_CHECK_CPU=1 with the configurations that run without DeepSpeed's CPU op build: full_bf16
    (the keys that exist today) trains every step; each other one is ok or failed with a reason."""
    out = tmp_path / "out"
    proc = _check(tmp_path, timeout=600, GPU_CHECK_CPU="1", OUT=str(out),
                  GPU_CHECK_ONLY="full_bf16,full_gc,lora16_gc")
    log = proc.stdout + proc.stderr
    assert proc.returncode in (0, 1), log[-3000:]
    for header in ("==== set-up ====", "==== Part A", "==== Part B", "==== summary ===="):
        assert header in proc.stdout, log[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    runs = {r["name"]: r for r in report["configurations"]}
    assert report["mode"] == "cpu-dry-run" and set(runs) == {"full_bf16", "full_gc", "lora16_gc"}
    full = runs["full_bf16"]
    assert full["status"] == "ok" and full["updates"] == full["steps"] == 2, log[-3000:]
    assert full["tokens_per_s"] > 0 and full["logprob_diff_mean"] is not None and full["gpu_peak_gib"] is None
    for run in runs.values():
        assert run["status"] in ("ok", "failed") and (run["status"] == "ok" or run["reason"]), run
    assert (proc.returncode == 0) == all(r["status"] == "ok" for r in runs.values())
    assert (out / "gpu_check_logs.txt").is_file()
