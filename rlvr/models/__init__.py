"""Where the policy's weights come from: a local HF directory or the cached embedded tiny Llama.

Built artifacts (the tiny model, warm-ups) are cached under ``model.cache_dir``, each
built into a temporary sibling and renamed into place, keyed by what produced it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rlvr.config import ConfigError, TrainConfig
from rlvr.errors import ModelError
from rlvr.models.tiny import build_tiny_llama, build_tokenizer

__all__ = ["base_model_dir", "load_model", "load_tokenizer", "set_chat_template", "build_tokenizer",
           "build_tiny_llama", "cached", "cache_key", "ModelError"]


def cache_key(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cached(target: Path, build) -> Path:
    """Build into a temporary sibling and rename it into place (safe under concurrent runs)."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        build(tmp)
        os.rename(tmp, target)
    except OSError:
        if not target.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def base_model_dir(cfg: TrainConfig) -> Path:
    """``model.path`` (checked; a .gguf file or ``package:NAME`` is imported once into the cache),
    or the embedded tiny Llama built once into the cache."""
    m = cfg.model
    cache = Path(os.path.expanduser(m.cache_dir))
    if m.path and (m.path.startswith("package:") or m.path.endswith(".gguf")):
        return imported_gguf(m.path, cache)
    if m.path:
        base = Path(os.path.expanduser(m.path))
        if not (base / "config.json").is_file():
            raise ModelError(f"model.path={m.path}: no config.json there; point model.path at a Hugging Face "
                             f"model directory (save_pretrained output)")
        return base
    dims = dict(hidden_size=m.hidden_size, num_layers=m.num_layers, num_heads=m.num_heads,
                intermediate_size=m.intermediate_size, seed=cfg.trainer.seed)
    return cached(cache / f"tiny-llama-{cache_key(dims)}", lambda d: build_tiny_llama(d, **dims))


def imported_gguf(spec: str, cache: Path) -> Path:
    """``model.path`` as a .gguf file, or ``package:NAME`` (the .gguf inside an installed package),
    imported once into the cache as a plain Hugging Face directory (`rlvr.models.gguf`)."""
    from rlvr.models.gguf import package_gguf

    source = package_gguf(spec.split(":", 1)[1]) if spec.startswith("package:") else Path(os.path.expanduser(spec))
    if not source.is_file():
        raise ModelError(f"model.path={spec}: no such GGUF file")
    stat = source.stat()
    key = cache_key({"gguf": str(source.resolve()), "size": stat.st_size, "mtime": int(stat.st_mtime)})

    def build(out: Path) -> None:
        # In a child process: the GGUF loader's copies of the weights never count toward this run's memory, and
        # the libraries it pulls in (transformers' GGUF path imports deepspeed when installed) stay out of it.
        print(f"model: importing {source} into {out.parent} (once)", flush=True)
        proc = subprocess.run([sys.executable, "-m", "rlvr.models.gguf", str(source), str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode:
            lines = [x for x in proc.stderr.splitlines() if x.startswith("rlvr-import-gguf: ")]
            raise ModelError(lines[-1].split(": ", 1)[1] if lines else
                             f"importing {source} failed: {proc.stderr.strip().splitlines()[-1:]}")

    return cached(cache / f"gguf-{source.stem}-{key}", build)


def load_model(path: Path | str):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)


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
