"""Loading weights and tokenizers: a causal LM at a chosen precision (a LoRA checkpoint merged onto its
base), and a tokenizer checked for what generation needs (an EOS token, a pad token) with
``data.chat_template`` applied."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from rlvr.config import ConfigError
from rlvr.errors import ModelError

__all__ = ["load_model", "load_tokenizer", "set_chat_template"]


def load_model(path: Path | str, dtype: str = "fp32", attn_implementation: Optional[str] = None):
    """A causal LM stored as ``dtype`` (fp32 | bf16 | fp16 | auto = the checkpoint's); an adapter directory
    (a LoRA checkpoint) comes merged onto its base model."""
    from rlvr.models.lora import adapter_base, is_adapter_dir, load_adapter

    if is_adapter_dir(path):
        base = load_model(adapter_base(path), dtype, attn_implementation)
        return load_adapter(Path(path), base, trainable=False)
    return _from_pretrained("AutoModelForCausalLM", path, dtype, attn_implementation)


def _from_pretrained(kind: str, path: Path | str, dtype: str, attn_implementation: Optional[str], **kwargs: Any):
    import transformers

    from rlvr.models.precision import torch_dtype

    extra = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        return getattr(transformers, kind).from_pretrained(str(path), dtype=torch_dtype(dtype), **extra, **kwargs)
    except (ValueError, ImportError) as exc:
        if attn_implementation and "attn" in str(exc).lower():
            raise ModelError(f"model.attn_implementation={attn_implementation}: {str(exc).splitlines()[0][:160]}; "
                             f"try model.attn_implementation=eager") from None
        raise


def set_chat_template(tokenizer: Any, choice: str) -> Any:
    """``data.chat_template`` applied to ``tokenizer``: auto keeps its own template, none removes it (prompts are
    raw text), anything else is the path of a Jinja file that becomes its template. The tokenizer is saved with
    every checkpoint, so a checkpoint carries the template it was trained with."""
    if choice == "auto":
        return tokenizer
    if choice == "none":
        tokenizer.chat_template = None
        return tokenizer
    path = Path(os.path.expanduser(choice))
    if not path.is_file():
        raise ConfigError(f"data.chat_template={choice}: no such file; use auto (the tokenizer's own template), none "
                         f"(raw prompt text) or the path of a Jinja template file")
    tokenizer.chat_template = path.read_text()
    return tokenizer


def load_tokenizer(path: Path | str, chat_template: str = "auto"):
    """The tokenizer saved in ``path`` (its pad token is EOS when it has none), with ``data.chat_template``
    applied (`set_chat_template`)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"{path}: no usable tokenizer ({str(exc).splitlines()[0][:120]}); save the model's "
                         f"tokenizer into that directory (tokenizer.save_pretrained)") from None
    if tok.eos_token_id is None:
        raise ModelError(f"{path}: the tokenizer has no EOS token; set eos_token in tokenizer_config.json")
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return set_chat_template(tok, chat_template)
