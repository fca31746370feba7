"""The embedded default run (`rlvr-train` with no arguments), timed end to end.

Prints held-out accuracy (greedy pass@1, checked by the `math` verifier) of the
warm-up model and of the GRPO-trained model, the gain, the wall time (including
building and warming up the tiny model when it is not cached yet) and the curve.

    python bench/train_default.py [--fresh] [--baseline DIR] [extra hydra overrides...]

--fresh uses an empty model cache, so the build and supervised warm-up are timed too.
--baseline DIR also runs the same command from another source tree (a checkout of an
earlier commit, e.g. `git worktree add /tmp/base HEAD~5`), right after this one on the
same machine, and prints the two side by side (paired runs: load hits both alike), then
compares their metrics.jsonl row by row (machine-time metrics aside): a refactor that
moves code must leave a seeded run identical. Both runs share one cache (fresh or not),
so the line about warm-up cache entries shows whether the baseline reused this tree's
warm-up (its cache key unchanged).
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


SKIP = ("time/", "tokens_per_s", "wall_s")  # machine-time metrics (rlvr.rl.loop.DETERMINISTIC_SKIP)


def run_once(tree: Path, args: list[str], cache: str | None) -> tuple[dict, float, Path]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    if cache:
        env["RLVR_CACHE"] = cache
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


def compare_metrics(a: Path, b: Path) -> None:
    """Rows of two runs' metrics.jsonl that differ, machine-time metrics aside."""
    def rows(run_dir: Path) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if not any(s in k for s in SKIP)}
                for line in (run_dir / "metrics.jsonl").read_text().splitlines()]

    ra, rb = rows(a), rows(b)
    differing = [i for i, (x, y) in enumerate(zip(ra, rb)) if x != y] + list(range(min(len(ra), len(rb)),
                                                                                     max(len(ra), len(rb))))
    print(f"\nmetrics.jsonl: {len(ra)} vs {len(rb)} rows; {len(differing)} differ (machine-time metrics aside)")
    for i in differing[:3]:
        x, y = (ra[i] if i < len(ra) else {}), (rb[i] if i < len(rb) else {})
        print(f"  row {i}: " + ", ".join(f"{k}: {x.get(k)} vs {y.get(k)}" for k in sorted(set(x) | set(y))
                                         if x.get(k) != y.get(k)))


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
    cache = tempfile.mkdtemp(prefix="rlvr-cache-") if fresh else os.environ.get("RLVR_CACHE")
    ours = run_once(REPO, args, cache)
    report("this tree", *ours)
    if baseline is not None:
        theirs = run_once(baseline, args, cache)
        report(f"baseline {baseline}", *theirs)
        compare_metrics(ours[2], theirs[2])
        root = Path(os.path.expanduser(cache or "~/.cache/rlvr"))
        print(f"warm-up cache entries in {root}: {sorted(p.name for p in root.glob('warmup-*'))}")


if __name__ == "__main__":
    main()
