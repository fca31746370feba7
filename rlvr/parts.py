"""Build every part of a run from its typed config (called by `rlvr.train` and `rlvr.sft`).

Order matters for failing fast: the data is loaded and every prompt measured against
the tokenizer, every verifier a row asks for is checked, and only then is anything
expensive built (the supervised warm-up, the policy, the reference model, engines).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from rlvr.config import ConfigError, TrainConfig
from rlvr.config_checks import check_verifier
from rlvr.data import build_prompt_sets
from rlvr.data.chat import DataError, LengthChecked
from rlvr.distributed import main_first
from rlvr.learner import Backend, Learner, autocast_dtype, build_backend
from rlvr.learner.ptx import build_ptx
from rlvr.models import base_model_dir, load_model, load_tokenizer
from rlvr.rewards import RewardScorer
from rlvr.rollout import Engine, build_engine

__all__ = ["Parts", "build_parts", "load_data", "seed_everything", "resolve_device"]


@dataclass
class Parts:
    backend: Backend
    tokenizer: Any
    reference: Optional[Callable[..., Any]]  # frozen reference policy's forward (None when beta = 0)
    engine: Engine
    scorer: RewardScorer
    learner: Learner
    train_set: LengthChecked
    eval_set: LengthChecked
    base_dir: Path

    @property
    def model(self) -> torch.nn.Module:
        return self.backend.module

    def close(self) -> None:
        self.engine.close()
        self.scorer.close()


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def load_data(cfg: TrainConfig, need_reference: bool = True, policy_dir: Optional[Path] = None):
    """(base model dir, tokenizer, train set, held-out set), every prompt measured and its verifier checked."""
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    train_raw, eval_raw = build_prompt_sets(cfg.data)
    base = base_model_dir(cfg)
    tokenizer = load_tokenizer(policy_dir or base)
    d = cfg.data
    train_set = LengthChecked(train_raw, tokenizer, d.max_prompt_tokens, d.on_long_prompt, "training")
    eval_set = LengthChecked(eval_raw, tokenizer, d.max_prompt_tokens, d.on_long_prompt, "held-out")
    print(f"data: {train_set.describe()}; {eval_set.describe()}", flush=True)
    uses_verifier = any(s.kind == "verifier" for s in cfg.reward.sources)
    for checked in (train_set, eval_set):
        for name in sorted(checked.verifiers - {"none"}):  # none: rows a reward model scores alone
            try:
                check_verifier(f"{checked.name} rows", name, {})
            except ConfigError as exc:
                raise DataError(str(exc)) from None
        if need_reference and uses_verifier and checked.without_reference:
            raise DataError(f"{checked.name} prompt {checked.without_reference[0]} has no reference (gold answer) "
                            f"for its verifier; set data.reference_field to the dataset's answer column")
    return base, tokenizer, train_set, eval_set


def engine_options(cfg: TrainConfig) -> dict[str, Any]:
    """The chosen engine's own config block (``rollout.<engine>``) as keyword arguments."""
    block = getattr(cfg.rollout, cfg.rollout.engine, None)
    return asdict(block) if block is not None else {}


def build_parts(cfg: TrainConfig, policy_dir: Optional[Path] = None) -> Parts:
    """Policy from `policy_dir` (a checkpoint) or the configured/base model; reference only if beta > 0."""
    seed_everything(cfg.trainer.seed)
    with main_first():  # several ranks: rank 0 builds the cached base model / warm-up, the others then read it
        base, tokenizer, train_set, eval_set = load_data(cfg, policy_dir=policy_dir)
        if cfg.model.sft.steps > 0:
            from rlvr.sft import warm_up

            base = warm_up(cfg, base, train_set, tokenizer)
    device = resolve_device(cfg.model.device)
    backend = build_backend(cfg.trainer.backend, load_model(policy_dir or base).to(device), cfg.trainer,
                            cfg.algorithm, cfg.model.dtype)
    reference = backend.reference(load_model(base)) if cfg.algorithm.beta > 0 else None
    dtype = autocast_dtype(cfg.model.dtype)
    engine = build_engine(cfg.rollout.engine, backend.module, tokenizer, autocast_dtype=dtype,
                          model_dir=policy_dir or base, seed=cfg.trainer.seed, **engine_options(cfg))
    learner = Learner(backend, cfg.algorithm, cfg.trainer, cfg.rollout.max_new_tokens, cfg.rollout.temperature,
                      cfg.model.dtype, ptx=build_ptx(cfg, tokenizer, backend.rank))
    scorer = RewardScorer(cfg.reward, device)
    model = backend.module
    print(f"model: {base if policy_dir is None else policy_dir} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {cfg.model.dtype}, {device}); "
          f"reference model: {'loaded' if reference is not None else 'none (beta = 0)'}; "
          f"engine: {cfg.rollout.engine}; backend: {cfg.trainer.backend} (rank {backend.rank} of "
          f"{backend.world_size}); torch threads: {torch.get_num_threads()}; pid {os.getpid()}", flush=True)
    return Parts(backend, tokenizer, reference, engine, scorer, learner, train_set, eval_set, base)
