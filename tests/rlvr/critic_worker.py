"""One rank of the critic's DeepSpeed tests: `python -m torch.distributed.run ... critic_worker.py SPEC.json`.

Also runs without torchrun, and in the test's own process for the plain-PyTorch reference (`run`).
Every rank regresses the critic on its contiguous share of a saved rollout batch (`ds_worker.make_batch`)
against fixed returns, ``steps`` times; ``rank<r>.json`` holds the critic's metrics of each step, a digest of
the critic's parameters as this rank holds them (under ZeRO-2 a whole local copy on every rank), their
complete (gathered) sums, and the trained critic's values of the whole batch.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch

from rlvr.config import AlgorithmConfig, DeepSpeedConfig, TrainerConfig


def configs(spec: dict[str, Any]) -> tuple[AlgorithmConfig, TrainerConfig]:
    trainer = TrainerConfig(backend=spec["backend"], total_steps=spec["steps"], micro_batch_size=2,
                            optimizer_steps_per_batch=1, seed=3)
    trainer.optim.max_grad_norm = 0.5
    trainer.deepspeed = DeepSpeedConfig(zero_stage=spec.get("stage", 2), stage3_param_persistence_threshold=0,
                                        timeout_s=120, cache_dir=spec["cache_dir"])
    algo = AlgorithmConfig(advantage="gae", group_size=4)
    algo.critic.shared, algo.critic.lr, algo.num_iterations = spec.get("shared", False), 1e-2, 2
    return algo, trainer


def returns_of(batch) -> torch.Tensor:
    """Fixed regression targets: a ramp along each completion, a different level per row."""
    n, c = batch.completion_ids.shape
    ramp = torch.linspace(0.0, 1.0, c).expand(n, c) * torch.arange(1, n + 1).unsqueeze(1) / n
    return ramp * batch.completion_mask


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from rlvr.learner import build_backend
    from rlvr.learner.critic import build_critic
    from rlvr.models import load_model, load_tokenizer

    algo, trainer = configs(spec)
    policy = build_backend(trainer.backend, load_model(spec["model"]), trainer, algo)  # the shared critic's trunk
    critic = build_critic(algo, trainer, Path(spec["model"]), policy.module, load_tokenizer(spec["model"]),
                          policy.device)
    rank, world = critic.backend.rank, critic.backend.world_size
    whole = torch.load(spec["batch"], weights_only=False)["batch"]
    k = len(whole) // world
    index = torch.arange(rank * k, (rank + 1) * k)
    batch, returns = whole.select(index), returns_of(whole)[index]
    stats = []
    for step in range(spec["steps"]):
        old = critic.values(batch)
        stats.append(critic.update(batch, old, returns, batch.completion_mask, seed=step))
    local = hashlib.sha256()
    for name, tensor in sorted(critic.net.state_dict().items()):  # this rank's own copy (a shard under ZeRO-3)
        local.update(name.encode() + tensor.detach().cpu().numpy().tobytes())
    return {"world_size": world, "stats": stats, "local_digest": local.hexdigest(),
            "sums": {name: float(t.double().sum()) for name, t in critic.backend.named_tensors()},
            "values": critic.values(whole).tolist()}


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(1)
    result = run(spec)
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_initialized() else 0
    Path(spec["out"], f"rank{rank}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
