"""Checkpoints: the model in Hugging Face format plus everything needed to continue exactly.

    <run_dir>/checkpoints/step_000040/
        model.safetensors, config.json, tokenizer files   (loadable with from_pretrained)
        trainer_state.pt   optimizer, scheduler, RNG states, data position, step
        COMPLETE           written last: a checkpoint without it is ignored

A checkpoint is written into a temporary folder and renamed into place, so a run
killed mid-save leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

__all__ = ["save_checkpoint", "checkpoint_step", "load_trainer_state", "latest_checkpoint", "rng_state", "set_rng_state"]

_STATE = "trainer_state.pt"
_DONE = "COMPLETE"


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, tokenizer: Any, state: dict[str, Any],
                    keep: int) -> Path:
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp_step_{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save({**state, "step": step, "rng": rng_state()}, tmp / _STATE)
    (tmp / _DONE).write_text(str(step))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    for old in _complete(root)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _complete(root: Path) -> list[Path]:
    if not root.exists():
        return []
    found = [p for p in root.glob("step_*") if (p / _DONE).exists()]
    return sorted(found, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    found = _complete(Path(run_dir) / "checkpoints")
    return found[-1] if found else None


def checkpoint_step(path: Path) -> int:
    """The step a complete checkpoint was taken at (read from its marker, no tensors loaded)."""
    marker = Path(path) / _DONE
    if not marker.exists():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {_DONE} marker)")
    return int(marker.read_text().strip())


def load_trainer_state(path: Path) -> dict[str, Any]:
    if not (Path(path) / _DONE).exists():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {_DONE} marker)")
    return torch.load(Path(path) / _STATE, weights_only=False)
