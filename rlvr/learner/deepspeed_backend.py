"""The DeepSpeed ZeRO-2/3 learner backend: the policy sharded across the ranks of a torchrun job.

``trainer.backend=deepspeed`` with ``trainer.deepspeed.zero_stage`` 2 (gradients and optimizer
state sharded; every rank keeps whole parameters) or 3 (parameters sharded too, gathered
layer by layer for each forward and backward). DeepSpeed is imported here only, and only
when this backend is built; without it the run stops with one `ConfigError` line.

Contracts the caller relies on:

- **Gradient accumulation is the loop's.** DeepSpeed runs with
  ``gradient_accumulation_steps: 1`` and ``managed_gradient_accumulation: false``, so
  ``backward(loss)`` neither divides the loss nor decides a boundary; gradients of every
  ``backward`` call add up until ``step()``, the only place the optimizer steps. The loss
  therefore carries the mini-batch-wide normalizers, exactly as for
  `rlvr.learner.torch_backend.TorchBackend`. (With DeepSpeed's managed accumulation and GAS 1
  instead, every ``backward`` is a boundary, and ZeRO-2 on two ranks lost most of the
  accumulated gradient: norm 0.62 instead of 1.43 after 3 micro-batches.)
- **Gradients are averaged across ranks.** The update applied is the mean over ranks of
  each rank's accumulated gradient. For the result to equal a single-process run over the
  union of the ranks' rows, rank ``r`` must normalize by ``global_normalizer / world_size``:
  with equal shares of sequences that is the rank's own count for a per-sequence mean; a
  token mean needs the global token count (an all-reduce) divided by ``world_size``.
- **Collectives.** Under ZeRO-3 every ``forward``/``backward`` gathers parameters, so all
  ranks must make the same number of calls in the same order (equal micro-batch counts).
  ``step``, ``save``, ``load``, ``save_pretrained``, ``named_tensors`` and ``reference`` are
  collective under both stages: call them on every rank. A rank that hangs or dies fails
  the others after ``trainer.deepspeed.timeout_s`` seconds.

``step()`` returns the global pre-clip gradient norm; ``gradient_clipping`` is
``trainer.optim.max_grad_norm`` (0 disables it). The optimizer is a client
``torch.optim.AdamW`` (no compiled Adam op), or DeepSpeed's ``DeepSpeedCPUAdam`` when the
optimizer state is offloaded (its op is compiled once into ``trainer.deepspeed.cache_dir``,
as is the shared-memory op DeepSpeed builds on CPU). The learning rate follows
`rlvr.learner.torch_backend.lr_lambda`, stepped once per ``step()``.
"""
from __future__ import annotations

import ctypes
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch
import torch.distributed as dist

from rlvr.config import ConfigError, DeepSpeedConfig, OptimConfig, TrainerConfig
from rlvr.distributed import init_process_group as init_distributed  # torchrun's group, or 1 rank
from rlvr.learner.torch_backend import lr_lambda
from rlvr.models.lora import plain_tensors

__all__ = ["DeepSpeedBackend", "init_distributed", "ds_config"]

_TAG = "state"  # the one checkpoint tag inside a backend directory


def _import_deepspeed(cache_dir: str):
    """DeepSpeed, with compiled ops cached in ``cache_dir``; a missing install is a ConfigError."""
    os.environ["TORCH_EXTENSIONS_DIR"] = str(Path(_resolve(cache_dir)).expanduser())
    try:
        import deepspeed
    except ImportError as exc:
        raise ConfigError(f"trainer.backend=deepspeed needs DeepSpeed ({exc}): pip install deepspeed") from None
    return deepspeed


def _resolve(value: str) -> str:
    """A config string that still holds an interpolation (a dataclass built in code, not composed)."""
    if "${" not in value:
        return value
    from omegaconf import OmegaConf

    return str(OmegaConf.create({"v": value}).v)


def buffer_sizes(ds: DeepSpeedConfig, hidden_size: int) -> dict[str, int]:
    """Bucket, live-parameter and optimizer sub-group sizes in elements: the config's, or sized to the model.

    DeepSpeed's defaults (buckets of 5e8 elements, 1e9 live parameters, one optimizer sub-group
    of up to 1e9) are sized for large models on GPUs; for a model of a few hundred million
    parameters they mean the whole gradient sits in one bucket, every gathered ZeRO-3 layer
    stays gathered, and AdamW's temporaries are as large as the rank's whole shard, which
    is why ZeRO-3 once peaked above one process on CPU (docs/distributed.md, "Memory").
    """
    bucket = ds.bucket_size or max(hidden_size * hidden_size, 1 << 18)
    return {"bucket": bucket, "live": ds.max_live_parameters or min(10 ** 9, 10 * bucket),
            "sub_group": ds.sub_group_size or min(10 ** 9, 30 * bucket)}


def ds_config(ds: DeepSpeedConfig, optim: OptimConfig, micro_batch_size: int, dtype: str,
              train: bool = True, hidden_size: int = 0) -> dict[str, Any]:
    """The DeepSpeed config dict of the policy (``train``) or of the frozen reference."""
    size = buffer_sizes(ds, hidden_size)
    zero: dict[str, Any] = {"stage": ds.zero_stage, "reduce_bucket_size": size["bucket"]}
    if ds.zero_stage == 2:
        zero["allgather_bucket_size"] = size["bucket"]
    if ds.zero_stage == 3:
        zero.update({"stage3_prefetch_bucket_size": int(0.9 * size["bucket"]), "sub_group_size": size["sub_group"],
                     "stage3_max_live_parameters": size["live"], "stage3_max_reuse_distance": size["live"]})
        zero["stage3_param_persistence_threshold"] = ds.stage3_param_persistence_threshold
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        if ds.offload_params:
            zero["offload_param"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    if train and ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": torch.cuda.is_available()}
    config: dict[str, Any] = {
        "zero_optimization": zero,
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": 1,  # the loop accumulates; see the module docstring
        "managed_gradient_accumulation": False,  # backward accumulates; step() is the only boundary
        "bf16": {"enabled": dtype == "bf16"},
        "steps_per_print": 1 << 30,
        "wall_clock_breakdown": False,
    }
    if train:
        config["gradient_clipping"] = max(0.0, optim.max_grad_norm)
    return config


def _return_freed_memory() -> None:
    """glibc (CPU runs): serve allocations above 64 KiB with mmap, so a freed tensor goes back to the OS.

    By default glibc raises its mmap threshold as large blocks are freed and then keeps the
    freed memory in its heaps; DeepSpeed's flat shards and buckets, reallocated every step,
    made a CPU rank's resident memory grow by about 300 MB per step (SmolLM2-135M, ZeRO-3).
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 1 << 16)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def _check(ds: DeepSpeedConfig, dtype: str) -> None:
    if ds.zero_stage not in (2, 3):
        raise ConfigError(f"trainer.deepspeed.zero_stage={ds.zero_stage}: choose 2 or 3")
    if ds.offload_params and ds.zero_stage != 3:
        raise ConfigError("trainer.deepspeed.offload_params needs zero_stage=3 (ZeRO-2 keeps whole parameters)")
    if dtype not in ("fp32", "bf16"):
        raise ConfigError(f"model.dtype={dtype}: the deepspeed backend runs fp32 or bf16")


class DeepSpeedBackend:
    """A DeepSpeed engine around the policy; see the module docstring for the contracts."""

    def __init__(self, model: torch.nn.Module, optim: OptimConfig, total_optimizer_steps: int, *,
                 trainer: TrainerConfig, dtype: str = "fp32", master_dtype: str = "fp32"):
        ds_cfg = trainer.deepspeed
        _check(ds_cfg, dtype)
        self.ds = _import_deepspeed(ds_cfg.cache_dir)
        init_distributed(ds_cfg.timeout_s)
        self.ds_cfg, self.optim_cfg, self.dtype = ds_cfg, optim, dtype
        self.micro_batch_size = trainer.micro_batch_size
        self.hidden_size = int(getattr(getattr(model, "config", None), "hidden_size", 0) or 0)
        if not torch.cuda.is_available():
            _return_freed_memory()
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = self._optimizer(params, optim)
        schedule = lr_lambda(optim.warmup_steps, total_optimizer_steps, optim.schedule, optim.min_lr_ratio)
        self.engine, self.optimizer, _, self.scheduler = self.ds.initialize(
            model=model, optimizer=optimizer, lr_scheduler=lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, schedule),
            config=ds_config(ds_cfg, optim, trainer.micro_batch_size, dtype, hidden_size=self.hidden_size),
            dist_init_required=False)
        self._tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))

    def _optimizer(self, params: list[torch.nn.Parameter], optim: OptimConfig) -> torch.optim.Optimizer:
        """AdamW; DeepSpeed's CPU Adam (AdamW mode, compiled once) when the optimizer state is offloaded."""
        kwargs = dict(lr=optim.lr, betas=tuple(optim.betas), weight_decay=optim.weight_decay)
        if self.ds_cfg.offload_optimizer:
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            return DeepSpeedCPUAdam(params, adamw_mode=True, **kwargs)
        return torch.optim.AdamW(params, **kwargs)

    @property
    def stage(self) -> int:
        return self.ds_cfg.zero_stage

    @property
    def module(self) -> torch.nn.Module:
        return self.engine.module

    @property
    def device(self) -> torch.device:
        return torch.device(self.engine.device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def lr(self) -> float:
        return float(self.engine.get_lr()[0])

    def forward(self, **inputs: Any) -> Any:
        return self.engine(**inputs)

    def backward(self, loss: torch.Tensor) -> None:
        """Adds this micro-batch's gradient (averaged over ranks) to the accumulated one; never steps."""
        self.engine.backward(loss)

    def step(self) -> float:
        """Clip, optimizer step, schedule step, zero the gradients; returns the global pre-clip norm."""
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else float("nan")

    def save(self, directory: Path) -> None:
        """Resumable state (sharded weights, optimizer, schedule) into ``directory``; collective.

        Every rank writes its own shard: across nodes ``directory`` must be on a shared filesystem.
        """
        self.engine.save_checkpoint(str(directory), tag=_TAG)

    def load(self, directory: Path) -> None:
        """Restore what `save` wrote, with the same world size and ZeRO stage; collective."""
        path, _ = self.engine.load_checkpoint(str(directory), tag=_TAG, load_optimizer_states=True,
                                              load_lr_scheduler_states=True)
        if path is None:
            raise FileNotFoundError(f"no DeepSpeed state under {directory}")

    def save_pretrained(self, directory: Path, tokenizer: Any) -> None:
        """Full weights in Hugging Face format (plain ``from_pretrained`` loads them); rank 0 writes; collective."""
        state: Optional[dict[str, torch.Tensor]] = None
        if self.stage == 3:
            state = self.engine._zero3_consolidated_16bit_state_dict()
            if state is not None and self._tied:
                state.pop("lm_head.weight", None)
        if self.is_main:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self.module.save_pretrained(directory, state_dict=state)
            tokenizer.save_pretrained(directory)
        dist.barrier()

    def named_tensors(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Every state-dict tensor, complete, on every rank; collective under ZeRO-3 (consume on all ranks).

        Under ZeRO-3 each parameter is gathered in turn and a copy is yielded, so at most one
        gathered parameter beyond what the consumer keeps is alive at a time.
        """
        if self.stage != 3:
            yield from plain_tensors(self.module)
            return
        params = dict(self.module.named_parameters(remove_duplicate=False))
        for name, tensor in self.module.state_dict(keep_vars=True).items():
            param = params.get(name)
            if param is None or not hasattr(param, "ds_id"):
                yield name, tensor.detach()
                continue
            with self.ds.zero.GatheredParameters([param]):
                yield name, param.detach().clone()

    def reference(self, model: torch.nn.Module) -> Callable[..., Any]:
        """The frozen reference: a ZeRO-3 inference engine (sharded like the policy) or, under ZeRO-2, the module."""
        model.eval().requires_grad_(False)
        if self.stage != 3:
            return model.to(self.device)
        config = ds_config(self.ds_cfg, self.optim_cfg, self.micro_batch_size, self.dtype, train=False,
                           hidden_size=self.hidden_size)
        engine, *_ = self.ds.initialize(model=model, config=config, dist_init_required=False)
        engine.eval()
        return engine
