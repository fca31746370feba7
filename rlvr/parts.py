"""Build every part of a run from its typed config (called by `rlvr.train`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from rlvr.config import TrainConfig
from rlvr.data import PromptSet, build_prompt_sets
from rlvr.learner import Learner, autocast_dtype
from rlvr.models import load_model, load_tokenizer, prepare_model_dir
from rlvr.rewards import RewardScorer
from rlvr.rollout import Engine, build_engine

__all__ = ["Parts", "build_parts", "seed_everything"]


@dataclass
class Parts:
    model: torch.nn.Module
    tokenizer: Any
    ref_model: Optional[torch.nn.Module]
    engine: Engine
    scorer: RewardScorer
    learner: Learner
    train_set: PromptSet
    eval_set: PromptSet
    base_dir: Path


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_parts(cfg: TrainConfig, policy_dir: Optional[Path] = None) -> Parts:
    """Policy from `policy_dir` (a checkpoint) or the configured/base model; reference only if beta > 0."""
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    seed_everything(cfg.trainer.seed)
    train_set, eval_set = build_prompt_sets(cfg.data)
    base = prepare_model_dir(cfg, train_set)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if cfg.model.device == "auto"
                          else cfg.model.device)
    model = load_model(policy_dir or base).to(device)
    tokenizer = load_tokenizer(policy_dir or base)
    ref_model = None
    if cfg.algorithm.beta > 0:
        ref_model = load_model(base).to(device).eval().requires_grad_(False)
    dtype = autocast_dtype(cfg.model.dtype)
    engine = build_engine(cfg.rollout.engine, model, tokenizer, batch_size=cfg.rollout.batch_size,
                          autocast_dtype=dtype)
    learner = Learner(model, cfg.algorithm, cfg.trainer, cfg.rollout.max_new_tokens, cfg.rollout.temperature,
                      cfg.model.dtype, on_step=engine.sync_weights)
    scorer = RewardScorer(cfg.reward)
    scorer.check_names([cfg.data.verifier])
    print(f"model: {base if policy_dir is None else policy_dir} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {cfg.model.dtype}, {device}); "
          f"reference model: {'loaded' if ref_model is not None else 'none (beta = 0)'}; "
          f"torch threads: {torch.get_num_threads()}; pid {os.getpid()}", flush=True)
    return Parts(model, tokenizer, ref_model, engine, scorer, learner, train_set, eval_set, base)
