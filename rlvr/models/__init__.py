"""Where the policy's weights come from: a local HF directory or the cached embedded tiny Llama."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlvr.config import TrainConfig
from rlvr.models.tiny import build_tiny_llama, build_tokenizer

__all__ = ["prepare_model_dir", "load_model", "load_tokenizer", "build_tokenizer", "build_tiny_llama"]


def _key(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _cached(target: Path, build) -> Path:
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


def prepare_model_dir(cfg: TrainConfig, train_prompts) -> Path:
    """The directory the policy loads from, building (once) the tiny model and its warm-up."""
    m = cfg.model
    cache = Path(os.path.expanduser(m.cache_dir))
    if m.path:
        base = Path(os.path.expanduser(m.path))
    else:
        dims = dict(hidden_size=m.hidden_size, num_layers=m.num_layers, num_heads=m.num_heads,
                    intermediate_size=m.intermediate_size, seed=cfg.trainer.seed)
        base = _cached(cache / f"tiny-llama-{_key(dims)}", lambda d: build_tiny_llama(d, **dims))
    if m.sft.steps == 0:
        return base
    payload = {"base": str(base.resolve()), "sft": OmegaConf.to_container(OmegaConf.structured(m.sft)),
               "data": OmegaConf.to_container(OmegaConf.structured(cfg.data)), "seed": cfg.trainer.seed,
               "max_new_tokens": cfg.rollout.max_new_tokens}
    return _cached(cache / f"warmup-{_key(payload)}", lambda d: _warm_up(base, d, cfg, train_prompts))


def _warm_up(base: Path, out: Path, cfg: TrainConfig, train_prompts) -> None:
    from rlvr.sft import supervised_warmup

    print(f"[sft] supervised warm-up: {cfg.model.sft.steps} steps x {cfg.model.sft.batch_size} prompts "
          f"(cached in {out.parent})", flush=True)
    model, tok = load_model(base), load_tokenizer(base)
    supervised_warmup(model, tok, train_prompts, cfg.model.sft, cfg.trainer.seed, cfg.data.max_prompt_tokens,
                      cfg.rollout.max_new_tokens)
    model.save_pretrained(out)
    tok.save_pretrained(out)


def load_model(path: Path | str):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)


def load_tokenizer(path: Path | str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok
