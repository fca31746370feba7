"""The trainable policy as a run configures it: precision, attention, LoRA and gradient checkpointing.

One function builds it for every stage that trains a model (`rlvr-train`, `rlvr-sft`, `rlvr-dpo`;
`rlvr-rm` passes its own loader for the classifier and keeps its score head trained fully).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

import torch

from rlvr.models.lora import adapter_disabled, apply_lora, is_adapted, is_adapter_dir, load_adapter
from rlvr.models.precision import frozen_dtype
from rlvr.models.weights import load_model

__all__ = ["load_policy", "prepare_trainable", "load_reference", "policy_line"]


def load_policy(model_cfg: Any, start: Path, checkpoint: Optional[Path] = None,
                gradient_checkpointing: bool = False, load: Optional[Callable[[Path], torch.nn.Module]] = None,
                modules_to_save: Optional[list[str]] = None) -> torch.nn.Module:
    """The policy: ``checkpoint`` when resuming (an adapter checkpoint goes back on ``start``), else
    ``start`` with a fresh adapter where ``model.lora.rank > 0``; stored as ``model.weights_dtype``.
    ``load`` builds the model from a directory (default: the causal LM, `load_model`)."""
    if load is None:
        def load(path: Path) -> torch.nn.Module:
            return load_model(path, model_cfg.weights_dtype, model_cfg.attn_implementation)
    if checkpoint is not None and is_adapter_dir(checkpoint):
        model = load_adapter(checkpoint, load(start), trainable=True)
        return _checkpointed(model, gradient_checkpointing)
    return prepare_trainable(load(checkpoint or start), model_cfg, start, gradient_checkpointing, modules_to_save)


def prepare_trainable(model: torch.nn.Module, model_cfg: Any, base_dir: Path, gradient_checkpointing: bool,
                      modules_to_save: Optional[list[str]] = None) -> torch.nn.Module:
    """A loaded model made ready to train: a LoRA adapter where ``model.lora.rank > 0`` (recording
    ``base_dir`` as its base, so its checkpoints find it), gradient checkpointing when asked."""
    if model_cfg.lora.rank > 0:
        model = apply_lora(model, model_cfg.lora, modules_to_save)
        model.peft_config["default"].base_model_name_or_path = str(Path(base_dir).resolve())
    return _checkpointed(model, gradient_checkpointing)


def _checkpointed(model: torch.nn.Module, on: bool) -> torch.nn.Module:
    if on:
        # non-reentrant: works with frozen inputs (LoRA) and without enable_input_require_grads
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    return model


def load_reference(model_cfg: Any, start: Path, policy: torch.nn.Module, place) -> Any:
    """The frozen reference policy: an adapted policy with its adapter disabled (no second copy), else
    ``start`` loaded as ``model.frozen_dtype`` and placed by ``place`` (the backend's `reference`)."""
    if is_adapted(policy):
        return adapter_disabled(policy.forward, policy)
    return place(load_model(start, frozen_dtype(model_cfg), model_cfg.attn_implementation))


def policy_line(model: torch.nn.Module, gradient_checkpointing: bool) -> str:
    """What trains, for the start-up banner."""
    def numel(p: torch.nn.Parameter) -> int:  # a ZeRO-3 partitioned parameter by its whole size
        return int(getattr(p, "ds_numel", p.numel()))

    total = sum(numel(p) for p in model.parameters())
    trained = sum(numel(p) for p in model.parameters() if p.requires_grad)
    if is_adapted(model):
        c = model.peft_config["default"]
        adapted = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if hasattr(m, "lora_A")})
        whole = f" (+ {', '.join(sorted(c.modules_to_save))} trained whole)" if c.modules_to_save else ""
        what = (f"LoRA rank {c.r}, alpha {c.lora_alpha:g} on {', '.join(adapted)}{whole}: {trained / 1e6:.2f}M of "
                f"{total / 1e6:.2f}M parameters train")
    else:
        what = f"full fine-tuning ({trained / 1e6:.2f}M parameters)"
    return f"policy: {what}; gradient checkpointing {'on' if gradient_checkpointing else 'off'}"
