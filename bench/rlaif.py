"""RLAIF on the built-in preference task, judged by SmolLM2-135M-Instruct under a written constitution.

Runs `rlvr-rlaif` once (its own process; every stage's log under OUT/logs/) and prints what
`OUT/rlaif.json` holds: the label stage's counts (pairs, decided, ties or order flips, no verdict),
the judge's parse rate and position inconsistency, its agreement with the task's true rule (the
`preference_rule` verifier's `true_score`; a judge never trained on the task's labels, under
`conf/constitution/default.yaml`, written for assistants in general) with a 95% Wilson interval,
the reward model's held-out pairwise accuracy (``--rm-heldout truth``, the default: on
``--heldout-rows`` pairs over the task's held-out prompts ranked by the true rule, so the
figure is the RM's agreement with the truth, not with its judge; ``split``: on rlvr-rm's own
held-out share of the judge's labels), and the policy's
held-out true preference before (the SFT start) and after GRPO against that reward model, with
the paired 95% interval of the change, reported as measured whatever its sign. Load averages at
the start and end, each stage's wall time. With ``--verdict logprob`` (order-averaged next-token
probabilities of the verdict letters) it also prints how far the shares lie from 0.5 and the
judge's agreement with the true rule at a few tie margins, from the stored shares (the run's
own labels use ``--tie-margin``).

    python bench/rlaif.py [--prompts 64] [--max-tokens 128] [--out DIR] [--quick] [extra rlvr-rlaif args...]
    python bench/rlaif.py --prompts 128 --verdict logprob --tie-margin 0

``--quick``: 8 prompts, a 4-step GRPO run (a smoke run of the script, not the figure). Needs the
imported judge model (`bash scripts/setup_smollm2.sh`).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from process_memory import load  # noqa: E402


def _f(x, spec=".3f") -> str:
    return "n/a" if x is None else format(x, spec)


def margin_table(lab: dict) -> None:
    """Agreement with the true rule at several tie margins, from the label stage's stored shares."""
    from rlvr.pipelines.rlaif import truth_agreement

    shares, truth = lab.get("shares"), lab.get("truth_scores")
    if not shares or not truth:
        return
    gaps = sorted(abs(x - 0.5) for x in shares if x is not None)
    if gaps:
        print(f"shares: |share - 0.5| median {gaps[len(gaps) // 2]:.4f}, max {gaps[-1]:.4f} over {len(gaps)} pairs")
    for margin in (0.0, 0.005, 0.01, 0.02, 0.05):
        t = truth_agreement(shares, [tuple(x) if x else None for x in truth], margin)
        low, high = t["ci95"]
        print(f"  tie margin {margin:<5}: {t['decided']:>3} decided pairs the rule orders, agreement "
              f"{_f(t['agreement'])} (95% {_f(low)}-{_f(high)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--max-tokens", type=int, default=128, help="the judge's answer budget")
    ap.add_argument("--out", default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rm-heldout", choices=("truth", "split"), default="truth",
                    help="measure the reward model on pairs ranked by the true rule (truth) or on its labels' split")
    ap.add_argument("--heldout-rows", type=int, default=200, help="truth: held-out pairs (two answers each)")
    a, extra = ap.parse_known_args()
    out = Path(a.out or tempfile.mkdtemp(prefix="rlvr-bench-rlaif-"))
    prompts = 8 if a.quick else a.prompts
    if a.rm_heldout == "truth":  # the task's held-out prompts, two answers each, ranked by the true rule
        from rlvr.data.preference_task import ranked_rows
        from rlvr.pipelines.coevolution import _write_jsonl

        held = _write_jsonl(out / "data" / "heldout_truth.jsonl", ranked_rows(a.heldout_rows, 1, 2, 0.0, "eval"))
        extra = ["--rm", "+experiment=coevo_rm", "--rm", f"data.eval_path={held}", *extra]
    cmd = [sys.executable, "-m", "rlvr.pipelines.rlaif", "--out", str(out), "--prompts", str(prompts),
           "--judge-option", f"max_tokens={a.max_tokens}", *(["--grpo", "trainer.total_steps=4"] if a.quick else []),
           *extra]
    start_load = load()
    print(f"$ {' '.join(cmd[1:])}   ({start_load} at start)", flush=True)
    proc = subprocess.run(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True)
    if proc.returncode:
        sys.exit(f"rlvr-rlaif failed (exit status {proc.returncode}); logs in {out / 'logs'}")
    r = json.loads((out / "rlaif.json").read_text())
    lab, truth = r["label"], r["label"]["truth"]
    print(f"\njudge: {lab['judge']} under {lab['constitution']}, pairwise, both orders, verdict "
          f"{lab.get('verdict', 'sample')}, tie margin {lab.get('tie_margin', 0.0)}")
    print(f"labels: {lab['pairs']} pairs, {lab['decided']} decided, {lab['tie']} ties or order flips, "
          f"{lab['no_verdict']} without a verdict, {lab.get('identical', 0)} identical answer pairs | parse rate "
          f"{_f(lab['parse_rate'])} | order inconsistency {_f(lab['order_inconsistency'])} | sampling "
          f"{lab['sample_s']:.0f} s, judging {lab['judge_s']:.0f} s")
    low, high = truth["ci95"]
    print(f"judge vs the true rule: agreement {_f(truth['agreement'])} (95% {_f(low)}-{_f(high)}) over "
          f"{truth['decided']} decided pairs the rule orders ({truth['tie']} ties, {truth['unjudged']} unjudged)")
    if lab.get("verdict") == "logprob":
        margin_table(lab)
    if "rm" in r:
        print(f"reward model on the labels: held-out pairwise accuracy {_f(r['rm']['pairwise_accuracy'])}")
    if "grpo" in r:
        g = r["grpo"]
        lo, hi = g.get("true_preference_change_ci") or (None, None)
        print(f"policy: held-out true preference {_f(g['true_preference_before'])} (SFT start) -> "
              f"{_f(g['true_preference_after'])} after {g['steps']} GRPO steps against it; change 95% interval "
              f"[{_f(lo)}, {_f(hi)}]; KL {_f(g['kl'], '.4f')}; watch alerts {g['alerts']['count']} {g['alerts']['names']}")
    print(f"wall: {r['wall_s']} | load at start {start_load}, at end {load()}")


if __name__ == "__main__":
    main()
