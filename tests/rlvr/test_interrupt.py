"""Ctrl-C in rlvr-train: the step in flight finishes, a checkpoint is saved, one line, exit 130; the run
then resumes from it."""
from __future__ import annotations

import json
import signal
import subprocess
import time

from .conftest import REPO, train_command


def _steps(run_dir) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [r["step"] for r in map(json.loads, path.read_text().splitlines()) if "zero_variance_frac" in r]


def test_ctrl_c_saves_a_checkpoint_says_so_in_one_line_and_the_run_resumes(tmp_path, train_env):
    run_dir = tmp_path / "run"
    cmd = train_command(run_dir, "trainer.total_steps=200", "trainer.save_every=0", "trainer.eval.every=0")
    proc = subprocess.Popen(cmd, env=train_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while len(_steps(run_dir)) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("interrupted after step")]
    assert len(lines) == 1 and "resume=auto" in lines[0] and "Traceback" not in err
    step = _steps(run_dir)[-1]
    assert f"interrupted after step {step}:" in lines[0]
    assert (run_dir / "checkpoints" / f"step_{step:06d}" / "COMPLETE").exists()
    resumed = subprocess.run(train_command(run_dir, f"trainer.total_steps={step + 2}", "trainer.save_every=0",
                                           "trainer.eval.every=0", "resume=auto"),
                             env=train_env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _steps(run_dir)[-3:] == [step, step + 1, step + 2]
