"""Peak memory of one GRPO step (generate + update) with a Qwen-sized vocabulary.

A Llama of tiny width (hidden 64, 2 layers) but Qwen2.5's 151,936-token vocabulary,
with a word-level tokenizer of that size built locally; 16 prompts x 4 completions =
64 sequences x 256 new tokens (EOS is suppressed so every completion is full length),
micro-batch 4, fp32, prompts from the built-in arithmetic task, rewarded by a coin
(a random model earns no verifier reward, and a step without reward spread skips the update). Each step runs in
a fresh subprocess and reports its peak RSS (``ru_maxrss``); for scale the script also
prints what the full-vocabulary logits of one step would take as float32.

    python bench/train_memory.py [--steps 1] [--sequences 64] [--new-tokens 256] [--micro 4]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VOCAB = 151_936
MODEL_DIR = Path(tempfile.gettempdir()) / "rlvr-bench-wide-vocab"


def build_model(out: Path) -> Path:
    """Tiny-width Llama + WordLevel tokenizer with VOCAB entries (characters first, then fillers)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from rlvr.models.tiny import build_tokenizer

    tok = build_tokenizer(vocab_size=VOCAB)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         tie_word_embeddings=True, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # never stop early: every completion runs the full budget
        model.model.embed_tokens.weight[tok.eos_token_id].zero_()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


class CoinReward:
    """A reward source for this bench only: 0/1 from a hash of the text, so every group has spread
    and the update really runs (a random model never earns a verifier reward)."""

    decides_pass = False

    def __init__(self, cfg, label, ctx):
        self.label, self.weight = label, cfg.weight

    def score(self, prompts, completions):
        import zlib

        import torch

        from rlvr.rewards import SourceScores

        rewards = torch.tensor([float(zlib.crc32(c.encode()) % 2) for c in completions])
        return SourceScores(rewards, ["scored"] * len(completions))

    def close(self):
        pass


def one_step(a: argparse.Namespace) -> dict:
    from omegaconf import OmegaConf

    from rlvr.config import RewardSource, TrainConfig
    from rlvr.rewards import register_source_kind

    register_source_kind("bench_coin")(CoinReward)
    from rlvr.rl.loop import Loop
    from rlvr.rl.run import prepare
    from rlvr.run_dir import RunDir

    cfg = TrainConfig(run_name="bench")
    cfg.model.path, cfg.model.cache_dir = str(MODEL_DIR), tempfile.gettempdir()
    cfg.algorithm.group_size = 4
    cfg.rollout.max_new_tokens, cfg.rollout.hf.batch_size = a.new_tokens, 0
    t = cfg.trainer
    t.prompts_per_step, t.micro_batch_size, t.total_steps, t.sample_every = a.sequences // 4, a.micro, a.steps, 0
    t.threads = a.threads
    cfg.reward.workers = 1
    cfg.reward.sources = [RewardSource(name="coin", kind="bench_coin")]
    cfg = OmegaConf.to_object(OmegaConf.structured(cfg))
    parts = prepare(cfg)
    loop = Loop(cfg, parts, RunDir(tempfile.mkdtemp(prefix="rlvr-mem-"), cfg.logger))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    for step in range(1, a.steps + 1):
        m = loop.train_step(step)
    parts.close()
    return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_step_mib": before,
            "s_per_step": (time.perf_counter() - start) / a.steps, "generate_s": m["time/generate"],
            "update_s": m["time/update"], "completion_len": m["completion_len/mean"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--sequences", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if not (MODEL_DIR / "config.json").exists():
        build_model(MODEL_DIR)
    if a.child:
        print("RESULT " + json.dumps(one_step(a)), flush=True)
        return
    cmd = [sys.executable, __file__, "--child", "--steps", str(a.steps), "--sequences", str(a.sequences),
           "--new-tokens", str(a.new_tokens), "--micro", str(a.micro), "--threads", str(a.threads)]
    proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        sys.exit(f"bench failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    r = json.loads(line[-1][7:])
    full = a.sequences * a.new_tokens * VOCAB * 4 / 2**30
    print(f"model: Llama hidden 64, 2 layers, vocabulary {VOCAB:,} | {a.sequences} sequences x {a.new_tokens} new "
          f"tokens, micro-batch {a.micro}, fp32, {a.threads} thread(s)")
    print(f"peak RSS {r['peak_rss_mib']:.0f} MiB ({r['peak_rss_mib'] / 1024:.2f} GiB; {r['rss_before_step_mib']:.0f} MiB "
          f"before the step) | {r['s_per_step']:.1f} s/step (generate {r['generate_s']:.1f} s, update "
          f"{r['update_s']:.1f} s), mean completion {r['completion_len']:.0f} tokens | full-vocabulary logits "
          f"of the step as float32 would be {full:.1f} GiB")


if __name__ == "__main__":
    main()
