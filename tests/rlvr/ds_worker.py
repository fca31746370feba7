"""One rank of the DeepSpeed backend tests: `python -m torch.distributed.run ... ds_worker.py SPEC.json`.

Also runs without torchrun (one process, no launcher environment). The spec names the
scenario; each rank writes ``rank<r>.json`` into the spec's ``out`` directory. Every rank
trains on its contiguous share of the rows of a saved rollout batch, so the mean over
ranks of the per-rank losses is the loss of one process over the whole batch (the
`seq_mean_token_mean` normalizer is per sequence and the shares are equal).
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from rlvr.config import AlgorithmConfig, DeepSpeedConfig, TrainerConfig

MICRO, LR, MAX_NEW = 2, 1e-3, 6


def configs(spec: dict[str, Any]) -> tuple[AlgorithmConfig, TrainerConfig]:
    """The algorithm and trainer configs of a run over ``spec['rows']`` rows per rank."""
    trainer = TrainerConfig(backend=spec["backend"], total_steps=spec["total_steps"], micro_batch_size=MICRO,
                            optimizer_steps_per_batch=1)
    trainer.optim.lr, trainer.optim.warmup_steps, trainer.optim.schedule = LR, 1, "linear"
    trainer.optim.max_grad_norm, trainer.optim.weight_decay = 0.5, 0.01
    trainer.deepspeed = DeepSpeedConfig(zero_stage=spec.get("stage", 2), stage3_param_persistence_threshold=0,
                                        timeout_s=120, cache_dir=spec["cache_dir"],
                                        offload_optimizer=spec.get("offload_optimizer", False),
                                        offload_params=spec.get("offload_params", False))
    algo = AlgorithmConfig(group_size=4, aggregation="seq_mean_token_mean", beta=spec.get("beta", 0.0))
    return algo, trainer


def make_batch(model_dir: str, path: str, prompts: int = 3) -> None:
    """Sample ``prompts`` x 4 completions from the tiny model once and save them with fixed advantages."""
    from rlvr.models import load_model, load_tokenizer
    from rlvr.rollout import SamplingParams, build_engine

    model, tok = load_model(model_dir), load_tokenizer(model_dir)
    ids = [tok.apply_chat_template([{"role": "user", "content": f"{i}+{i}"}], add_generation_prompt=True,
                                   tokenize=True, return_dict=False) for i in range(prompts)]
    batch = build_engine("hf", model, tok).generate(ids, SamplingParams(n=4, max_new_tokens=MAX_NEW),
                                                    seeds=list(range(prompts)))
    advantages = torch.tensor([1.0, -1.0, 0.5, 0.25] * prompts) * torch.arange(1, prompts + 1).repeat_interleave(4)
    torch.save({"batch": batch, "advantages": advantages}, path)


def share(batch, advantages: torch.Tensor, rank: int, world: int):
    """Rank ``rank``'s contiguous equal share of the rows."""
    n = len(batch) // world
    index = torch.arange(rank * n, (rank + 1) * n)
    return batch.select(index), advantages[index]


def train(backend, spec: dict[str, Any], steps: int, first_step: int = 0) -> list[dict[str, float]]:
    """``steps`` Learner.update calls on this rank's share; the stats of each."""
    from rlvr.learner import Learner
    from rlvr.models import load_model

    algo, trainer = configs(spec)
    data = torch.load(spec["batch"], weights_only=False)
    batch, adv = share(data["batch"], data["advantages"], backend.rank, backend.world_size)
    learner = Learner(backend, algo, trainer, max_new_tokens=MAX_NEW, temperature=1.0, dtype=spec.get("dtype", "fp32"))
    ref = backend.reference(load_model(spec["model"])) if algo.beta > 0 else None
    out = []
    for step in range(first_step, first_step + steps):
        ref_logprobs = learner.logprobs(batch, forward=ref) if ref is not None else None
        stats = learner.update(batch, adv, batch.completion_mask, ref_logprobs, seed=step)
        out.append({k: float(v) for k, v in stats.items()})
    return out


def build(spec: dict[str, Any], model_dir: str):
    from rlvr.learner import build_backend
    from rlvr.models import load_model

    algo, trainer = configs(spec)
    return build_backend(spec["backend"], load_model(model_dir), trainer, algo, spec.get("dtype", "fp32"))


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(1)
    start = time.perf_counter()
    backend = build(spec, spec.get("resume_from") or spec["model"])
    result: dict[str, Any] = {"init_s": time.perf_counter() - start, "world_size": backend.world_size}
    if spec.get("resume_from"):
        backend.load(Path(spec["resume_from"]) / "backend")
        result["stats"] = train(backend, spec, spec["steps"], first_step=spec["skip"])
    else:
        result["stats"] = train(backend, spec, spec["steps"])
    if spec.get("save"):
        from rlvr.learner import Learner
        from rlvr.models import load_tokenizer

        target = Path(spec["save"])
        backend.save_pretrained(target, load_tokenizer(spec["model"]))
        backend.save(target / "backend")
        algo, trainer = configs(spec)
        data = torch.load(spec["batch"], weights_only=False)
        learner = Learner(backend, algo, trainer, max_new_tokens=MAX_NEW, temperature=1.0,
                          dtype=spec.get("dtype", "fp32"))
        result["logprobs"] = learner.logprobs(data["batch"]).tolist()  # the whole batch, every rank
        result["named"] = {k: float(v.double().sum()) for k, v in backend.named_tensors()}
        result["push"] = push_to_reading_engine(backend, spec["model"])
        result["after_save"] = train(backend, spec, spec["after"], first_step=spec["steps"])
    result["peak_rss_mb"] = _peak_rss_mb()
    Path(spec["out"], f"rank{backend.rank}.json").write_text(json.dumps(result))


class _ReadingLLM:
    """Reads a weight push the way vLLM's loader does and keeps one sum per tensor (no vLLM in this process)."""

    def __init__(self):
        self.loaded: dict[str, float] = {}
        self.calls, self.llm_engine = 0, self

    def collective_rpc(self, method, kwargs):
        self.calls += 1
        for name, tensor in kwargs["weights_iterator"]:
            self.loaded[name] = float(tensor.double().sum())

    def reset_prefix_cache(self):
        pass

    def set_weight_version(self, version):
        pass


class _CountingSource:
    """The backend's `named_tensors` with a count of the yielded (gathered) tensors still alive."""

    def __init__(self, backend):
        self.backend, self.live, self.peak, self.live_numel, self.peak_numel = backend, 0, 0, 0, 0

    @property
    def module(self):
        return self.backend.module

    def _freed(self, numel: int) -> None:
        self.live, self.live_numel = self.live - 1, self.live_numel - numel

    def named_tensors(self):
        import weakref

        for name, tensor in self.backend.named_tensors():
            self.live, self.live_numel = self.live + 1, self.live_numel + tensor.numel()
            self.peak, self.peak_numel = max(self.peak, self.live), max(self.peak_numel, self.live_numel)
            weakref.finalize(tensor, self._freed, tensor.numel())
            yield name, tensor
            del tensor


def push_to_reading_engine(backend, model_dir: str) -> dict[str, Any]:
    """`VLLMEngine.update_weights` from this backend into an engine that reads like vLLM: how many gathered
    tensors were alive at once (the rank's whole model would be every one of them)."""
    from rlvr.models import load_tokenizer
    from rlvr.models.lora import plain_shapes
    from rlvr.rollout.vllm import VLLMEngine

    llm, source = _ReadingLLM(), _CountingSource(backend)
    VLLMEngine(backend.module, load_tokenizer(model_dir), llm=llm, on_gpu=False).update_weights(source, 1)
    sizes = sorted(math.prod(shape) for shape in plain_shapes(backend.module).values())  # whole, not shards
    return {"calls": llm.calls, "loaded": llm.loaded, "peak_live": source.peak, "peak_live_numel": source.peak_numel,
            "two_largest_numel": sum(sizes[-2:]), "model_numel": sum(sizes)}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main(sys.argv[1])
