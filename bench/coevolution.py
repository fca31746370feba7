"""The reward-model / policy co-evolution demo from scratch, and its figures.

    python bench/coevolution.py [--out DIR] [--cache DIR] [-- rlvr-coevolve options ...]

Runs `rlvr-coevolve` (rlvr/pipelines/coevolution.py) on a fresh model cache (a new temporary one unless
--cache is given, so the tiny Llama and its SFT warm-up are built too), then prints, per
round, the reward model's held-out pairwise accuracy (overall, on the pairs whose answers
differ in length, and per length bucket) and the policy's held-out true-preference rate
before / after, its KL and the watch's alerts, then the three targets of the demo:

  - round 1's watch raises at least one alert before its last step
  - round 2's held-out true-preference rate beats round 1's by at least 15 points
  - round 2's reward model beats round 1's on held-out pairs whose answers differ in length

and ends with exactly the line
`coevolution: round 1 true preference A -> round 2 B (round 1 alerts: N)`.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def show(result: dict) -> None:
    print(f"\n== co-evolution ({result['heldout']['rows']} held-out rows ranked by the true rule: "
          f"{result['heldout']['pairs']}) ==")
    print(f"{'round':<6} {'RM acc':>7} {'lengths differ':>15} {'chosen shorter':>15} {'chosen longer':>14} "
          f"{'true pref before -> after':>27} {'KL':>7} {'length':>13}  alerts")
    for r in result["rounds"]:
        rm, g = r["rm"], r["grpo"]
        names = ", ".join(f"{n} x{k}" for n, k in g["alerts"]["per_name"].items()) or "none"
        length = f"{g['length_before'] or 0:.0f} -> {g['length_after'] or 0:.0f}"
        print(f"{r['round']:<6} {_f(rm['pairwise_accuracy']):>7} {_f(rm['accuracy_length_differs']):>15} "
              f"{_f(rm['acc_chosen_shorter']):>15} {_f(rm['acc_chosen_longer']):>14} "
              f"{_f(g['true_preference_before']) + ' -> ' + _f(g['true_preference_after']):>27} {_f(g['kl']):>7} "
              f"{length:>13}  {g['alerts']['count']} ({names}; first at step {g['alerts']['first_step']} of "
              f"{g['steps']})")
    mined = result["rounds"][0]["mined"]
    print(f"mined from round 1: {mined['bad_cases']} bad cases -> {mined['rows']} rows ({mined['pairs']} pairs; "
          f"{mined['heldout_prompt_rows_dropped']} rows of held-out prompts dropped), x{result['config']['mined_copies']}"
          f" in round 2's data")
    fig = result["figures"]
    gain, acc = fig["true_preference_gain_points"], fig["rm_accuracy_length_differs"]
    print(f"target: round 1 alerts before its last step >= 1: {fig['round1_alerts_before_last_step']} "
          f"({'met' if fig['round1_alerts_before_last_step'] >= 1 else 'MISSED'})")
    print(f"target: true preference round 2 - round 1 >= 15 points: {'n/a' if gain is None else f'{gain:+.1f}'} "
          f"({'met' if gain is not None and gain >= 15 else 'MISSED'})")
    better = None if None in acc else acc[1] > acc[0]
    print(f"target: RM accuracy on pairs of different lengths, round 2 > round 1: {_f(acc[0])} -> {_f(acc[1])} "
          f"({'met' if better else 'MISSED'})")
    print("wall: " + ", ".join(f"{k} {v:.0f} s" for k, v in result["wall_s"].items()))
    print(f"reports: {result['rounds'][0]['grpo']['report']}  |  {result['rounds'][1]['grpo']['report']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="output directory (default: a new temporary one)")
    ap.add_argument("--cache", help="model cache (default: a fresh one under the output directory)")
    ap.add_argument("rest", nargs=argparse.REMAINDER, help="-- then rlvr-coevolve options")
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="rlvr-coevo-")).resolve()
    env = {**os.environ, "RLVR_CACHE": args.cache or str(out / "cache"), "OMP_NUM_THREADS": "1"}
    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    cmd = [sys.executable, "-m", "rlvr.pipelines.coevolution", "--out", str(out), *rest]
    print(f"$ rlvr-coevolve --out {out} {' '.join(rest)}  (RLVR_CACHE={env['RLVR_CACHE']})", flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    if proc.returncode:
        sys.exit(f"rlvr-coevolve failed with exit status {proc.returncode}; logs in {out / 'logs'}")
    print(f"demo wall time {time.perf_counter() - start:.0f} s; load average {os.getloadavg()}")
    result = json.loads((out / "coevolution.json").read_text())
    show(result)
    print(result["line"])


if __name__ == "__main__":
    main()
