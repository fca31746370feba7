"""Build every part of an RL run from its typed config and its loaded data (`rlvr.rl.run`).

The data comes in already loaded and checked (`rlvr.stage.load_data`: every prompt measured,
every verifier a row asks for checked) and the start model already chosen (the base model,
the supervised warm-up's output, or a checkpoint): only then is anything expensive built
(the policy, the reference model, the engine, the reward sources).
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from rlvr.algo import uses_critic
from rlvr.config import TrainConfig
from rlvr.data.chat import LengthChecked
from rlvr.learner import Backend, Learner, autocast_dtype, build_backend
from rlvr.learner.ptx import build_ptx
from rlvr.models.lora import is_adapter_dir
from rlvr.models.policy import load_policy, load_reference, policy_line
from rlvr.models.precision import frozen_dtype, precision_line
from rlvr.rewards import RewardScorer
from rlvr.rl.ppo import PPOStep, describe
from rlvr.rollout import Engine, build_engine
from rlvr.rollout.multiturn import with_tools
from rlvr.stage import RunData, resolve_device

__all__ = ["Parts", "build_parts", "engine_options"]


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
    ppo: Optional[PPOStep] = None  # algorithm=ppo: the critic and what the loop does with it (rlvr/rl/ppo.py)

    @property
    def model(self) -> torch.nn.Module:
        return self.backend.module

    def close(self) -> None:
        self.engine.close()
        self.scorer.close()


def engine_options(cfg: TrainConfig) -> dict[str, Any]:
    """The chosen engine's own config block (``rollout.<engine>``) as keyword arguments."""
    block = getattr(cfg.rollout, cfg.rollout.engine, None)
    return asdict(block) if block is not None else {}


def build_parts(cfg: TrainConfig, data: RunData, start: Path, policy_dir: Optional[Path] = None) -> Parts:
    """Policy from `policy_dir` (a checkpoint) or `start` (the base model or its supervised warm-up);
    the reference model is `start`, loaded only if beta > 0."""
    device = resolve_device(cfg.model.device)
    policy = load_policy(cfg.model, start, policy_dir, cfg.trainer.gradient_checkpointing).to(device)
    backend = build_backend(cfg.trainer.backend, policy, cfg.trainer, cfg.algorithm, cfg.model.dtype,
                            cfg.model.master_dtype)
    reference = load_reference(cfg.model, start, backend.module, backend.reference) if cfg.algorithm.beta > 0 \
        else None
    dtype = autocast_dtype(cfg.model.dtype)
    # an engine that loads weights itself starts from full weights: an adapter checkpoint's base (then synced)
    engine_dir = start if policy_dir is None or is_adapter_dir(policy_dir) else policy_dir
    engine = build_engine(cfg.rollout.engine, backend.module, data.tokenizer, autocast_dtype=dtype,
                          model_dir=engine_dir, seed=cfg.trainer.seed, **engine_options(cfg))
    engine = with_tools(engine, data.tokenizer, cfg.rollout.tools, backend.module)  # multi-turn when tools are offered
    learner = Learner(backend, cfg.algorithm, cfg.trainer, cfg.rollout.max_new_tokens, cfg.rollout.temperature,
                      cfg.model.dtype, ptx=build_ptx(cfg, data.tokenizer, backend.rank))
    scorer = RewardScorer(cfg.reward, device, frozen_dtype(cfg.model))
    model = backend.module
    print(f"model: {start if policy_dir is None else policy_dir} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {cfg.model.dtype}, {device}); "
          f"reference model: {'loaded' if reference is not None else 'none (beta = 0)'}; "
          f"engine: {cfg.rollout.engine}; backend: {cfg.trainer.backend} (rank {backend.rank} of "
          f"{backend.world_size}); torch threads: {torch.get_num_threads()}; pid {os.getpid()}", flush=True)
    print(f"{precision_line(cfg.model, cfg.trainer.backend)}; {policy_line(model, cfg.trainer.gradient_checkpointing)}",
          flush=True)
    ends = ", ".join(f"{data.tokenizer.convert_ids_to_tokens(i)} ({i})" for i in sorted(engine.eos_ids))
    print(f"prompts: data.chat_template={cfg.data.chat_template}; completions end at any of {ends}", flush=True)
    if cfg.rollout.tools.enabled:
        t = cfg.rollout.tools
        print(f"tools: {', '.join(t.names) or '-'} (environment {t.env or 'tools'}, {t.call_format} calls, at most "
              f"{t.max_calls} per rollout, {t.timeout_s:g} s each, outputs cut to {t.max_output_chars} characters, "
              f"context {engine.max_context_tokens or 'unbounded'} tokens)", flush=True)
    ppo = None
    if uses_critic(cfg.algorithm.advantage):
        from rlvr.learner.critic import build_critic

        ppo = PPOStep(build_critic(cfg.algorithm, cfg.trainer, start, model, data.tokenizer, device), cfg.algorithm)
        print(describe(cfg.algorithm), flush=True)
    return Parts(backend, data.tokenizer, reference, engine, scorer, learner, data.train_set, data.eval_set, start,
                 ppo)
