"""One process vs 2 DeepSpeed ranks on CPU: the first 5 step losses, and per-rank peak memory.

Losses: ``rlvr-train +experiment=tiny_dp`` (a tiny Llama, 8 prompts x 4 completions, 2 passes
per batch) on one process with the torch backend, then on 2 gloo ranks under torchrun with
``trainer.backend=deepspeed``, ZeRO-2 and ZeRO-3 (persistence threshold 0: really
partitioned). The same seed sees the same rollouts (per-prompt seeds on the global index),
so the losses compare step by step; the script prints them and the largest difference.

Memory: the real pretrained SmolLM2-135M (``+experiment=smollm2_arith``, fp32) for a few
steps of 2 prompts x 2 completions, one torch thread per process, the final checkpoint
included; each process reports its own peak RSS (``ru_maxrss``) through this script's
``--rank-peak`` wrapper. Verifier workers are separate processes and not counted.

    python bench/deepspeed_cpu.py [--part losses|memory|both] [--memory-steps 2]
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPS_CACHE = os.path.join(os.path.expanduser(os.environ.get("RLVR_CACHE", "~/.cache/rlvr")), "torch_extensions")
DS = ("trainer.backend=deepspeed", f"trainer.deepspeed.cache_dir={OPS_CACHE}")
STAGES = {"ZeRO-2": ("trainer.deepspeed.zero_stage=2",),
          "ZeRO-3": ("trainer.deepspeed.zero_stage=3", "trainer.deepspeed.stage3_param_persistence_threshold=0")}


def rank_peak_main(out_dir: str, overrides: list[str]) -> None:
    """Run rlvr-train in this process and write its peak RSS to ``out_dir/rank<RANK>.json`` at exit."""
    def report() -> None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        Path(out_dir, f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps({"peak_rss_mb": peak}))
    atexit.register(report)
    sys.path.insert(0, str(REPO))
    from rlvr.train import main

    sys.argv = ["rlvr-train", *overrides]
    main()


def launch(nproc: int, run_dir: Path, overrides: tuple[str, ...]) -> tuple[list[float], float]:
    """(peak RSS in MB of each rank, wall seconds) of one rlvr-train run; 0 ranks = one plain process."""
    peaks = run_dir.with_name(run_dir.name + "-peaks")
    peaks.mkdir(parents=True, exist_ok=True)
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, *launcher, __file__, "--rank-peak", str(peaks), f"hydra.run.dir={run_dir}", *overrides]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=run_dir.parent, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"run failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return [json.loads(p.read_text())["peak_rss_mb"] for p in sorted(peaks.glob("rank*.json"))], wall


def losses(run_dir: Path, n: int = 5) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r][:n]


def part_losses(root: Path) -> None:
    print("== first 5 step losses, +experiment=tiny_dp (one process: torch backend; 2 gloo ranks: deepspeed)")
    _, wall = launch(0, root / "one", ("+experiment=tiny_dp",))
    reference = losses(root / "one")
    print(f"{'one process':>12} " + " ".join(f"{x:+.8f}" for x in reference) + f"   ({wall:.0f} s)")
    for name, stage in STAGES.items():
        _, wall = launch(2, root / name, ("+experiment=tiny_dp", *DS, *stage))
        got = losses(root / name)
        diff = max(abs(a - b) for a, b in zip(got, reference))
        print(f"{name + ' x2':>12} " + " ".join(f"{x:+.8f}" for x in got) + f"   max |diff| {diff:.2e} ({wall:.0f} s)")


def part_memory(root: Path, steps: int) -> None:
    small = ("+experiment=smollm2_arith", f"trainer.total_steps={steps}", "trainer.prompts_per_step=2",
             "algorithm.group_size=2", "trainer.micro_batch_size=2", "rollout.max_new_tokens=16", "data.eval_size=2",
             "trainer.eval.k=0", "trainer.save_every=0", "trainer.sample_every=0", "trainer.threads=1",
             "algorithm.skip_flat_steps=false")  # update even when every reward is equal: optimizer state exists
    print(f"== peak RSS per process, SmolLM2-135M fp32, {steps} steps of 2 prompts x 2 completions, final checkpoint")
    one, wall = launch(0, root / "mem-one", small)
    print(f"{'one process':>12} {one[0] / 1024:.2f} GiB ({wall:.0f} s)")
    for name, stage in STAGES.items():
        peaks, wall = launch(2, root / f"mem-{name}", (*small, *DS, stage[0]))
        shown = ", ".join(f"{p / 1024:.2f}" for p in peaks)
        print(f"{name + ' x2':>12} {shown} GiB per rank ({max(peaks) / one[0]:.2f} x one process; {wall:.0f} s)")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--rank-peak":
        return rank_peak_main(sys.argv[2], sys.argv[3:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("losses", "memory", "both"), default="both")
    parser.add_argument("--memory-steps", type=int, default=2)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="rlvr-bench-ds-"))
    print(f"runs under {root}; load {os.getloadavg()[0]:.1f}", flush=True)
    if args.part in ("losses", "both"):
        part_losses(root)
    if args.part in ("memory", "both"):
        part_memory(root, args.memory_steps)


if __name__ == "__main__":
    main()
