"""Typed configuration of `rlvr-rm` (root config ``conf/rm.yaml``), declared and documented once.

The root reuses `rlvr-train`'s ``model/`` and ``logger/`` groups (`ModelConfig`,
`LoggerConfig`) and its `OptimConfig`; the data, loss and trainer blocks are the reward
model's own. ``RMConfig`` is stored in Hydra's ConfigStore as ``rm_schema``, the first
entry of ``conf/rm.yaml``'s defaults, so unknown keys and wrong types are errors when the
config is composed; `validate_rm` checks the relations and names the fix.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from rlvr.config import ConfigError, DeepSpeedConfig, LoggerConfig, ModelConfig, OptimConfig

__all__ = ["RMConfig", "RMDataConfig", "RMLossConfig", "RMTrainerConfig", "validate_rm", "check_preference_data",
           "check_pair_trainer", "register_rm_schema", "rm_arithmetic"]


@dataclass
class RMDataConfig:
    source: str = "file"  # registered preference source: file | preference_task (the built-in task)
    path: Optional[str] = None  # file: preference data (.jsonl, .jsonl.gz, .json, .parquet; any rlvr.preference shape)
    eval_path: Optional[str] = None  # file: held-out preference data (null = hold out eval_fraction of the prompts)
    format: str = "auto"  # file: the rows' shape: auto (each row's detected) | ranked | ultrafeedback | chat_pair | hh |
    #                       prompt_pair (rlvr/preference/adapters.py)
    eval_fraction: float = 0.1  # file without eval_path: share of the prompts held out (split by prompt: no leaks)
    extra_eval: dict[str, str] = field(default_factory=dict)  # more eval sets, name -> file (metrics eval/<name>/*)
    max_pairs_per_prompt: int = 16  # cap on the pairs one ranked row expands into (largest rank gaps first)
    max_chars: Optional[int] = None  # drop pairs whose context + longer answer exceed this many characters
    max_tokens: int = 1024  # rendered prompt + answer token budget (longer inputs keep their end; counted)
    chat_template: str = "auto"  # how a context and answer become text: auto (the tokenizer's own chat template) |
    #   none (raw text joined by blank lines) | PATH (a Jinja file, saved with the model); rlvr-dpo: also the
    #   policy's (policy.train_overrides may set data.chat_template instead, not to a different value)
    num_prompts: int = 2000  # preference_task: training rows (cycling over the task's 800 training prompts)
    num_eval_prompts: int = 200  # preference_task: held-out rows (over its 200 held-out prompts, true-rule ranks)
    answers_per_prompt: int = 4  # preference_task: ranked answers per prompt
    length_bias: float = 0.0  # preference_task: how much the generator's preference leans toward length
    seed: int = 0  # preference_task generator seed, and the seed of the held-out split


@dataclass
class RMLossConfig:
    margin_scale: float = 1.0  # loss -log sigmoid(r_c - r_r - margin_scale * margin); 0 ignores the data's margins
    center_coef: float = 0.0  # reward centering: + center_coef * (r_c + r_r)^2 (Eisenstein et al.; 0.01 is usual)


@dataclass
class RMTrainerConfig:
    backend: str = "torch"  # registered learner backend: torch (one process) | deepspeed (ZeRO-2/3; torchrun for
    #   several ranks: each rank scores its share of every batch, gradients are averaged; docs/distributed.md)
    epochs: int = 1  # passes over the training pairs
    batch_size: int = 32  # pairs per optimizer step
    micro_batch_size: int = 8  # pairs per forward/backward (2x as many sequences; accumulation below batch_size)
    group_by_prompt: bool = True  # batches hold whole prompts: each answer of a ranking is scored once for all
    #   its pairs (False: pairs shuffled independently)
    freeze_backbone: bool = False  # train only the head, on features of the frozen backbone computed once
    eval_every: int = 0  # evaluate every eval set every N steps (0 = before and after training only)
    eval_batch_size: int = 32  # pairs per scoring batch in evaluation and feature extraction
    train_eval_pairs: int = 512  # training pairs scored for the train-set accuracy at each evaluation
    save_every: int = 0  # checkpoint every N steps (0 = only the final model)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    seed: int = 0  # shuffling and head initialisation (and the tiny backbone's initialisation)
    threads: int = 0  # torch CPU threads (0 = leave torch's default)
    gradient_checkpointing: bool = False  # recompute each layer's activations in the backward pass (less memory,
    #   about a third more compute)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-5))  # AdamW; lr 1e-5 suits a full
    #   pretrained backbone (a frozen backbone's head wants ~1e-3)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)  # options of the deepspeed backend


@dataclass
class RMConfig:
    run_name: str = "${now:%Y%m%d-%H%M%S}"  # run directory is runs/<run_name> (set it to resume a run)
    resume: str = "never"  # never | auto (continue from the newest checkpoint in the run directory) | a checkpoint path
    model: ModelConfig = field(default_factory=ModelConfig)  # the backbone: tiny Llama, HF directory, package:NAME;
    #   precision, attention and LoRA (model.lora.rank > 0: adapters on the backbone, the score head trained fully)
    data: RMDataConfig = field(default_factory=RMDataConfig)
    loss: RMLossConfig = field(default_factory=RMLossConfig)
    trainer: RMTrainerConfig = field(default_factory=RMTrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


def check_preference_data(d: RMDataConfig, builtin: str) -> None:
    """The ``data.*`` block that rlvr-rm and rlvr-dpo share; ``builtin`` says how to use the built-in task instead."""
    from rlvr.config_checks import check_chat_template
    from rlvr.registry import RegistryError
    from rlvr.rm.data import PREFERENCE_SOURCES

    from rlvr.preference.adapters import ADAPTERS

    try:
        PREFERENCE_SOURCES.check(d.source)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    if d.format != "auto" and d.format not in ADAPTERS:
        raise ConfigError(f"data.format={d.format}: unknown preference format; known: auto, {', '.join(ADAPTERS)}")
    if d.source == "file" and not d.path:
        raise ConfigError(f"data.source=file needs data.path: a preference file (jsonl, jsonl.gz, json, parquet); "
                          f"or {builtin}")
    if d.source == "file" and not d.eval_path and not 0.0 < d.eval_fraction < 1.0:
        raise ConfigError(f"data.eval_fraction={d.eval_fraction}: without data.eval_path a share of the prompts "
                          f"in (0, 1) is held out; set e.g. data.eval_fraction=0.1 or data.eval_path")
    check_chat_template(d.chat_template)
    if d.max_pairs_per_prompt < 1 or d.max_tokens < 8 or d.answers_per_prompt < 2:
        raise ConfigError("data.max_pairs_per_prompt >= 1, data.max_tokens >= 8 and data.answers_per_prompt >= 2")
    if not 0.0 <= d.length_bias <= 1.0 or d.num_prompts < 1 or d.num_eval_prompts < 1:
        raise ConfigError(f"data.length_bias={d.length_bias} is a probability in [0, 1]; data.num_prompts and "
                          f"data.num_eval_prompts >= 1")


def check_pair_trainer(t: Any, model: ModelConfig, world_size: int) -> None:
    """The backend, precision and data-parallel settings rlvr-rm and rlvr-dpo share (``t``: their trainer block)."""
    from rlvr.learner.base import BACKENDS
    from rlvr.models.precision import check_model_settings
    from rlvr.registry import RegistryError

    try:
        BACKENDS.check(t.backend)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    check_model_settings(model, t.backend)
    if t.backend == "deepspeed" and t.deepspeed.zero_stage not in (2, 3):
        raise ConfigError(f"trainer.deepspeed.zero_stage={t.deepspeed.zero_stage}: choose 2 or 3")
    if world_size > 1 and t.backend == "torch":
        raise ConfigError(f"trainer.backend=torch runs one process, but this launch has {world_size} ranks; "
                          f"use trainer.backend=deepspeed (ZeRO-2/3 data parallelism) or launch one process")
    if t.batch_size % world_size:
        fit = world_size * max(1, round(t.batch_size / world_size))
        raise ConfigError(f"trainer.batch_size={t.batch_size} cannot be split into {world_size} equal per-rank "
                          f"shares; set trainer.batch_size to a multiple of {world_size} (e.g. {fit})")


def validate_rm(cfg: RMConfig, world_size: int = 1) -> None:
    """Reject inconsistent settings with a message that names the fix (``world_size``: ranks of the launch)."""
    t = cfg.trainer
    check_preference_data(cfg.data, "train on the built-in task: rlvr-rm +experiment=tiny_rm")
    if t.epochs < 1 or t.batch_size < 1 or t.micro_batch_size < 1 or t.batch_size % t.micro_batch_size:
        raise ConfigError(f"trainer.batch_size={t.batch_size} must be a multiple of trainer.micro_batch_size="
                          f"{t.micro_batch_size} (both >= 1) and trainer.epochs >= 1")
    check_pair_trainer(t, cfg.model, world_size)
    if t.freeze_backbone and t.backend != "torch":
        raise ConfigError("trainer.freeze_backbone trains the head alone on features computed once: a linear layer "
                          "that needs no sharding; use trainer.backend=torch in one process")
    if t.freeze_backbone and cfg.model.lora.rank > 0:
        raise ConfigError("trainer.freeze_backbone and model.lora.rank > 0: a frozen backbone takes no adapter; "
                          "choose one (model.lora.rank=0, or trainer.freeze_backbone=false)")
    if cfg.model.sft.steps:
        raise ConfigError("model.sft.steps: rlvr-rm runs no supervised warm-up; run rlvr-sft first and point "
                          "model.path at its checkpoint")
    if cfg.loss.center_coef < 0 or cfg.loss.margin_scale < 0:
        raise ConfigError("loss.center_coef and loss.margin_scale must be >= 0")
    if cfg.resume not in ("never", "auto") and not cfg.resume:
        raise ConfigError("resume must be never, auto or a checkpoint path")


def rm_arithmetic(cfg: RMConfig, train_pairs: int, world_size: int = 1) -> tuple[int, str]:
    """(total optimizer steps, the batch arithmetic said out loud) for ``train_pairs`` training pairs."""
    t = cfg.trainer
    per_epoch = max(1, -(-train_pairs // t.batch_size))
    total = per_epoch * t.epochs
    share = t.batch_size // world_size
    micro = f"{-(-share // t.micro_batch_size)} micro-batch(es) of {min(share, t.micro_batch_size)} pairs"
    text = (f"batch: {t.batch_size} pairs ({2 * t.batch_size} answers) per step = "
            + (f"{micro}" if world_size == 1 else f"{share} pairs per rank over {world_size} ranks = {micro} each")
            + f"; {train_pairs} pairs -> {per_epoch} steps per epoch x {t.epochs} epoch(s) = {total} steps"
            f"{'; backbone frozen (head only, features computed once)' if t.freeze_backbone else ''}")
    return total, text


def register_rm_schema() -> None:
    ConfigStore.instance().store(name="rm_schema", node=RMConfig)
