"""What the reward-hacking watch costs per training step (`RunWatch.on_step`: figures, alerts,
bad-case mining and writing).

Micro-benchmark (default): synthetic batches of realistic shape, N completions (groups of
8) x T tokens from a 49,152-token vocabulary (SmolLM2's), a verifier and a reward model
(with saved statistics) as sources, every check enabled; the first steps are not timed.
Prints the median milliseconds per step for each shape.

    python bench/watch_overhead.py [--steps 60] [--threads 1]
    python bench/watch_overhead.py --default-run 40     # also: the embedded default run's steps

--default-run STEPS builds the embedded default (`rlvr-train` with no arguments: tiny
Llama, cached warm-up, 32 prompts x 8, 16 new tokens), runs STEPS training steps of the loop
(which calls the watch after each step and times it as ``time/watch``), and prints the median
step time without the watch, the watch's median time, and the ratio (target: under 5%).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VOCAB, GROUP = 49_152, 8


def synthetic(n: int, width: int, seed: int):
    import torch

    from rlvr.data.schema import Prompt
    from rlvr.rewards import RewardResult
    from rlvr.rollout.base import RolloutBatch

    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(width // 2, width + 1, (n,), generator=g)
    mask = (torch.arange(width) < lengths.unsqueeze(1)).float()
    ids = torch.randint(0, VOCAB, (n, width), generator=g) * mask.long()
    texts = [" ".join(f"w{int(t) % 5000}" for t in row[:int(k)]) for row, k in zip(ids, lengths)]
    batch = RolloutBatch(torch.ones(n, 32, dtype=torch.long), torch.ones(n, 32, dtype=torch.long), ids, mask,
                         -torch.rand(n, width, generator=g) * mask, lengths >= width, texts)
    verifier = (torch.rand(n, generator=g) > 0.5).float()
    raw = torch.randn(n, generator=g) * 2 + 1
    result = RewardResult(verifier + 0.1 * raw, {"verifier": verifier, "rm": (raw - 1) / 2},
                          {"verifier": ["correct" if v else "wrong_answer" for v in verifier], "rm": ["scored"] * n},
                          verifier.bool(), "verifier", raw={"rm": raw}, learned=frozenset({"rm"}))
    prompts = [Prompt(({"role": "user", "content": f"question {i // GROUP}"},), "math", str(i // GROUP),
                      uid=f"train-{i // GROUP}") for i in range(n)]
    return batch, result, prompts


class _Sampled:
    def __init__(self, batch, result, prompts):
        self.rollouts, self.first, self.prompts, self.refill_rounds = batch, result, prompts, 0


class _Source:
    def __init__(self, label, learned):
        self.label, self.learned = label, learned
        self.stats = {"mean": 1.0, "std": 2.0, "min": -6.0, "max": 8.0} if learned else None


class _Scorer:
    sources = [_Source("verifier", False), _Source("rm", True)]
    learned = frozenset({"rm"})


def micro(steps: int) -> None:
    from rlvr.config import RewardSource, TrainConfig
    from rlvr.eval.watch_hook import RunWatch

    cfg = TrainConfig()
    cfg.algorithm.group_size = GROUP
    cfg.reward.sources = [RewardSource("verifier"), RewardSource("rm", kind="model", path="x")]
    print(f"watch cost per step (median of {steps - 5} steps after 5 untimed), every check on, bad cases written:")
    for n, width in ((64, 16), (64, 64), (64, 256), (256, 16)):
        hook = RunWatch(cfg, _Scorer(), tempfile.mkdtemp(prefix="rlvr-watch-bench-"))
        batches = [synthetic(n, width, seed) for seed in range(4)]
        times = []
        for step in range(1, steps + 1):
            metrics = {"entropy": 1.0, "kl": 0.01}
            hook.on_step(step, _Sampled(*batches[step % 4]), metrics)
            if step > 5:
                times.append(metrics["time/watch"])
        print(f"  {n:>4} completions x {width:>3} tokens: {1000 * statistics.median(times):6.2f} ms "
              f"(p90 {1000 * sorted(times)[int(0.9 * len(times))]:.2f} ms)")


def default_run(steps: int) -> None:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from rlvr.config import CONF_DIR, register_schemas
    from rlvr.config_checks import validate
    from rlvr.rl.loop import Loop
    from rlvr.rl.run import prepare
    from rlvr.run_dir import RunDir

    register_schemas()
    with initialize_config_dir(config_dir=str(Path(CONF_DIR).resolve()), version_base="1.3"):
        cfg = OmegaConf.to_object(compose("config", overrides=["trainer.sample_every=0", "trainer.save_every=0"]))
    validate(cfg)
    parts = prepare(cfg)
    run_dir = RunDir(tempfile.mkdtemp(prefix="rlvr-watch-default-"), cfg.logger)

    loop = Loop(cfg, parts, run_dir)  # the loop calls the watch itself after each step (RunWatch.on_step)
    step_s, watch_s = [], []
    try:
        for step in range(1, steps + 1):
            metrics = loop.train_step(step)
            if step > 3:
                step_s.append(metrics["time/step"])  # measured before the watch runs
                watch_s.append(metrics["time/watch"])
    finally:
        parts.close()
    s, w = statistics.median(step_s), statistics.median(watch_s)
    print(f"embedded default, {steps} steps ({cfg.trainer.prompts_per_step} x {cfg.algorithm.group_size}, "
          f"{cfg.rollout.max_new_tokens} new tokens): step {1000 * s:.1f} ms without the watch, watch "
          f"{1000 * w:.2f} ms: {100 * w / s:.2f}% of the step")
    print(f"figures of the last step: {json.dumps({k: round(v, 3) for k, v in metrics.items() if k.startswith('watch/')})}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--default-run", type=int, default=0, metavar="STEPS")
    a = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch

    torch.set_num_threads(a.threads)
    micro(a.steps)
    if a.default_run:
        default_run(a.default_run)


if __name__ == "__main__":
    main()
