"""Tools matter: `+experiment=tiny_tools` (the python tool inside the rollout) vs its control
`+experiment=tiny_tools_notools` (same task, model and training, no tools), side by side.

The task is the built-in products of 3-4 digit numbers (data=products), beyond what the tiny Llama
computes in its head. Each preset is a whole `rlvr-train` run in its own process, one after the other
in this one invocation, so both meet the same machine. Each preset's supervised warm-up (capped by
model.sft.stop_at_accuracy; cached) is built first by a 1-step run and timed on its own. Printed for
each: greedy held-out accuracy at the SFT start and after GRPO, the gain; tool calls per completion
and the tool error rate at the end (last training step, and the final held-out evaluation); the
warm-up's and the run's wall time; seconds per step (median of metrics.jsonl's ``time/step``, with
the generate / update split); then the step-time overhead of tool calls (tools / no tools) and the
issue's targets: the tool-using policy at least +20 points above its SFT start and at least +20
points above the control after the same training.

    python bench/tools_task.py [--quick] [--only tools|notools] [overrides...]

``--quick``: 4 steps, 16 held-out problems (a smoke run of the script, not a figure). Extra arguments
are Hydra overrides given to both runs (e.g. ``trainer.total_steps=60 trainer.seed=1``). Threads: the
tiny preset's ``trainer.threads=1``; set OMP_NUM_THREADS=1 too on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PRESETS = {"tools": "tiny_tools", "notools": "tiny_tools_notools"}
QUICK = ["trainer.total_steps=4", "data.eval_size=16", "trainer.save_every=0", "trainer.sample_every=0",
         "trainer.eval.every=0"]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def load() -> str:
    return "load " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def train(args: list[str], log: Path) -> float:
    """One `rlvr-train` process; its wall seconds (exits with the log's tail when it fails)."""
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "rlvr.train", *args], env=env(), cwd=REPO, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    if code:
        sys.exit(f"rlvr-train {' '.join(args)} failed (exit {code}); log {log}:\n{log.read_text()[-3000:]}")
    return time.perf_counter() - start


def run(name: str, overrides: list[str], root: Path) -> dict:
    preset = f"+experiment={PRESETS[name]}"
    # data.eval_size stays: the held-out problems are excluded from training, so it is part of the warm-up's key
    warm = train([preset, f"hydra.run.dir={root / (name + '-warm-up')}", "trainer.total_steps=1",
                  "trainer.save_every=0", *overrides], root / f"{name}-warm-up.log")
    run_dir = root / name
    load_start = load()
    print(f"-- {name}: rlvr-train {preset} {' '.join(overrides)} ({load_start}; warm-up {warm:.0f} s)", flush=True)
    wall = train([preset, f"hydra.run.dir={run_dir}", *overrides], root / f"{name}.log")
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [x for x in rows if "time/step" in x]
    evals = [x for x in rows if "eval/tools/calls_per_completion" in x]
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    return {"summary": json.loads((run_dir / "summary.json").read_text()), "warm_s": warm, "wall_s": wall,
            "completions": cfg["trainer"]["prompts_per_step"] * cfg["algorithm"]["group_size"],
            "load_start": load_start, "load_end": load(), "last": steps[-1], "eval": evals[-1] if evals else {},
            "step": statistics.median(x["time/step"] for x in steps),
            "generate": statistics.median(x["time/generate"] for x in steps),
            "update": statistics.median(x["time/update"] for x in steps)}


def report(name: str, r: dict) -> None:
    s, last, ev = r["summary"], r["last"], r["eval"]
    tools = ""
    if "tools/calls_per_completion" in last:
        tools = (f" | last step: {last['tools/calls_per_completion']:.2f} calls per completion, tool error rate "
                 f"{last['tools/error_rate']:.3f}, {1e3 * last['tools/exec_seconds']:.0f} ms per call")
    if ev:
        tools += (f" | final held-out: {ev['eval/tools/calls_per_completion']:.2f} calls per completion, error rate "
                  f"{ev['eval/tools/error_rate']:.3f}")
    print(f"{name:>7}: held-out pass@1 {s['accuracy_before']:.3f} (SFT start) -> {s['accuracy_after']:.3f} "
          f"({100 * s['accuracy_gain']:+.1f} points) in {s['steps']} steps{tools}")
    print(f"{'':>7}  warm-up {r['warm_s']:.0f} s (cached when short), run {r['wall_s']:.0f} s | {r['step']:.3f} s/step "
          f"median (generate {r['generate']:.3f}, update {r['update']:.3f}) | {r['load_start']} at start, "
          f"{r['load_end']} at end")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 steps, 16 held-out problems: a smoke run")
    ap.add_argument("--only", choices=sorted(PRESETS))
    a, overrides = ap.parse_known_args()
    overrides = (QUICK if a.quick else []) + overrides
    root = Path(tempfile.mkdtemp(prefix="rlvr-tools-task-"))
    start = time.perf_counter()
    results = {n: run(n, overrides, root) for n in PRESETS if a.only in (None, n)}
    print(f"\n== +experiment=tiny_tools (python tool in the rollout) vs tiny_tools_notools (control), same task "
          f"and training{' (quick)' if a.quick else ''}; {os.cpu_count()} CPUs; {time.perf_counter() - start:.0f} s "
          f"in all; run directories under {root} ==")
    for n, r in results.items():
        report(n, r)
    if len(results) < 2:
        return
    t, c = results["tools"], results["notools"]
    last = t["last"]
    calls = last["tools/calls_per_completion"] * t["completions"]
    print(f"step-time overhead of tool calls: {t['step']:.3f} vs {c['step']:.3f} s/step ({t['step'] / c['step']:.2f}x; "
          f"generate {t['generate'] / max(c['generate'], 1e-9):.2f}x); the last tools step ran {calls:.0f} calls, "
          f"{calls * last['tools/exec_seconds']:.2f} s of sandbox time in all (summed over workers). The control "
          f"updates only when a group's rewards differ: its update time is that of the steps it learns on")
    after, start_acc, control = (t["summary"]["accuracy_after"], t["summary"]["accuracy_before"],
                                 c["summary"]["accuracy_after"])
    if not a.quick:
        for what, gap in (("its SFT start", after - start_acc), ("the no-tools control", after - control)):
            print(f"target: tools >= +20 points above {what}: {'met' if gap >= 0.20 - 1e-9 else 'MISSED'} "
                  f"({100 * gap:+.1f})")


if __name__ == "__main__":
    main()
