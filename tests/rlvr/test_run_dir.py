"""Run-directory writers: metrics (torn lines, truncation on resume), curve, optional TensorBoard."""
from __future__ import annotations

import json

import pytest

from rlvr.config import LoggerConfig
from rlvr.eval.heldout import pass_at_k
from rlvr.run_dir import RunDir


def test_truncate_drops_rows_after_the_checkpoint_and_torn_lines(tmp_path):
    rd = RunDir(tmp_path, LoggerConfig())
    for step in range(5):
        rd.log({"step": step, "reward/mean": step / 10, "pass_rate": 0.5})
    with open(rd.metrics_path, "a") as f:
        f.write('{"step": 5, "rew')  # killed mid-write
    assert [r["step"] for r in rd.read_metrics()] == [0, 1, 2, 3, 4]
    rd.truncate_metrics(2)
    assert [r["step"] for r in rd.read_metrics()] == [0, 1, 2]


def test_curve_and_nan_safe_json(tmp_path):
    rd = RunDir(tmp_path, LoggerConfig())
    rd.log({"step": 0, "eval/pass@1": 0.1, "eval/pass@k": 0.3})
    rd.log({"step": 1, "reward/mean": float("nan"), "pass_rate": 0.2})
    rd.log({"step": 2, "reward/mean": 0.4, "pass_rate": 0.4})
    assert json.loads(rd.metrics_path.read_text().splitlines()[1])["reward/mean"] is None
    rows = [r for r in rd.read_metrics() if r.get("reward/mean") is not None or "eval/pass@1" in r]
    assert rows and rd.plot_curve().stat().st_size > 1000


def test_tensorboard_logger(tmp_path):
    pytest.importorskip("tensorboard")
    rd = RunDir(tmp_path, LoggerConfig(tensorboard=True))
    rd.open_loggers({"a": 1})
    rd.log({"step": 1, "reward/mean": 0.5})
    rd.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("n, c, k, expected", [(4, 0, 2, 0.0), (4, 4, 2, 1.0), (4, 1, 1, 0.25), (4, 1, 2, 0.5),
                                               (4, 2, 2, 1 - 1 / 6)])
def test_pass_at_k(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_wandb_logger_offline(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    rd = RunDir(tmp_path / "run", LoggerConfig(wandb=True))
    rd.open_loggers({"a": 1})
    rd.log({"step": 1, "reward/mean": 0.5})
    rd.log({"step": 2, "reward/mean": 0.75})
    rd.close()
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert runs and list(runs[0].glob("*.wandb"))
