"""Seconds per GRPO step and peak RSS: rlvr vs TRL's GRPOTrainer on the same tiny model.

Settings (both): a ~1.2M-parameter Llama built locally, 8 prompts x 4 completions,
32 new tokens, fp32, transformers generation, one optimizer update per rollout batch,
rewards from the `math` verifier. Each framework runs in its own subprocess (so peak
RSS is its own); the first `--warmup` steps are not timed. The two alternate for
`--rounds` rounds so that load from other work on a shared machine hits both alike;
the figure is the median over rounds of each round's median step time.

    python bench/train_step_time.py [--steps 20] [--warmup 3] [--threads 1] [--rounds 3] [--baseline DIR]

--baseline DIR adds a third contender: rlvr from another source tree (a checkout of an
earlier commit), alternating with the other two, to show a change is no slower.
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
MODEL = dict(hidden_size=128, num_layers=4, num_heads=4, intermediate_size=576)
PROMPTS, G, NEW_TOKENS = 8, 4, 32


def _model_dir() -> Path:
    from rlvr.models.tiny import build_tiny_llama

    out = Path(tempfile.gettempdir()) / "rlvr-bench-llama-1.2m"
    if not (out / "config.json").exists():
        build_tiny_llama(out, **MODEL)
    return out


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_rlvr(steps: int, warmup: int) -> dict:
    from omegaconf import OmegaConf

    from rlvr.config import TrainConfig
    from rlvr.rl.loop import Loop
    from rlvr.rl.run import prepare
    from rlvr.run_dir import RunDir

    cfg = TrainConfig(run_name="bench")
    cfg.model.path, cfg.model.cache_dir = str(_model_dir()), tempfile.gettempdir()
    cfg.algorithm.group_size = G
    cfg.algorithm.skip_flat_steps = False  # TRL updates on every batch; so does this bench
    cfg.rollout.max_new_tokens, cfg.rollout.temperature = NEW_TOKENS, 1.0
    t = cfg.trainer
    t.prompts_per_step, t.micro_batch_size, t.optimizer_steps_per_batch = PROMPTS, PROMPTS * G, 1
    t.total_steps, t.sample_every, t.threads, t.optim.lr = steps + warmup, 0, 0, 1e-4
    cfg.reward.workers = 1
    cfg = OmegaConf.to_object(OmegaConf.structured(cfg))
    parts = prepare(cfg)
    loop = Loop(cfg, parts, RunDir(tempfile.mkdtemp(prefix="rlvr-bench-"), cfg.logger))
    times, parts_s = [], {"time/generate": [], "time/reward": [], "time/update": []}
    for step in range(1, steps + warmup + 1):
        start = time.perf_counter()
        metrics = loop.train_step(step)
        times.append(time.perf_counter() - start)
        for key, values in parts_s.items():
            values.append(metrics[key])
    parts.scorer.close()
    split = ", ".join(f"{k.split('/')[1]} {statistics.median(v[warmup:]):.3f}" for k, v in parts_s.items())
    return {"s_per_step": statistics.median(times[warmup:]), "mean": statistics.mean(times[warmup:]),
            "peak_rss_mib": _peak_rss_mib(), "split": split}


def bench_trl(steps: int, warmup: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from rlvr.data import ArithmeticTask
    from trl_common import math_reward, step_timer

    task = ArithmeticTask(2, 512, seed=0, split="train")
    rows = [{"prompt": [dict(m) for m in task[i].messages], "reference": task[i].reference} for i in range(512)]

    path = _model_dir()
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"), per_device_train_batch_size=PROMPTS * G,
        num_generations=G, max_completion_length=NEW_TOKENS, gradient_accumulation_steps=1, num_iterations=1,
        learning_rate=1e-4, max_steps=steps + warmup, logging_steps=1000, save_strategy="no", report_to=[],
        use_cpu=True, bf16=False, fp16=False, beta=0.0, temperature=1.0, seed=0, dataloader_num_workers=0)
    timer = step_timer()
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32),
                          reward_funcs=math_reward(), args=args, train_dataset=Dataset.from_list(rows),
                          processing_class=AutoTokenizer.from_pretrained(path), callbacks=[timer])
    trainer.train()
    return {"s_per_step": statistics.median(timer.times[warmup:]), "mean": statistics.mean(timer.times[warmup:]),
            "peak_rss_mib": _peak_rss_mib()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both frameworks")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both frameworks")
    ap.add_argument("--baseline", type=Path, help="another rlvr source tree to time alongside (paired rounds)")
    ap.add_argument("--only", choices=["rlvr", "trl"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.only:
        import torch

        torch.set_num_threads(a.threads)
        result = (bench_rlvr if a.only == "rlvr" else bench_trl)(a.steps, a.warmup)
        print("RESULT " + json.dumps(result), flush=True)
        return
    from rlvr.models import load_model

    n_params = sum(p.numel() for p in load_model(_model_dir()).parameters())
    env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
    print(f"model: Llama {MODEL}, {n_params / 1e6:.2f}M parameters | {PROMPTS} prompts x {G} completions, {NEW_TOKENS} new tokens, fp32, "
          f"{a.threads} torch thread(s), median of {a.steps} steps after {a.warmup} warm-up")
    which_all = ["rlvr"] + (["rlvr@baseline"] if a.baseline else [])
    try:
        import trl

        which_all.append("trl")
    except ImportError:
        print("trl: not installed (pip install trl==1.16.0); timing rlvr only")
    results: dict[str, list[dict]] = {w: [] for w in which_all}
    for _ in range(a.rounds):
        for which in which_all:
            r = _one(which, a, env)
            if r is not None:
                results[which].append(r)
                print(f"  {which}: {r['s_per_step']:.3f} s/step" + (f" [{r['split']}]" if "split" in r else ""),
                      flush=True)
    for which, runs in results.items():
        if not runs:
            continue
        label = f"trl {trl.__version__}" if which == "trl" else which
        per_round = sorted(r["s_per_step"] for r in runs)
        print(f"{label:>14}: {statistics.median(per_round):.3f} s/step (median of {len(runs)} rounds: "
              f"{', '.join(f'{x:.3f}' for x in per_round)}), peak RSS {max(r['peak_rss_mib'] for r in runs):.0f} MiB")


def _one(which: str, a: argparse.Namespace, env: dict) -> dict | None:
    script, only = Path(__file__), which
    if which == "rlvr@baseline":  # the baseline tree's own copy of this bench, on its own code
        script, only = a.baseline.resolve() / "bench" / "train_step_time.py", "rlvr"
        env = {**env, "PYTHONPATH": str(a.baseline.resolve())}
    cmd = [sys.executable, str(script), "--only", only, "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--threads", str(a.threads)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        print(f"{which}: failed\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return None
    return json.loads(line[-1][7:])

if __name__ == "__main__":
    main()
