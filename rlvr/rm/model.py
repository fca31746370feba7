"""The scalar reward model: a causal-LM backbone plus a one-output linear head, and how it is saved.

`build_reward_model` loads any local causal-LM directory (the embedded tiny Llama, a
Hugging Face directory, an imported GGUF, a policy run's checkpoint) as
``AutoModelForSequenceClassification`` with ``num_labels=1`` (a fresh head, seeded) and
``pad_token_id`` set, stored as ``model.weights_dtype``; a directory that already is a
reward model keeps its head. LoRA (`rlvr.models.policy.load_policy`) puts adapters on the
backbone and trains the head (`HEAD`) fully beside them.

Scores are read at the last *real* token, found from the attention mask
(`rlvr.rewards.model.last_token_scores`), never from ``pad_token_id`` (the
sequence-classification models' own pooling, which points at the wrong token when
``pad == eos``). `sequence_scores` runs the model's whole forward (through a learner
backend's, so ZeRO-3 gathers its layers) and reads the head's per-token output on the
way; with a frozen backbone `pooled_features` gives the last real token's hidden state
once per answer, and the head alone is trained on it: ``head(h_last)`` is the same
number as the full model's score, because the head is linear.

`save_reward_model` writes what ``AutoModelForSequenceClassification.from_pretrained``
and ``AutoTokenizer.from_pretrained`` load, plus ``reward_stats.json`` (`write_reward_stats`).
"""
from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from rlvr.errors import ModelError
from rlvr.rewards.model import last_token_scores

__all__ = ["build_reward_model", "sequence_scores", "pooled_features", "head_scores", "save_reward_model",
           "write_reward_stats", "score_head", "STATS_FILE", "HEAD", "rlvr_commit"]

STATS_FILE = "reward_stats.json"  # the statistics the reward-model source normalizes with
HEAD = "score"  # the one-output head transformers gives causal-LM classifiers (trained fully under LoRA)


def build_reward_model(path: Path | str, tokenizer: Any, seed: int = 0, freeze_backbone: bool = False,
                       dtype: str = "fp32", attn_implementation: Optional[str] = None):
    """``path``'s backbone with a one-output head (its own when it has one, else fresh from ``seed``), stored as
    ``dtype`` (fp32 | bf16)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from rlvr.models.precision import torch_dtype

    config = AutoConfig.from_pretrained(str(path))
    config.num_labels, config.pad_token_id = 1, tokenizer.pad_token_id
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized: score.weight" is the point, not a warning
    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model = AutoModelForSequenceClassification.from_pretrained(str(path), config=config,
                                                                       dtype=torch_dtype(dtype), **extra)
    except ValueError as exc:
        raise ModelError(f"{path}: transformers has no sequence-classification head for model type "
                         f"{config.model_type!r} ({str(exc).splitlines()[0][:100]}); use a causal LM whose "
                         f"architecture has one (Llama, Qwen2, Mistral, ...)") from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if not hasattr(model, HEAD) or not hasattr(model, model.base_model_prefix):
        raise ModelError(f"{path}: the {type(model).__name__} has no `{HEAD}` head over its backbone; "
                         f"use a decoder-only causal LM (Llama, Qwen2, Mistral, ...)")
    if freeze_backbone:
        backbone(model).requires_grad_(False)
    return model


def backbone(model) -> torch.nn.Module:
    return getattr(model, model.base_model_prefix)


def _autocast(device: torch.device, dtype: Optional[torch.dtype]):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _hidden(model, batch: dict[str, torch.Tensor], dtype: Optional[torch.dtype]) -> torch.Tensor:
    device = batch["input_ids"].device
    with _autocast(device, dtype):
        return backbone(model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               position_ids=batch["position_ids"]).last_hidden_state


def score_head(model) -> torch.nn.Module:
    """The head of a reward model, or of an adapted one (PEFT wraps the model; the head is then the copy that trains)."""
    plain = model.get_base_model() if hasattr(model, "get_base_model") and hasattr(model, "peft_config") else model
    return getattr(plain, HEAD)


def sequence_scores(model, batch: dict[str, torch.Tensor], dtype: Optional[torch.dtype] = None,
                    forward: Optional[Callable[..., Any]] = None) -> torch.Tensor:
    """[B] rewards of a padded batch (`rlvr.rm.encode.collate`), read at each row's last real token.

    The batch runs through ``forward`` (default: the model itself; a learner backend's forward under
    DeepSpeed), and the head's per-token scores are taken from it as it runs (a forward hook), so the
    model's own pooling at ``pad_token_id`` is never used."""
    captured: list[torch.Tensor] = []
    hook = score_head(model).register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with _autocast(batch["input_ids"].device, dtype):
            (forward or model)(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                               position_ids=batch["position_ids"], use_cache=False)
    finally:
        hook.remove()
    return last_token_scores(captured[-1].squeeze(-1).float(), batch["attention_mask"])


def pooled_features(model, batch: dict[str, torch.Tensor], dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """[B, H] the backbone's final hidden state at each row's last real token."""
    hidden = _hidden(model, batch, dtype).float()
    mask = batch["attention_mask"]
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = last_token_scores(positions, mask)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def head_scores(model, features: torch.Tensor) -> torch.Tensor:
    """[B] rewards from pooled features: the head alone."""
    return score_head(model)(features).squeeze(-1).float()


def rlvr_commit() -> Optional[str]:
    """The git commit of the rlvr source tree, when it is a checkout."""
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def write_reward_stats(out_dir: Path | str, stats: dict[str, Any]) -> None:
    """``reward_stats.json`` beside a saved reward model, with the rlvr version and commit."""
    import rlvr

    payload = {**stats, "rlvr_version": rlvr.__version__, "rlvr_commit": rlvr_commit()}
    (Path(out_dir) / STATS_FILE).write_text(json.dumps(payload, indent=2) + "\n")


def save_reward_model(model, tokenizer, out_dir: Path | str, stats: dict[str, Any]) -> Path:
    """Weights + tokenizer (from_pretrained loads them) and ``reward_stats.json`` with version and commit."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.config.num_labels, model.config.pad_token_id = 1, tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_reward_stats(out, stats)
    return out
