"""Checkpoints: the model in Hugging Face format plus everything needed to continue exactly.

    <run_dir>/checkpoints/step_000040/
        model.safetensors, config.json, tokenizer files   (loadable with from_pretrained)
        backend/           the learner backend's own state (optimizer, schedule; a directory)
        trainer_state.pt   RNG states, data position, step
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

__all__ = ["save_checkpoint", "checkpoint_step", "load_trainer_state", "latest_checkpoint", "rng_state", "set_rng_state",
           "BACKEND_DIR", "ResumeError", "resolve_resume"]

_STATE = "trainer_state.pt"
BACKEND_DIR = "backend"
_DONE = "COMPLETE"


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(run_dir: Path, step: int, backend: Any, tokenizer: Any, state: dict[str, Any],
                    keep: int) -> Path:
    """Weights (Hugging Face format) and backend state through the backend, then the loop's state."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp_step_{step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    backend.save_pretrained(tmp, tokenizer)
    backend.save(tmp / BACKEND_DIR)
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


class ResumeError(RuntimeError):
    """Resuming cannot do what was asked; the message names the fix."""


def resolve_resume(resume: str, run_dir: Path, total_steps: int) -> Optional[Path]:
    """The checkpoint to start from, or None for a fresh run; refuses a resume with nothing to do."""
    if resume == "never":
        if latest_checkpoint(run_dir) is not None:
            raise ResumeError(f"{run_dir} already holds checkpoints; pass resume=auto to continue it "
                              f"or choose another run_name")
        return None
    found = latest_checkpoint(run_dir) if resume == "auto" else Path(resume)
    if resume == "auto":
        print(f"resume=auto: {'continuing from ' + str(found) if found else 'no checkpoint yet, starting fresh'}")
    if found is not None:
        step = checkpoint_step(found)
        if step >= total_steps:
            raise ResumeError(f"checkpoint {found} is at step {step} and trainer.total_steps={total_steps}: "
                              f"nothing left to do. Raise trainer.total_steps (e.g. trainer.total_steps="
                              f"{step + total_steps}) to train further")
    return found
