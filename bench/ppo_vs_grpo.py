"""PPO with a critic (`+experiment=tiny_ppo`) vs the embedded default GRPO run, same task and steps, side by side.

Each algorithm is a whole `rlvr-train` run in its own process (the embedded default's arithmetic task,
tiny Llama and cached supervised warm-up; 400 steps of 32 prompts; greedy held-out accuracy on 256
problems before and after), one after the other in this one invocation so both meet the same machine.
The warm-up is built once before the runs (both start from the same cached model), so neither pays for
it. Printed for each: held-out gain (pass@1 after - before), wall time of the run, seconds per step
(median of metrics.jsonl's ``time/step``, with the generate / update split), peak memory of the run's
whole process tree (summed RSS polled from /proc, and the largest single process's ``ru_maxrss``;
`process_memory.py`), and the load average at the start and end of each run; for PPO also its last
explained variance and KL coefficient.

    python bench/ppo_vs_grpo.py [--quick] [--only grpo|ppo] [--ppo PRESET] [overrides...]
    python bench/ppo_vs_grpo.py --backends [--quick] [overrides...]     # PPO under torch vs deepspeed (1 process)

``--quick``: 4 steps and 16 held-out problems (a smoke run of the script, not a figure). Extra
arguments are Hydra overrides given to both runs (e.g. ``trainer.seed=1``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from process_memory import measured_stage  # noqa: E402

QUICK = ["trainer.total_steps=4", "data.eval_size=16", "trainer.save_every=0", "trainer.sample_every=0",
         "trainer.eval.every=0", "algorithm.critic.warmup_steps=1"]  # the warm-up key is ignored by GRPO


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def warm_up(root: Path, overrides: list[str]) -> None:
    """Build the cached warm-up once, outside the measured runs (a 1-step run; its output is discarded). The data
    block stays the runs' own: it is part of the warm-up's cache key (data.eval_size=1 here built a warm-up the
    measured runs never used)."""
    cmd = [sys.executable, "-m", "rlvr.train", f"hydra.run.dir={root / 'warm-up'}", "trainer.total_steps=1",
           *overrides]
    done = subprocess.run(cmd, env=env(), cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"the warm-up run failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def run(name: str, preset: list[str], overrides: list[str], root: Path) -> dict:
    run_dir = root / name
    log = root / f"{name}.log"
    cmd = [sys.executable, "-m", "rlvr.train", *preset, f"hydra.run.dir={run_dir}", *overrides]
    r, steps = measured_stage(name, cmd, run_dir, log, env=env(), cwd=REPO)
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    r["batch"] = (f"{cfg['trainer']['prompts_per_step']} prompts x {cfg['algorithm']['group_size']} completions "
                  f"per step")
    r.update({"last": steps[-1],
              "step_median": statistics.median(x["time/step"] for x in steps),
              "generate": statistics.median(x["time/generate"] for x in steps),
              "update": statistics.median(x["time/update"] for x in steps)})
    return r


def report(name: str, r: dict) -> None:
    s, last = r["summary"], r["last"]
    print(f"{name:>4}: held-out pass@1 {s['accuracy_before']:.3f} -> {s['accuracy_after']:.3f} "
          f"({100 * s['accuracy_gain']:+.1f} points) in {s['steps']} steps of {r['batch']} | "
          f"wall {r['wall_s']:.0f} s | "
          f"{r['step_median']:.3f} s/step median (generate {r['generate']:.3f}, update {r['update']:.3f}) | peak RSS "
          f"{r['peak_mib']:.0f} MiB whole tree ({r['largest_mib']:.0f} MiB largest process) | "
          f"{r['load_start']} at start, {r['load_end']} at end")
    if "ppo/explained_variance" in last:
        print(f"      last step: ppo/explained_variance {last['ppo/explained_variance']:.3f}, ppo/value_loss "
              f"{last['ppo/value_loss']:.4f}, ppo/kl {last['ppo/kl']:.3f} (target {last['ppo/kl_target']:g}), "
              f"ppo/kl_coef {last['ppo/kl_coef']:.4f}")


def compare_backends(preset: str, overrides: list[str], root: Path) -> None:
    """The PPO preset on one process under each backend (the critic: plain AdamW, or a DeepSpeed engine)."""
    results = {b: run(f"ppo_{b}", [f"+experiment={preset}", f"trainer.backend={b}"], overrides, root)
               for b in ("torch", "deepspeed")}
    print(f"\n== +experiment={preset} (PPO) under trainer.backend=torch vs deepspeed (ZeRO-2, 1 process); "
          f"{os.cpu_count()} CPUs; run directories under {root} ==")
    for b, r in results.items():
        report(b[:4], r)
    t, d = results["torch"], results["deepspeed"]
    print(f"deepspeed / torch: wall {d['wall_s'] / t['wall_s']:.2f}x, s/step (median) "
          f"{d['step_median'] / t['step_median']:.2f}x, peak RSS (whole tree) {d['peak_mib'] / t['peak_mib']:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 steps, 16 held-out problems: a smoke run")
    ap.add_argument("--only", choices=["grpo", "ppo"])
    ap.add_argument("--ppo", default="tiny_ppo", help="the PPO preset (conf/experiment/NAME.yaml)")
    ap.add_argument("--backends", action="store_true", help="PPO under trainer.backend=torch vs deepspeed instead")
    a, overrides = ap.parse_known_args()
    overrides = (QUICK if a.quick else []) + overrides
    root = Path(tempfile.mkdtemp(prefix="rlvr-ppo-vs-grpo-"))
    warm_up(root, overrides)
    if a.backends:
        compare_backends(a.ppo, overrides, root)
        return
    presets = {"grpo": [], "ppo": [f"+experiment={a.ppo}"]}
    results = {w: run(w, p, overrides, root) for w, p in presets.items() if a.only in (None, w)}
    print(f"\n== the embedded default (GRPO) vs +experiment={a.ppo} (PPO), same task and steps"
          f"{' (quick)' if a.quick else ''}; {os.cpu_count()} CPUs; run directories under {root} ==")
    for w, r in results.items():
        report(w, r)
    if len(results) == 2:
        g, p = results["grpo"], results["ppo"]
        print(f"PPO / GRPO: wall {p['wall_s'] / g['wall_s']:.2f}x, peak RSS (whole tree) "
              f"{p['peak_mib'] / g['peak_mib']:.2f}x, s/step (median) {p['step_median'] / g['step_median']:.2f}x")
    if "ppo" in results and not a.quick:
        gain = results["ppo"]["summary"]["accuracy_gain"]
        print(f"target PPO held-out gain >= +20 points: {'met' if gain >= 0.20 else 'MISSED'} ({100 * gain:+.1f})")


if __name__ == "__main__":
    main()
