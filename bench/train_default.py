"""The embedded default run (`rlvr-train` with no arguments), timed end to end.

Prints held-out accuracy (greedy pass@1, checked by the `math` verifier) of the
warm-up model and of the GRPO-trained model, the gain, the wall time (including
building and warming up the tiny model when it is not cached yet) and the curve.

    python bench/train_default.py [--fresh] [extra hydra overrides...]

--fresh uses an empty model cache, so the build and supervised warm-up are timed too.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    args = sys.argv[1:]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if "--fresh" in args:
        args.remove("--fresh")
        env["RLVR_CACHE"] = tempfile.mkdtemp(prefix="rlvr-cache-")
    run_dir = Path(tempfile.mkdtemp(prefix="rlvr-default-")) / "run"
    cmd = [sys.executable, "-m", "rlvr.train", f"hydra.run.dir={run_dir}", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"rlvr-train failed with exit code {proc.returncode}")
    s = json.loads((run_dir / "summary.json").read_text())
    print("\n== embedded default ==")
    print(f"held-out pass@1 (greedy): {s['accuracy_before']:.3f} after warm-up -> {s['accuracy_after']:.3f} after GRPO "
          f"({100 * s['accuracy_gain']:+.1f} points)")
    if s.get("pass_at_k_before") is not None:
        print(f"held-out pass@k (sampled): {s['pass_at_k_before']:.3f} -> {s['pass_at_k_after']:.3f}")
    print(f"GRPO steps: {s['steps']}; wall time: {wall:.0f} s total (GRPO part {s['wall_s_this_process']:.0f} s)")
    print(f"curve: {s['curve']}\nrun directory: {run_dir}")


if __name__ == "__main__":
    main()
