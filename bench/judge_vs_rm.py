"""GRPO rewarded by the trained reasoning judge (group mode) vs by the scalar tiny reward model, side by side.

One invocation trains both rewards on the built-in preference task, or reuses them:
the tiny reasoning judge (`rlvr-train +experiment=tiny_genrm`; its last checkpoint) unless
``--judge DIR``, and the tiny reward model (`rlvr-rm +experiment=tiny_rm`) unless ``--rm DIR``;
then runs GRPO against each from the same SFT-warmed policy, with the same seed, task, leash and
steps (`+experiment=tiny_judge_grpo` and `+experiment=tiny_rm_grpo`), one after the other so both
meet the same machine. The warm-up is built once before the two runs (a 1-step run, discarded),
so neither pays for it. Printed for each:

- held-out true preference (the task's true rule on the greedy answers to its 100 held-out
  prompts, from RUN/eval/step_<N>.jsonl) before and after GRPO, each with its 95% Wilson interval,
  and the change with a 95% paired bootstrap interval (the same prompts, paired by index;
  `rlvr.eval.stats`); and the two runs' final rates against each other, paired the same way;
- the watch's alerts (summary.json `alerts`: name, first step, flagged steps);
- wall time of the GRPO run, seconds per step (median of ``time/step``, with the reward's
  share), and for the judge the requests it was sent per step (``judge/<label>/calls``).

    python bench/judge_vs_rm.py [--judge DIR] [--rm DIR] [--threads 1] [--fresh] [--quick] [overrides...]

Extra arguments are Hydra overrides given to both GRPO runs (``trainer.total_steps=20``: the
steps used are printed). ``--quick``: a smoke run of the script (tiny stages, 2 GRPO steps), not a figure.

Measured with tiny_genrm's current judge (``python bench/judge_vs_rm.py --judge RUN/checkpoints/step_000030``,
the judge from ``python bench/genrm.py``: 30 GRPO steps, held-out agreement 0.755 -> 0.970, order gap 0.000;
610 s in all, trainer.threads=1 everywhere, load average 0.7-1.5 on the shared 2-core machine; 100 held-out
prompts, greedy):

    RM: pairwise accuracy 0.961 (57 s)
    GRPO, 30 steps    before                   after                    change (paired)        alerts  s/step  wall
    judge reward      0.290 [0.210, 0.385]     1.000 [0.963, 1.000]     +71.0 [+62.0, +80.0]   none    11.65   423 s
    tiny_rm reward    0.290 [0.210, 0.385]     0.950 [0.888, 0.978]     +66.0 [+55.0, +77.0]   none     0.99    47 s
    RM - judge after: -5.0 points [-10.0, -1.0]
    judge: 522 requests per step (median; 263-875), reward 10.79 s of the step (the 1.06M judge)

With the earlier 0.14M judge (``--fresh``: 857 s in all, load 3.5-4.4; that judge 40 steps, agreement 0.650 ->
0.705, order gap 0.230): judge 0.290 -> 0.980 [0.930, 0.994] (+69.0 [+60, +78]) vs RM 0.950, RM - judge -3.0
[-8.0, +2.0]; 4.03 vs 1.11 s/step (532 requests a step, reward 3.01 s), 169 vs 64 s wall; again with
``trainer.seed=1`` (load 1.2-3.9) both 0.310 -> 0.990. A run before the warm-up cache key held the traces'
version for rlvr-train (fixed in 194d734) reused a warm-up built from older traces: hence ``--fresh`` or
``--judge`` for figures.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from process_memory import load, measured_stage  # noqa: E402

from rlvr.eval.heldout import read_eval_records  # noqa: E402
from rlvr.eval.stats import paired_bootstrap, wilson_interval  # noqa: E402

TRUTH = "preference_rule"  # the task's true rule: a weight-0 source of both presets
QUICK = {"judge": ["model.sft.steps=20", "trainer.total_steps=2", "data.eval_size=8"],
         "rm": ["data.num_prompts=64", "data.num_eval_prompts=16", "trainer.epochs=1"],
         "grpo": ["trainer.total_steps=2", "trainer.prompts_per_step=4", "trainer.micro_batch_size=32",
                  "data.eval_size=8", "model.sft.steps=20", "trainer.eval.every=0", "trainer.sample_every=0"]}


CACHE: dict[str, str] = {}  # --fresh: RLVR_CACHE of every stage


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **CACHE}


def stage(name: str, module: str, args: list[str], root: Path) -> float:
    """Run one stage to completion (its output in ROOT/NAME.log); its wall time in seconds."""
    log = root / f"{name}.log"
    cmd = [sys.executable, "-m", module, *args]
    print(f"-- {name}: {' '.join(cmd[2:])} ({load()})", flush=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(cmd, env=env(), cwd=REPO, stdout=out, stderr=out)
    if done.returncode:
        sys.exit(f"{name} failed (exit {done.returncode}); log: {log}\n" + log.read_text()[-3000:])
    return time.perf_counter() - start


def train_judge(root: Path, threads: list[str], quick: list[str]) -> tuple[Path, dict]:
    run = root / "genrm"
    wall = stage("judge", "rlvr.train", ["+experiment=tiny_genrm", f"hydra.run.dir={run}", *threads, *quick], root)
    last = sorted((run / "checkpoints").glob("step_*"))[-1]
    s = json.loads((run / "summary.json").read_text())
    return last, {"wall_s": wall, "agreement": (s["judge_agreement_before"], s["judge_agreement_after"]),
                  "parse": s["judge_parse_rate_after"], "gap": s["judge_order_gap_after"], "steps": s["steps"]}


def train_rm(root: Path, threads: list[str], quick: list[str]) -> tuple[Path, dict]:
    run = root / "rm"
    wall = stage("rm", "rlvr.rm.train", ["+experiment=tiny_rm", f"hydra.run.dir={run}", *threads, *quick], root)
    s = json.loads((run / "summary.json").read_text())
    return Path(s["model_dir"]), {"wall_s": wall, "pairwise_accuracy": s["pairwise_accuracy"]}


def truth_rows(run_dir: Path) -> tuple[int, int, dict[int, float], dict[int, float]]:
    """(first step, last step, index -> true preference at each) from the run's held-out records."""
    records = read_eval_records(run_dir)
    first, last = min(records), max(records)

    def by_index(rows: list[dict]) -> dict[int, float]:
        return {int(r["index"]): float(r["scores"][TRUTH]) for r in rows if r["scores"].get(TRUTH) is not None}
    return first, last, by_index(records[first]), by_index(records[last])


def grpo(name: str, preset: str, path_key: str, path: Path, overrides: list[str], root: Path) -> dict:
    run_dir = root / f"grpo_{name}"  # beside the stages' own run directories (genrm, rm)
    log = root / f"grpo_{name}.log"
    cmd = [sys.executable, "-m", "rlvr.train", f"+experiment={preset}", f"{path_key}={path}",
           f"hydra.run.dir={run_dir}", *overrides]
    r, steps = measured_stage(name, cmd, run_dir, log, env=env(), cwd=REPO)
    calls = [x["judge/judge/calls"] for x in steps if "judge/judge/calls" in x]
    first, last, before, after = truth_rows(run_dir)
    r.update({"first": first, "last": last, "before": before, "after": after,
              "step_median": statistics.median(x["time/step"] for x in steps),
              "reward_median": statistics.median(x["time/reward"] for x in steps),
              "excluded": statistics.mean(x.get("reward/excluded_frac", 0.0) for x in steps),
              "calls": (statistics.median(calls), min(calls), max(calls)) if calls else None,
              "fallbacks": log.read_text().count("are judged as a tournament of pairs")})
    return r


def rate(values: dict[int, float]) -> str:
    n, k = len(values), int(round(sum(values.values())))
    low, high = wilson_interval(k, n)
    return f"{k / n:.3f} [{low:.3f}, {high:.3f}] ({k}/{n})" if n else "n/a"


def paired(a: dict[int, float], b: dict[int, float]) -> str:
    common = sorted(set(a) & set(b))
    change, low, high = paired_bootstrap([a[i] for i in common], [b[i] for i in common])
    return f"{100 * change:+.1f} points [{100 * low:+.1f}, {100 * high:+.1f}] over {len(common)} prompts"


def alerts(summary: dict) -> str:
    raised = summary.get("alerts") or {}
    return ", ".join(f"{n} (first step {a['first_step']}, {a['steps']} steps flagged)" for n, a in raised.items()) \
        or "none"


def report(name: str, r: dict) -> None:
    s = r["summary"]
    print(f"{name}: {s['steps']} GRPO steps | held-out true preference (greedy, the true rule):")
    print(f"    before (step {r['first']}): {rate(r['before'])}")
    print(f"    after (step {r['last']}):  {rate(r['after'])}")
    print(f"    change: {paired(r['before'], r['after'])} (paired bootstrap, 95%)")
    print(f"    watch alerts: {alerts(s)}")
    calls = "" if r["calls"] is None else (f" | judge calls per step: median {r['calls'][0]:.0f} (min "
                                           f"{r['calls'][1]:.0f}, max {r['calls'][2]:.0f}); groups asked again as "
                                           f"pairs after a too-long group request: "
                                           f"{'yes' if r['fallbacks'] else 'never'}")
    kl = "n/a (no update)" if s.get("kl") is None else f"{s['kl']:.3f}"
    print(f"    wall {r['wall_s']:.0f} s | {r['step_median']:.2f} s/step median (reward {r['reward_median']:.2f}) | "
          f"KL to SFT {kl} | excluded rows {r['excluded']:.3f} | peak RSS {r['peak_mib']:.0f} MiB{calls} | "
          f"{r['load_start']} at start, {r['load_end']} at end")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--judge", help="a trained judge directory (skips rlvr-train +experiment=tiny_genrm)")
    ap.add_argument("--rm", help="a trained reward-model directory (skips rlvr-rm +experiment=tiny_rm)")
    ap.add_argument("--threads", type=int, default=1, help="trainer.threads of every stage (1 on a busy machine)")
    ap.add_argument("--quick", action="store_true", help="tiny stages and 2 GRPO steps: a smoke run, not a figure")
    ap.add_argument("--fresh", action="store_true", help="an empty model cache: every warm-up built from this tree "
                                                         "(a cached one is keyed by its config, not by the code)")
    a, overrides = ap.parse_known_args()
    if a.fresh:
        CACHE["RLVR_CACHE"] = tempfile.mkdtemp(prefix="rlvr-judge-vs-rm-cache-")
    root = Path(tempfile.mkdtemp(prefix="rlvr-judge-vs-rm-"))
    threads = [f"trainer.threads={a.threads}"]
    started = time.perf_counter()
    judge_info, rm_info = None, None
    if a.judge:
        judge = Path(a.judge)
    else:
        judge, judge_info = train_judge(root, threads, QUICK["judge"] if a.quick else [])
    if a.rm:
        rm = Path(a.rm)
    else:
        rm, rm_info = train_rm(root, threads, QUICK["rm"] if a.quick else [])
    overrides = [*threads, *(QUICK["grpo"] if a.quick else []), *overrides]
    # the warm-up's cache key holds the whole data block: the held-out size too, so it stays as in the runs
    stage("warm-up", "rlvr.train", ["+experiment=tiny_rm_grpo", f"reward.sources.0.path={rm}", *overrides,
                                    "trainer.total_steps=1", f"hydra.run.dir={root / 'warm-up'}"], root)
    results = {"judge": grpo("judge", "tiny_judge_grpo", "reward.sources.0.options.path", judge, overrides, root),
               "rm": grpo("rm", "tiny_rm_grpo", "reward.sources.0.path", rm, overrides, root)}
    print(f"\n== GRPO on the preference task: rewarded by the tiny reasoning judge (group mode) vs the tiny reward "
          f"model{' (quick)' if a.quick else ''}; {os.cpu_count()} CPUs; under {root} ==")
    if judge_info:
        print(f"judge: {judge} | tiny_genrm, {judge_info['steps']} GRPO steps: held-out agreement "
              f"{judge_info['agreement'][0]:.3f} -> {judge_info['agreement'][1]:.3f}, parse rate "
              f"{judge_info['parse']:.3f}, order gap {judge_info['gap']:.3f} | {judge_info['wall_s']:.0f} s")
    else:
        print(f"judge: {judge} (given)")
    print(f"reward model: {rm} | " + (f"tiny_rm: held-out pairwise accuracy {rm_info['pairwise_accuracy']:.3f} | "
                                      f"{rm_info['wall_s']:.0f} s" if rm_info else "(given)"))
    for name, r in results.items():
        report(name, r)
    j, m = results["judge"], results["rm"]
    print(f"judge vs reward model, after GRPO (reward model - judge): {paired(j['after'], m['after'])}")
    print(f"judge / reward model: wall {j['wall_s'] / m['wall_s']:.2f}x, s/step "
          f"{j['step_median'] / m['step_median']:.2f}x | whole bench {time.perf_counter() - started:.0f} s | {load()}")


if __name__ == "__main__":
    main()
