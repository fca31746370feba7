"""The embedded default run (`rlvr-train` with no arguments), timed end to end.

Prints held-out accuracy (greedy pass@1, checked by the `math` verifier) of the
warm-up model and of the GRPO-trained model, the gain, the wall time (including
building and warming up the tiny model when it is not cached yet) and the curve.

    python bench/train_default.py [--fresh] [--baseline DIR] [extra hydra overrides...]

--fresh uses an empty model cache, so the build and supervised warm-up are timed too.
--baseline DIR also runs the same command from another source tree (a checkout of an
earlier commit, e.g. `git worktree add /tmp/base HEAD~5`), right after this one on the
same machine, and prints the two side by side (paired runs: load hits both alike).
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


def run_once(tree: Path, args: list[str], fresh: bool) -> tuple[dict, float, Path]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if fresh:
        env["RLVR_CACHE"] = tempfile.mkdtemp(prefix="rlvr-cache-")
    run_dir = Path(tempfile.mkdtemp(prefix="rlvr-default-")) / "run"
    cmd = [sys.executable, "-m", "rlvr.train", f"hydra.run.dir={run_dir}", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=tree, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"rlvr-train ({tree}) failed with exit code {proc.returncode}")
    return json.loads((run_dir / "summary.json").read_text()), wall, run_dir


def report(label: str, s: dict, wall: float, run_dir: Path) -> None:
    print(f"\n== embedded default ({label}) ==")
    print(f"held-out pass@1 (greedy): {s['accuracy_before']:.3f} after warm-up -> {s['accuracy_after']:.3f} after GRPO "
          f"({100 * s['accuracy_gain']:+.1f} points)")
    if s.get("pass_at_k_before") is not None:
        print(f"held-out pass@k (sampled): {s['pass_at_k_before']:.3f} -> {s['pass_at_k_after']:.3f}")
    print(f"GRPO steps: {s['steps']}; wall time: {wall:.0f} s total (GRPO part {s['wall_s_this_process']:.0f} s)")
    print(f"curve: {s['curve']}\nrun directory: {run_dir}")


def main() -> None:
    args = sys.argv[1:]
    fresh = "--fresh" in args
    if fresh:
        args.remove("--fresh")
    baseline = None
    if "--baseline" in args:
        i = args.index("--baseline")
        baseline = Path(args[i + 1]).resolve()
        del args[i:i + 2]
    report("this tree", *run_once(REPO, args, fresh))
    if baseline is not None:
        report(f"baseline {baseline}", *run_once(baseline, args, fresh))


if __name__ == "__main__":
    main()
