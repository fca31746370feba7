"""The embedded default (`rlvr-train` with no arguments) end to end: slow, run with `-m slow`."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_default_run_improves_held_out_accuracy_by_20_points(tmp_path, train_env):
    run_dir = tmp_path / "default"
    proc = subprocess.run([sys.executable, "-m", "rlvr.train", f"hydra.run.dir={run_dir}"], cwd=REPO,
                          env=train_env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["accuracy_gain"] >= 0.20, summary
    assert (run_dir / "curve.png").stat().st_size > 1000
