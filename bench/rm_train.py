"""Reward-model training speed: rlvr-rm's pairs/s and TRL's RewardTrainer time per step, same model and data.

Settings (both): the ~1.2M-parameter tiny Llama of bench/train_step_time.py with a fresh
one-output head, pairs of the built-in preference task (chat context + assistant answer,
rendered by the tokenizer's chat template), 32 pairs (64 sequences) per optimizer step
in one micro-batch, fp32, AdamW lr 1e-4, no gradient checkpointing (TRL's default is on:
turned off so both do the same work), max 256 tokens. rlvr-rm runs twice: as it runs by
default (batches of whole prompts, each distinct answer scored once: 4 ranked answers
make 6 pairs from 4 sequences) and with ``trainer.group_by_prompt=false`` (pairs
shuffled independently, 2 sequences per pair: the work TRL does). Each framework runs in its own
subprocess; they alternate for ``--rounds`` rounds so load from other work hits both
alike; the figure is the median over rounds of each round's median step time after
``--warmup`` untimed steps.

    python bench/rm_train.py [--steps 20] [--warmup 3] [--threads 1] [--rounds 3]
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
PAIRS_PER_STEP, MAX_TOKENS, LR = 32, 256, 1e-4


def _pairs(n: int):
    from rlvr.data.preference_task import ranked_rows
    from rlvr.preference import load_preferences

    return load_preferences(ranked_rows(n, seed=0)).pairs


def bench_rlvr(steps: int, warmup: int, grouped: bool = True) -> dict:
    from omegaconf import OmegaConf

    from rlvr.learner import BACKENDS
    from rlvr.models import load_tokenizer
    from rlvr.preference import PreferenceSet
    from rlvr.rm.config import RMConfig
    from rlvr.rm.encode import encode_pairs
    from rlvr.rm.model import build_reward_model
    from rlvr.rm.scorers import SequenceScorer
    from rlvr.rm.trainer import RMTrainer
    from train_step_time import _model_dir

    cfg: RMConfig = OmegaConf.to_object(OmegaConf.structured(RMConfig(run_name="bench")))  # type: ignore
    t = cfg.trainer
    t.batch_size = t.micro_batch_size = PAIRS_PER_STEP
    t.optim.lr, t.group_by_prompt, total = LR, grouped, steps + warmup
    path = _model_dir()
    tokenizer = load_tokenizer(path)
    sets = {"train": encode_pairs(tokenizer, PreferenceSet(_pairs(200)), MAX_TOKENS)}
    model = build_reward_model(path, tokenizer, seed=0)
    backend = BACKENDS.lookup("torch")(model, t.optim, total)
    scorer = SequenceScorer(model, sets, tokenizer.pad_token_id, backend.device, None)
    trainer = RMTrainer(cfg, backend, scorer, sets, total)
    times = []
    for step in range(1, total + 1):
        start = time.perf_counter()
        trainer.train_step(step)
        times.append(time.perf_counter() - start)
    return {"s_per_step": statistics.median(times[warmup:])}


def bench_trl(steps: int, warmup: int) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from train_step_time import _model_dir
    from trl_common import step_timer

    path = _model_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    rows = [{"prompt": p.messages, "chosen": [{"role": "assistant", "content": p.chosen}],
             "rejected": [{"role": "assistant", "content": p.rejected}]} for p in _pairs(200)]
    args = RewardConfig(output_dir=tempfile.mkdtemp(prefix="trl-rm-bench-"), per_device_train_batch_size=PAIRS_PER_STEP,
                        gradient_accumulation_steps=1, learning_rate=LR, max_steps=steps + warmup, logging_steps=1000,
                        save_strategy="no", report_to=[], use_cpu=True, bf16=False, fp16=False,
                        gradient_checkpointing=False, max_length=MAX_TOKENS, seed=0, dataloader_num_workers=0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tokenizer.pad_token_id
    timer = step_timer()
    trainer = RewardTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                            callbacks=[timer])
    trainer.train()
    return {"s_per_step": statistics.median(timer.times[warmup:])}


def _one(which: str, a: argparse.Namespace, env: dict) -> dict | None:
    cmd = [sys.executable, __file__, "--only", which, "--steps", str(a.steps), "--warmup", str(a.warmup),
           "--threads", str(a.threads)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        print(f"{which}: failed\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        return None
    return json.loads(line[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both frameworks")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of both frameworks")
    ap.add_argument("--only", choices=["rlvr", "rlvr-pairs", "trl"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.only:
        import torch

        torch.set_num_threads(a.threads)
        if a.only == "trl":
            result = bench_trl(a.steps, a.warmup)
        else:
            result = bench_rlvr(a.steps, a.warmup, grouped=a.only == "rlvr")
        print("RESULT " + json.dumps(result), flush=True)
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from train_step_time import MODEL

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)]),
           "TOKENIZERS_PARALLELISM": "false"}
    print(f"model: Llama {MODEL} + one-output head | {PAIRS_PER_STEP} pairs ({2 * PAIRS_PER_STEP} sequences) per step, "
          f"built-in preference task, fp32, {a.threads} torch thread(s), median of {a.steps} steps after "
          f"{a.warmup} warm-up, {a.rounds} alternating rounds")
    which_all = ["rlvr", "rlvr-pairs"]
    try:
        import trl

        which_all.append("trl")
    except ImportError:
        print("trl: not installed (pip install trl==1.16.0); timing rlvr only")
    results: dict[str, list[float]] = {w: [] for w in which_all}
    for _ in range(a.rounds):
        for which in which_all:
            r = _one(which, a, env)
            if r is not None:
                results[which].append(r["s_per_step"])
                print(f"  {which}: {r['s_per_step']:.3f} s/step", flush=True)
    for which, runs in results.items():
        if runs:
            label = (f"trl {trl.__version__} RewardTrainer" if which == "trl" else
                     {"rlvr": "rlvr-rm", "rlvr-pairs": "rlvr-rm (pairs shuffled)"}[which])
            med = statistics.median(runs)
            print(f"{label:>26}: {med:.3f} s/step = {PAIRS_PER_STEP / med:.0f} pairs/s (median of {len(runs)} rounds: "
                  f"{', '.join(f'{x:.3f}' for x in sorted(runs))})")


if __name__ == "__main__":
    main()
