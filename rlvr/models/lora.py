"""LoRA adapters (PEFT) on the policy: applied, disabled for the reference, merged for engines and export.

- `apply_lora` wraps a model in a PEFT adapter (``model.lora.*``); a target that matches no module
  is a `ModelError` that lists the model's linear layers.
- The reference policy is the same module with its adapter disabled (`adapter_disabled`): no
  second copy of the weights.
- `plain_tensors` yields the weights under the base model's own names with each adapter's update
  merged in, one tensor at a time and never mutating the module, so an engine with its own copy
  (vLLM) receives full weights and the policy's bf16 base weights never drift through
  merge/unmerge rounding. `plain_shapes` says which names and shapes that stream has.
- A checkpoint of an adapted policy holds only the adapter (`is_adapter_dir`); `load_adapter`
  puts it back on its base, trainable or merged; `merge_in_place` turns a saved adapter directory
  into a plain model directory (a stage's final ``model/``).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from rlvr.errors import ModelError

__all__ = ["apply_lora", "is_adapted", "is_adapter_dir", "adapter_base", "load_adapter", "adapter_disabled",
           "plain_tensors", "plain_shapes", "linear_names", "merge_in_place"]

_ADAPTER = "default"


def is_adapted(model: torch.nn.Module) -> bool:
    """A PEFT model (an adapter on a base model)."""
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def is_adapter_dir(path: Path | str) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def adapter_base(path: Path | str) -> Path:
    """The base model directory an adapter directory was trained on."""
    base = json.loads((Path(path) / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base or not (Path(base) / "config.json").is_file():
        raise ModelError(f"{path}: an adapter whose base model ({base}) is not a model directory here; "
                         f"rlvr-export it where it was trained, or fix base_model_name_or_path in adapter_config.json")
    return Path(base)


def linear_names(model: torch.nn.Module) -> list[str]:
    """The distinct last names of the model's linear layers (what ``target_modules`` can name)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})


def apply_lora(model: torch.nn.Module, lora: Any, modules_to_save: Optional[list[str]] = None) -> torch.nn.Module:
    """``model`` with a trainable LoRA adapter (rank, alpha, dropout, target_modules of ``model.lora``);
    ``modules_to_save`` train fully beside it (a reward model's score head)."""
    from peft import LoraConfig, get_peft_model

    targets = list(lora.target_modules)
    if targets != ["all-linear"]:
        names = linear_names(model)
        missing = [t for t in targets if t not in names]
        if missing:
            raise ModelError(f"model.lora.target_modules: the model has no linear layers named "
                             f"{', '.join(missing)}; its linear layers: {', '.join(names)} (or all-linear)")
    config = LoraConfig(r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                        target_modules="all-linear" if targets == ["all-linear"] else targets,
                        modules_to_save=modules_to_save)
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise ModelError(f"model.lora: {str(exc).splitlines()[0]}") from None


def load_adapter(path: Path, base: torch.nn.Module, trainable: bool) -> torch.nn.Module:
    """The adapter saved in ``path`` on ``base``: trainable (a resumed policy) or merged into it."""
    from peft import PeftModel

    model = PeftModel.from_pretrained(base, str(path), is_trainable=trainable)
    return model if trainable else model.merge_and_unload()


def merge_in_place(directory: Path, base: torch.nn.Module) -> None:
    """The adapter saved in ``directory`` merged into ``base`` (the model it was trained on) and written back
    there as plain weights, which ``from_pretrained`` loads without PEFT; other files (the tokenizer) stay."""
    merged = load_adapter(Path(directory), base, trainable=False)
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin", "README.md"):
        (Path(directory) / name).unlink(missing_ok=True)
    merged.save_pretrained(directory)


def adapter_disabled(forward: Callable[..., Any], model: torch.nn.Module) -> Callable[..., Any]:
    """``forward`` run with ``model``'s adapter switched off: the base model, i.e. the reference policy."""
    def reference(**inputs: Any) -> Any:
        with model.disable_adapter():
            return forward(**inputs)
    return reference


def _renamed(key: str) -> Optional[str]:
    """A PEFT state-dict key under the base model's own name; None for adapter-only tensors."""
    if ".lora_" in key or ".original_module." in key:
        return None
    return key.replace(".base_layer.", ".").replace(f".modules_to_save.{_ADAPTER}.", ".")


def plain_tensors(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every weight under the plain model's names; an adapted model's with its adapter merged in, one
    tensor at a time (a plain model's state dict passes through unchanged)."""
    if not is_adapted(model):
        yield from model.state_dict().items()
        return
    base = model.get_base_model()
    layers = {name: m for name, m in base.named_modules() if hasattr(m, "get_delta_weight")}
    with torch.no_grad():
        for key, tensor in base.state_dict().items():
            name = _renamed(key)
            if name is None:
                continue
            owner = key.rsplit(".base_layer.", 1)[0] if ".base_layer." in key else None
            if owner in layers and key.endswith(".base_layer.weight") and _ADAPTER in layers[owner].lora_A:
                tensor = tensor + layers[owner].get_delta_weight(_ADAPTER).to(tensor.dtype)
            yield name, tensor


def plain_shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and full shapes of `plain_tensors` (ZeRO-3 partitioned parameters by their whole shape)."""
    source = model.get_base_model() if is_adapted(model) else model
    shapes = {}
    for key, t in source.state_dict(keep_vars=True).items():
        name = _renamed(key) if is_adapted(model) else key
        if name is not None:
            shapes[name] = tuple(getattr(t, "ds_shape", t.shape))
    return shapes
