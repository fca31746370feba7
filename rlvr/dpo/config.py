"""Typed configuration of `rlvr-dpo` (root config ``conf/dpo.yaml``), declared and documented once.

The pairs come from the same data block and preference sources as `rlvr-rm`
(`rlvr.rm.config.RMDataConfig`, `rlvr.rm.data`), so "DPO on the same pairs" is the same
``data.*`` values. The starting policy is either a model directory (``policy.path``) or
the supervised warm-up that `rlvr-train` composed with ``policy.train_overrides`` builds
(cached: the same overrides give GRPO and DPO the very same SFT model); that composed
config also supplies the held-out prompts the true-preference rate is measured on and the
answer budget (``rollout.max_new_tokens``). The policy's ``model.*`` block (`ModelConfig`:
device, precision, attention, LoRA, and for the warm-up the base model and ``model.sft``) is
rlvr-dpo's own merged onto the composed one (`merged_model`): every key rlvr-dpo sets to
something other than the schema's default wins; the rest keep what ``policy.train_overrides``
gave. ``DPOConfig`` is stored in Hydra's ConfigStore as ``dpo_schema``; `validate_dpo` checks
the relations and names the fix.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from rlvr.config import ConfigError, DeepSpeedConfig, LoggerConfig, ModelConfig, OptimConfig
from rlvr.rm.config import RMDataConfig, check_pair_trainer, check_preference_data

__all__ = ["DPOConfig", "DPOLossConfig", "DPOPolicyConfig", "DPOTrainerConfig", "validate_dpo", "dpo_arithmetic",
           "merged_model", "register_dpo_schema"]


@dataclass
class DPOLossConfig:
    beta: float = 0.1  # implicit reward = beta * (log pi - log pi_ref) of a whole answer; larger = tighter leash
    label_smoothing: float = 0.0  # conservative DPO: assumed probability that a pair's label is flipped (< 0.5)
    sft_coef: float = 0.0  # adds sft_coef * (per-token NLL of the chosen answer) to every pair's loss (0 = none)


@dataclass
class DPOPolicyConfig:
    path: Optional[str] = None  # start from this Hugging Face policy directory (e.g. an rlvr-sft checkpoint);
    #   null = the supervised warm-up of rlvr-train composed with train_overrides (its model.sft block)
    train_overrides: list[str] = field(default_factory=list)  # rlvr-train overrides (e.g. +experiment=tiny_rm_grpo):
    #   the warm-up, the held-out prompts (data.*), rollout.max_new_tokens, and the model.* keys rlvr-dpo's own
    #   model block leaves at their defaults


@dataclass
class DPOTrainerConfig:
    backend: str = "torch"  # registered learner backend: torch (one process) | deepspeed (ZeRO-2/3; torchrun for
    #   several ranks: each rank takes its share of every batch, gradients are averaged; docs/distributed.md)
    epochs: int = 1  # passes over the training pairs
    max_steps: int = 0  # stop after this many optimizer steps (0 = the epochs decide)
    batch_size: int = 32  # pairs per optimizer step
    micro_batch_size: int = 8  # pairs per forward/backward (2x as many answers; accumulation below batch_size)
    reference: str = "precompute"  # reference log-probs: precompute (once, before training) | online (every step)
    eval_every: int = 0  # held-out pairs' implicit-reward accuracy every N steps (0 = before and after only)
    kl_samples: int = 2  # answers sampled per held-out prompt for the KL estimate at the start and the end
    seed: int = 0  # pair order and sampling
    threads: int = 0  # torch CPU threads (0 = leave torch's default)
    save_every: int = 0  # checkpoint every N steps (0 = no checkpoints; model/ is written at the end either way)
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    gradient_checkpointing: bool = False  # recompute each layer's activations in the backward pass (less memory,
    #   about a third more compute)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=5e-7))  # AdamW; 5e-7 suits a pretrained
    #   policy (the tiny model wants ~1e-4)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)  # options of the deepspeed backend


@dataclass
class DPOConfig:
    run_name: str = "${now:%Y%m%d-%H%M%S}"  # run directory is runs/<run_name> (set it to resume a run)
    resume: str = "never"  # never | auto (continue from the newest checkpoint in the run directory) | a checkpoint path
    model: ModelConfig = field(default_factory=ModelConfig)  # the policy: precision, attention, LoRA, device; keys
    #   left at their defaults take policy.train_overrides' values (merged_model)
    policy: DPOPolicyConfig = field(default_factory=DPOPolicyConfig)
    data: RMDataConfig = field(default_factory=RMDataConfig)  # the pairs: rlvr-rm's data block (file | preference_task)
    loss: DPOLossConfig = field(default_factory=DPOLossConfig)
    trainer: DPOTrainerConfig = field(default_factory=DPOTrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


def validate_dpo(cfg: DPOConfig, world_size: int = 1) -> None:
    """Reject inconsistent settings with a message that names the fix (``world_size``: ranks of the launch).
    The merged ``model.*`` block is checked again once ``policy.train_overrides`` is composed."""
    from rlvr.dpo.reference import REFERENCES
    from rlvr.registry import RegistryError

    t, loss = cfg.trainer, cfg.loss
    check_preference_data(cfg.data, "use the built-in task: data.source=preference_task")
    try:
        REFERENCES.check(t.reference)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    if loss.beta <= 0:
        raise ConfigError(f"loss.beta={loss.beta}: DPO needs beta > 0 (0.1 is the usual choice)")
    if not 0.0 <= loss.label_smoothing < 0.5:
        raise ConfigError(f"loss.label_smoothing={loss.label_smoothing}: use a flip probability in [0, 0.5)")
    if loss.sft_coef < 0:
        raise ConfigError(f"loss.sft_coef={loss.sft_coef}: use a value >= 0")
    if t.epochs < 1 or t.batch_size < 1 or t.micro_batch_size < 1 or t.batch_size % t.micro_batch_size:
        raise ConfigError(f"trainer.batch_size={t.batch_size} must be a multiple of trainer.micro_batch_size="
                          f"{t.micro_batch_size} (both >= 1) and trainer.epochs >= 1")
    if t.max_steps < 0 or t.eval_every < 0 or t.kl_samples < 0 or t.save_every < 0:
        raise ConfigError("trainer.max_steps, trainer.eval_every, trainer.kl_samples and trainer.save_every must "
                          "be >= 0")
    check_pair_trainer(t, cfg.model, world_size)
    if cfg.resume not in ("never", "auto") and not cfg.resume:
        raise ConfigError("resume must be never, auto or a checkpoint path")


def _override(base: Any, top: Any, default: Any) -> Any:
    """``base`` with every field where ``top`` differs from ``default`` taken from ``top`` (nested dataclasses
    field by field)."""
    changes = {}
    for f in dataclasses.fields(base):
        b, t, d = getattr(base, f.name), getattr(top, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(t):
            changes[f.name] = _override(b, t, d)
        elif t != d:
            changes[f.name] = t
    return dataclasses.replace(base, **changes)


def merged_model(dpo: ModelConfig, train: ModelConfig) -> ModelConfig:
    """The policy's ``model.*``: ``train`` (composed from ``policy.train_overrides``) with every key that rlvr-dpo's
    own block ``dpo`` sets to a value other than the schema's default taken from ``dpo``."""
    from omegaconf import OmegaConf

    default = OmegaConf.to_object(OmegaConf.structured(ModelConfig))  # interpolations resolved, like ``dpo``'s
    return _override(train, dpo, default)


def dpo_arithmetic(cfg: DPOConfig, train_pairs: int, world_size: int = 1) -> tuple[int, str]:
    """(optimizer steps, the batch arithmetic said out loud) for ``train_pairs`` training pairs."""
    t = cfg.trainer
    per_epoch = max(1, -(-train_pairs // t.batch_size))
    total = per_epoch * t.epochs if not t.max_steps else min(t.max_steps, per_epoch * t.epochs)
    share = t.batch_size // world_size
    micro = f"{-(-share // t.micro_batch_size)} micro-batch(es) of {min(share, t.micro_batch_size)} pairs"
    text = (f"batch: {t.batch_size} pairs ({2 * t.batch_size} answers) per step = "
            + (micro if world_size == 1 else f"{share} pairs per rank over {world_size} ranks = {micro} each")
            + f"; {train_pairs} pairs -> {per_epoch} steps per epoch x {t.epochs} epoch(s)"
            f"{f', capped at {t.max_steps}' if t.max_steps else ''} = {total} steps; reference log-probs: {t.reference}")
    return total, text


def register_dpo_schema() -> None:
    ConfigStore.instance().store(name="dpo_schema", node=DPOConfig)
