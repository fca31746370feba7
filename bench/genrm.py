"""A reasoning reward model trained by RLVR: `rlvr-train +experiment=tiny_genrm` (or smollm2_genrm), timed end to end.

Prints the held-out agreement of the judge (a tiny Llama; SmolLM2-135M with --preset) with the
built-in preference task's true preference (100 pairs, each in both answer orders; the
preset's data.eval_size prompts) at three points: before the supervised
warm-up (the freshly built model, scored by `rlvr-eval` on the same held-out prompts), after
it (= the start of GRPO) and after GRPO; the warm-up's and GRPO's shares of the total gain;
the parse rate (a verdict read from complete rubric/eval/verdict blocks); the agreement per
answer order and its gap; the wall time; and the load. Targets (issue 21): agreement >= 0.80
at the end, GRPO adding >= 10 points over its start, parse rate >= 0.95, order gap < 0.05.

    python bench/genrm.py [--fresh] [--preset smollm2_genrm] [extra hydra overrides...]

--fresh uses an empty model cache, so the model build and the warm-up are timed too.
--preset runs another judge preset on the same task (default tiny_genrm); smollm2_genrm needs
`bash scripts/setup_smollm2.sh` first and holds out its own data.eval_size judge prompts.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # mark_errors reads the built-in task's rule
TARGETS = {"agreement": 0.80, "grpo_gain": 0.10, "parse": 0.95, "gap": 0.05}


def _run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:4])} ... failed with exit code {proc.returncode}")
    return time.perf_counter() - start


def _base_agreement(run_dir: Path, preset: str, args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(agreement, parse rate) of the untrained model on the held-out judge prompts (rlvr-eval)."""
    _run([sys.executable, "-m", "rlvr.eval.cli", f"hydra.run.dir={run_dir}", f"+experiment={preset}", *args], env)
    rows = [json.loads(line) for line in (run_dir / "eval" / "step_000000.jsonl").read_text().splitlines()]
    agree = sum(bool(r["passed"]) for r in rows) / len(rows)
    parsed = sum(any(v in ("correct", "wrong_verdict") for v in r["verdicts"].values()) for r in rows) / len(rows)
    return agree, parsed


_MARKS = re.compile(r"<eval>A:(\d+)=\d+ B:(\d+)=\d+</eval>")


def mark_errors(rows: list[dict]) -> dict[str, float]:
    """Per rubric item: the share of held-out answers whose mark differs from the true rule's (built-in task).

    Where a judge goes wrong is in its marks (its scores and verdict follow them), so this says which item
    it cannot yet read; judgements without readable marks are left out."""
    from rlvr.data.judge_pairs import ITEMS, judge_trace
    from rlvr.data.preference_task import FACTS, spec_of

    wrong, seen = [0] * len(ITEMS), 0
    for r in rows:
        lines = r["messages"][0]["content"].split("\n")
        fact = next((i for i, (q, _, _) in enumerate(FACTS) if q in lines[1]), None)
        said = _MARKS.search(r["completion"])
        if fact is None or said is None:
            continue
        true = _MARKS.search(judge_trace(lines[2][3:], lines[3][3:], spec_of(fact)))
        for got, want in zip(said.groups(), true.groups()):
            seen += 1
            for k in range(len(ITEMS)):
                wrong[k] += k >= len(got) or got[k] != want[k]
    return {item: w / seen for item, w in zip(ITEMS, wrong)} if seen else {}


def main() -> None:
    args = sys.argv[1:]
    env = dict(os.environ)
    if "--fresh" in args:
        args.remove("--fresh")
        env["RLVR_CACHE"] = tempfile.mkdtemp(prefix="rlvr-genrm-cache-")
    preset = "tiny_genrm"
    if "--preset" in args:
        i = args.index("--preset")
        if i + 1 == len(args):
            sys.exit("error: --preset needs a preset name (tiny_genrm or smollm2_genrm)")
        preset = args.pop(i + 1)
        args.pop(i)
    tmp = Path(tempfile.mkdtemp(prefix="rlvr-genrm-"))
    base, base_parse = _base_agreement(tmp / "base", preset, args, env)
    wall = _run([sys.executable, "-m", "rlvr.train", f"hydra.run.dir={tmp / 'run'}", f"+experiment={preset}",
                 *args], env)
    s = json.loads((tmp / "run" / "summary.json").read_text())
    start, end = s["judge_agreement_before"], s["judge_agreement_after"]
    total = end - base
    rows = {int(p.stem.split("_")[1]): [json.loads(line) for line in p.read_text().splitlines()]
            for p in (tmp / "run" / "eval").glob("step_*.jsonl")}  # held-out evaluations by GRPO step
    held = len(rows[min(rows)])
    print(f"\n== reasoning reward model: +experiment={preset} ==")
    print(f"held-out agreement with the true preference ({held} judge prompts = {held // 2} pairs x both orders):")
    print(f"  before the warm-up (fresh model)  {base:.3f}   parse rate {base_parse:.3f}")
    print(f"  after the warm-up = GRPO start    {start:.3f}   parse rate {s['judge_parse_rate_before']:.3f}")
    print(f"  after GRPO ({s['steps']} steps)            {end:.3f}   parse rate {s['judge_parse_rate_after']:.3f}")
    if total:
        print(f"gain {100 * total:+.1f} points: warm-up {100 * (start - base):+.1f} "
              f"({(start - base) / total:.0%}), GRPO {100 * (end - start):+.1f} ({(end - start) / total:.0%})")
    for when in ("before", "after"):
        print(f"per answer order ({when} GRPO): chosen first {s[f'judge_agreement_{when}_chosen_first']:.3f}, "
              f"chosen second {s[f'judge_agreement_{when}_chosen_second']:.3f}, gap {s[f'judge_order_gap_{when}']:.3f}")
    print("held-out agreement by GRPO step: "
          + ", ".join(f"{k}: {sum(bool(r['passed']) for r in rows[k]) / len(rows[k]):.3f}" for k in sorted(rows)))
    for when, step in (("GRPO start", min(rows)), ("GRPO end", max(rows))):
        errs = mark_errors(rows[step])
        print(f"marks wrong per answer at the {when}: " + ", ".join(f"{k} {v:.3f}" for k, v in errs.items()))
    checks = {f"agreement >= {TARGETS['agreement']}": end >= TARGETS["agreement"],
              f"GRPO gain >= {100 * TARGETS['grpo_gain']:.0f} points": end - start >= TARGETS["grpo_gain"] - 1e-9,
              f"parse rate >= {TARGETS['parse']}": s["judge_parse_rate_after"] >= TARGETS["parse"],
              f"order gap < {TARGETS['gap']}": s["judge_order_gap_after"] < TARGETS["gap"]}
    print("targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in checks.items()))
    load = os.getloadavg()
    print(f"wall time {wall:.0f} s (GRPO part {s['wall_s_this_process']:.0f} s); load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores; run directory {tmp / 'run'}")


if __name__ == "__main__":
    main()
