"""Precision, as three named choices (`model.*`), checked together before anything is loaded.

- ``dtype``: the compute precision (fp32, or bf16 autocast), as it always was;
- ``weights_dtype``: the policy's stored weights (fp32 | bf16; bf16 computes in bf16 too);
- ``master_dtype``: the optimizer's master copy of the trained weights and its states (fp32 by
  default: with bf16 weights an fp32 copy is stepped and copied back, `rlvr.learner.master`);
- ``frozen_dtype``: frozen models (reference, reward models, a local judge) follow the compute
  precision unless set (bf16 | fp16 | fp32 | auto = what the checkpoint says).

Training in fp16 is refused: fp16 gradients underflow without loss scaling, which rlvr does not do.
"""
from __future__ import annotations

from typing import Any, Optional, Union

import torch

from rlvr.errors import UserError

__all__ = ["DTYPES", "torch_dtype", "frozen_dtype", "check_precision", "check_model_settings", "precision_line",
           "PrecisionError"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_FP16 = "training in fp16 needs loss scaling, which rlvr does not do; use bf16 (or fp32)"


class PrecisionError(UserError, ValueError):
    """A precision choice that cannot work here; the message names the fix."""


def torch_dtype(name: str) -> Union[torch.dtype, str]:
    """The torch dtype of a precision name; ``auto`` stays ``"auto"`` (from_pretrained reads the checkpoint's)."""
    return "auto" if name == "auto" else DTYPES[name]


def frozen_dtype(model: Any) -> str:
    """The stored precision of frozen models: ``model.frozen_dtype``, else the compute precision."""
    return model.frozen_dtype or model.dtype


def check_precision(model: Any, device: Optional[str] = None, backend: str = "torch") -> None:
    """Each choice is known and they fit together (and with the device and backend)."""
    for key, allowed in (("dtype", ("fp32", "bf16")), ("weights_dtype", ("fp32", "bf16")),
                         ("master_dtype", ("fp32", "bf16"))):
        value = getattr(model, key)
        if value == "fp16":
            raise PrecisionError(f"model.{key}=fp16: {_FP16}")
        if value not in allowed:
            raise PrecisionError(f"model.{key}={value}: choose one of {', '.join(allowed)}")
    if model.frozen_dtype not in (None, "auto", "fp32", "bf16", "fp16"):
        raise PrecisionError(f"model.frozen_dtype={model.frozen_dtype}: choose one of bf16, fp16, fp32, auto "
                             f"(or null: follow model.dtype)")
    if model.weights_dtype == "bf16" and model.dtype != "bf16":
        raise PrecisionError("model.weights_dtype=bf16 computes in bf16: set model.dtype=bf16 too")
    if model.frozen_dtype == "fp16" and (device or "cpu").startswith("cpu"):
        raise PrecisionError("model.frozen_dtype=fp16 on the CPU: fp16 matrix products are not supported well "
                             "there; use bf16 or fp32")
    if backend == "deepspeed" and model.master_dtype != "fp32":
        raise PrecisionError("model.master_dtype=bf16 with trainer.backend=deepspeed: DeepSpeed keeps an fp32 "
                             "master copy in bf16 mode; leave model.master_dtype=fp32")


def check_model_settings(model: Any, backend: str = "torch") -> None:
    """Precision, attention and LoRA settings of ``model.*``, before anything is loaded."""
    import importlib.util

    device = model.device if model.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    check_precision(model, device, backend)
    attn = model.attn_implementation
    if attn not in ("sdpa", "eager", "flash_attention_2"):
        raise PrecisionError(f"model.attn_implementation={attn}: choose one of sdpa, eager, flash_attention_2")
    if attn == "flash_attention_2" and (importlib.util.find_spec("flash_attn") is None or device == "cpu"):
        raise PrecisionError("model.attn_implementation=flash_attention_2 needs the flash-attn package and a GPU; "
                             "use model.attn_implementation=sdpa")
    lora = model.lora
    if lora.rank < 0 or (lora.rank > 0 and (lora.alpha <= 0 or not 0 <= lora.dropout < 1 or not lora.target_modules)):
        raise PrecisionError(f"model.lora: rank {lora.rank} must be >= 0 (0 = off), alpha > 0, 0 <= dropout < 1 and "
                             f"target_modules non-empty (all-linear, or names such as q_proj, v_proj)")
    if lora.rank > 0 and importlib.util.find_spec("peft") is None:
        raise PrecisionError("model.lora.rank > 0 needs the peft package: pip install peft")


def precision_line(model: Any, backend: str = "torch") -> str:
    """The start-up banner's statement of every precision choice."""
    weights = "bf16 (DeepSpeed bf16 mode)" if backend == "deepspeed" and model.dtype == "bf16" else model.weights_dtype
    master = model.master_dtype if weights != "fp32" else "the weights themselves (fp32)"
    return (f"precision: compute {model.dtype}, policy weights {weights}, optimizer master and states {master}, "
            f"frozen models {frozen_dtype(model)}{'' if model.frozen_dtype else ' (follows compute)'}")
