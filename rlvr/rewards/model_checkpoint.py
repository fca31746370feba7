"""What a reward-model directory's ``config.json`` says, read before any weights load.

`check_model_source` runs at config validation, before the warm-up or any model load, so
everything here reads the JSON file as it is (no transformers import, no remote code):

    head_labels       the head's outputs (``id2label``, else ``num_labels``), None when unsaid
    choose_output     the output a source scores: the only one, or ``options.output`` by index
                      or by name; several and none chosen is a ConfigError listing the labels
    needs_remote_code ``auto_map`` names classes that transformers has no local copy of
    frozen_dtype      the weights' precision: ``options.dtype`` (bf16 | fp16 | fp32 | auto = the
                      checkpoint's ``dtype`` / ``torch_dtype``), else the policy's compute precision
    refuse_fp16_on_cpu fp16 matmuls on a CPU are unsupported or very slow: a ConfigError naming bf16/fp32

The same functions run again on the loaded model's config (`rlvr.rewards.model`), so a check
that could not decide from the file (a config without ``id2label``) decides at load.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

from rlvr.config import ConfigError
from rlvr.models.precision import DTYPES

__all__ = ["DTYPES", "read_model_config", "head_labels", "choose_output", "needs_remote_code", "frozen_dtype",
           "refuse_fp16_on_cpu", "describe_labels"]

_SAVED_NAMES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}  # config.json's dtype -> ours
_REMOTE_CLASSES = ("AutoConfig", "AutoModelForSequenceClassification")


def read_model_config(path: str | Path) -> dict[str, Any]:
    """The directory's config.json as a dict (``{}`` for an unreadable file: the load will say why)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def head_labels(config: Mapping[str, Any]) -> Optional[list[str]]:
    """The head's output names in index order; None when the file says neither id2label nor num_labels."""
    id2label = config.get("id2label")
    if isinstance(id2label, Mapping) and id2label:
        try:
            return [str(id2label[k]) for k in sorted(id2label, key=int)]
        except (TypeError, ValueError):
            return [str(v) for v in id2label.values()]
    if isinstance(config.get("num_labels"), int):
        return [f"LABEL_{i}" for i in range(config["num_labels"])]
    return None


def describe_labels(labels: list[str]) -> str:
    return ", ".join(f"{i}: {name}" for i, name in enumerate(labels))


def choose_output(where: str, labels: list[str], output: Any) -> int:
    """The index of the output to score: the only one, or `output` (an index, or a name from id2label)."""
    fix = "set options.output to one of them (an index, or a name)"
    if output is None:
        if len(labels) == 1:
            return 0
        raise ConfigError(f"{where}: the model has {len(labels)} outputs ({describe_labels(labels)}) and none is "
                          f"chosen; {fix}")
    if isinstance(output, str) and output in labels:
        return labels.index(output)
    index = int(output) if isinstance(output, int) or (isinstance(output, str) and output.isdigit()) else None
    if isinstance(output, bool) or index is None or not 0 <= index < len(labels):
        raise ConfigError(f"{where}: options.output={output!r} is not an output of the model "
                          f"({describe_labels(labels)}); {fix}")
    return index


def needs_remote_code(config: Mapping[str, Any]) -> bool:
    """The config maps the auto classes to the directory's own code, and transformers has no local class
    for its model type (a model type transformers knows loads with its own code even with an auto_map)."""
    auto_map = config.get("auto_map")
    if not isinstance(auto_map, Mapping) or not any(k in auto_map for k in _REMOTE_CLASSES):
        return False
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

    return config.get("model_type") not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES


def frozen_dtype(option: Optional[str], policy_dtype: str, config: Mapping[str, Any]) -> tuple[str, str]:
    """(bf16 | fp16 | fp32, where that came from) for a frozen model's weights."""
    if option is None and policy_dtype != "auto":
        return policy_dtype, "the run's model.frozen_dtype, else model.dtype"
    option = option or "auto"
    if option != "auto":
        return option, "options.dtype"
    saved = config.get("dtype") or config.get("torch_dtype")
    if saved in _SAVED_NAMES:
        return _SAVED_NAMES[saved], f"dtype auto: the checkpoint's {saved}"
    return "fp32", "dtype auto: the checkpoint names none"


def refuse_fp16_on_cpu(where: str, dtype: str, why: str, device_type: str) -> None:
    if dtype == "fp16" and device_type == "cpu":
        raise ConfigError(f"{where}: fp16 weights ({why}) on the CPU: fp16 matmuls are unsupported or very slow "
                          f"there; set options.dtype=bf16 or options.dtype=fp32")
