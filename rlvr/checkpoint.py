"""Checkpoints: the model in Hugging Face format plus everything needed to continue exactly.

    <run_dir>/checkpoints/step_000040/
        model.safetensors, config.json, tokenizer files   (loadable with from_pretrained)
        backend/           the learner backend's own state (optimizer, schedule; a directory;
                           under DeepSpeed one shard per rank)
        trainer_state.pt   RNG states (one per rank), data position, step, the KL coefficient (beta)
        critic/            PPO only (algorithm=ppo): the critic's complete weights (weights.pt) and its
                           backend's state (backend/: optimizer; under DeepSpeed one shard per rank)
        layout.json        how it was written: {"world_size": N, "backend": ..., "zero_stage": ...}
        COMPLETE           written last: a checkpoint without it is ignored

A checkpoint is written into a temporary folder and renamed into place, so a run
killed mid-save leaves the previous checkpoint intact. With several ranks every rank
joins the save (the backend's is collective: ZeRO-3 gathers the weights, each rank
writes its optimizer shard), rank 0 alone writes the rest and renames, between
barriers. A DeepSpeed checkpoint resumes with the world size it was written with;
`resolve_resume` refuses another one with the fix (the weights load anywhere).
"""
from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch

from rlvr.distributed import all_gather_objects, barrier
from rlvr.errors import UserError

__all__ = ["save_checkpoint", "checkpoint_step", "load_trainer_state", "latest_checkpoint", "rng_state", "set_rng_state",
           "BACKEND_DIR", "ResumeError", "resolve_resume", "checkpoint_world_size"]

_STATE = "trainer_state.pt"
BACKEND_DIR = "backend"
_DONE = "COMPLETE"
_LAYOUT = "layout.json"


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])


def save_checkpoint(run_dir: Path, step: int, backend: Any, tokenizer: Any, state: dict[str, Any],
                    keep: int, extra: Optional[Callable[[Path], None]] = None) -> Path:
    """Weights (Hugging Face format) and backend state through the backend, then the loop's state;
    ``extra(folder)`` writes what else the run keeps (PPO's critic) into the same, still incomplete, folder; it is
    called on every rank (it may be collective, and decides itself which rank writes what).

    Collective when the backend has several ranks: call it on every rank.
    """
    main, world = getattr(backend, "is_main", True), getattr(backend, "world_size", 1)
    root = Path(run_dir) / "checkpoints"
    final = root / f"step_{step:06d}"
    tmp = root / f".tmp_step_{step:06d}"
    if main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    barrier()  # no rank writes into the folder before rank 0 has cleared it
    backend.save_pretrained(tmp, tokenizer)
    backend.save(tmp / BACKEND_DIR)
    if extra is not None:
        extra(tmp)
    rngs = all_gather_objects(rng_state())
    barrier()  # every rank's shard is on disk
    if main:
        torch.save({**state, "step": step, "rng": rngs[0], "rng_by_rank": rngs}, tmp / _STATE)
        layout = {"world_size": world, "backend": type(backend).__name__, "zero_stage": getattr(backend, "stage", None)}
        (tmp / _LAYOUT).write_text(json.dumps(layout) + "\n")
        (tmp / _DONE).write_text(str(step))
        shutil.rmtree(final, ignore_errors=True)
        os.rename(tmp, final)
        for old in _complete(root)[:-keep] if keep > 0 else []:
            shutil.rmtree(old, ignore_errors=True)
    barrier()  # no rank goes on (or reads the checkpoint) before it is in place
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


def load_trainer_state(path: Path, rank: int = 0) -> dict[str, Any]:
    """The loop's state; ``state["rng"]`` is rank ``rank``'s RNG state (rank 0's in a checkpoint without them)."""
    if not (Path(path) / _DONE).exists():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {_DONE} marker)")
    state = torch.load(Path(path) / _STATE, weights_only=False)
    by_rank = state.get("rng_by_rank") or []
    if rank < len(by_rank):
        state["rng"] = by_rank[rank]
    return state


def checkpoint_world_size(path: Path) -> int:
    """The number of ranks that wrote a checkpoint (1 for one written before layouts were recorded)."""
    layout = Path(path) / _LAYOUT
    return int(json.loads(layout.read_text())["world_size"]) if layout.exists() else 1


class ResumeError(UserError, RuntimeError):
    """Resuming cannot do what was asked; the message names the fix."""


def resolve_resume(resume: str, run_dir: Path, total_steps: int, world_size: int = 1,
                   steps_key: str = "trainer.total_steps") -> Optional[Path]:
    """The checkpoint to start from, or None for a fresh run; refuses a resume with nothing to do, or
    one written by another number of ranks (its optimizer shards would not load). ``steps_key`` is the
    setting that decides the run's length (named in the refusal)."""
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
            if steps_key == "trainer.total_steps":
                more = f"Raise trainer.total_steps (e.g. trainer.total_steps={step + total_steps})"
            else:
                more = f"Raise {steps_key}"
            raise ResumeError(f"checkpoint {found} is at step {step} and this run has {total_steps} steps: "
                              f"nothing left to do. {more} to train further")
        written = checkpoint_world_size(found)
        if written != world_size:
            raise ResumeError(f"checkpoint {found} was written by {written} rank(s) but this launch has {world_size}: "
                              f"its optimizer state is sharded that way. Relaunch with {written} rank(s) in all (e.g. "
                              f"torchrun --nproc-per-node {written}), or start a new run from its weights "
                              f"(model=local model.path={found}; the optimizer state starts afresh)")
    return found
