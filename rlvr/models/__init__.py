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
from typing import Any, Optional

from rlvr.config import TrainConfig
from rlvr.errors import ModelError
from rlvr.models.tiny import build_tiny_llama, build_tokenizer
from rlvr.models.weights import load_model, load_tokenizer, set_chat_template

__all__ = ["base_model_dir", "resolve_model_dir", "model_path_problem", "load_model", "load_tokenizer", "set_chat_template", "build_tokenizer",
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
    if m.path:
        return resolve_model_dir(m.path, cache)
    dims = dict(hidden_size=m.hidden_size, num_layers=m.num_layers, num_heads=m.num_heads,
                intermediate_size=m.intermediate_size, seed=cfg.trainer.seed)
    if m.max_positions != 256:  # the original context length stays out of the key: existing caches stay valid
        dims["max_positions"] = m.max_positions
    if m.tiny_tokenizer != "chars":  # likewise: the default's key (and cache) never changes
        dims["tokenizer"] = m.tiny_tokenizer
    return cached(cache / f"tiny-llama-{cache_key(dims)}", lambda d: build_tiny_llama(d, **dims))


def model_path_problem(spec: str, what: str = "model.path") -> Optional[str]:
    """Why ``spec`` (a Hugging Face directory, a LoRA checkpoint, a .gguf file or ``package:NAME``) cannot be a
    model, checked without loading or importing anything; None when it can."""
    from rlvr.models.gguf import GGUFError, package_gguf

    if spec.startswith("package:"):
        try:
            package_gguf(spec.split(":", 1)[1])
        except GGUFError as exc:
            return f"{what}={spec}: {exc}"
        return None
    path = Path(os.path.expanduser(spec))
    if spec.endswith(".gguf"):
        return None if path.is_file() else f"{what}={spec}: no such GGUF file"
    if (path / "adapter_config.json").is_file() or (path / "config.json").is_file():
        return None
    where = "no config.json there" if path.is_dir() else "no such directory"
    return (f"{what}={spec}: {where}; point it at a Hugging Face model directory (save_pretrained output), a "
            f"checkpoint, a .gguf file or package:NAME")


def resolve_model_dir(spec: str, cache: Path, what: str = "model.path") -> Path:
    """A plain Hugging Face directory for ``spec``: the directory itself, a LoRA checkpoint merged onto its base,
    or a .gguf file / ``package:NAME`` imported (each once, into ``cache``)."""
    if spec.startswith("package:") or spec.endswith(".gguf"):
        return imported_gguf(spec, cache)
    base = Path(os.path.expanduser(spec))
    if (base / "adapter_config.json").is_file():
        return merged_adapter(base, cache)
    if not (base / "config.json").is_file():
        raise ModelError(f"{what}={spec}: no config.json there; point {what} at a Hugging Face "
                         f"model directory (save_pretrained output)")
    return base


def merged_adapter(adapter: Path, cache: Path) -> Path:
    """A LoRA checkpoint (``model.path`` of an adapter directory) merged once into the cache as a plain
    Hugging Face directory, so every stage and engine (vLLM too) reads full weights."""
    from rlvr.models.export import export

    stat = (adapter / "adapter_model.safetensors")
    key = cache_key({"adapter": str(adapter.resolve()), "mtime": int(stat.stat().st_mtime) if stat.exists() else 0})

    def build(out: Path) -> None:
        print(f"model: merging the adapter {adapter} into its base (once, cached)", flush=True)
        out.rmdir()  # export writes a new directory
        export(adapter, out)

    return cached(cache / f"merged-{adapter.name}-{key}", build)


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
