"""The RL stage's run (`rlvr-train`): the stages of a run in order, then the loop.

1. **Data** (`rlvr.stage.load_data`): every prompt measured, every verifier checked.
2. **Supervised warm-up** (`rlvr.sft.warm_up`, only where ``model.sft.steps > 0``: the embedded
   default's tiny model): the SFT stage on the task's solutions, cached by everything that
   determines its result, so later runs and other presets reuse it.
3. **Parts** (`rlvr.rl.parts.build_parts`): policy, reference, engine, reward sources, learner.
4. **Loop** (`rlvr.rl.loop.Loop`): GRPO (or any registered advantage estimator and loss) steps,
   evaluation, the watch, checkpoints and the summary.

Under torchrun, rank 0 runs the data and warm-up stages first (`main_first`) and the others
read what it cached.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Optional

from rlvr.config import TrainConfig
from rlvr.distributed import main_first
from rlvr.rl.loop import Loop
from rlvr.rl.parts import Parts, build_parts
from rlvr.run_dir import RunDir
from rlvr.sft.run import warm_up
from rlvr.stage import RunData, load_data, seed_everything

__all__ = ["start_model", "prepare", "run"]


def _warn_about_the_demo_setup(cfg: TrainConfig, data: RunData) -> None:
    """Say so when the user's own data meets the tiny demo model, or a step draws more prompts than exist."""
    if cfg.data.source == "file" and not cfg.model.path:
        print("warning: no model named (model.path): the embedded tiny demo model (0.14M parameters, a character "
              "tokenizer) is in use; train your own with model=local model.path=DIR", file=sys.stderr, flush=True)
    if len(data.train_set) < cfg.trainer.prompts_per_step:
        print(f"warning: trainer.prompts_per_step={cfg.trainer.prompts_per_step} but only {len(data.train_set)} "
              f"training prompts: every step repeats prompts", file=sys.stderr, flush=True)


def start_model(cfg: TrainConfig, data: RunData) -> Path:
    """The model RL starts from: the base model, or its supervised warm-up where ``model.sft.steps > 0``."""
    if cfg.model.sft.steps > 0:
        return warm_up(cfg, data.base, data.train_set, data.tokenizer)
    return data.base


def prepare(cfg: TrainConfig, policy_dir: Optional[Path] = None) -> Parts:
    """Stages 1-3: data, warm-up, parts (the policy from `policy_dir` when resuming a checkpoint)."""
    seed_everything(cfg.trainer.seed)
    with main_first():  # several ranks: rank 0 builds the cached base model / warm-up, the others then read it
        data = load_data(cfg, policy_dir=policy_dir)
        _warn_about_the_demo_setup(cfg, data)
        start = start_model(cfg, data)
    return build_parts(cfg, data, start, policy_dir)


def run(cfg: TrainConfig, run_dir: RunDir, checkpoint: Optional[Path], resolved: dict[str, Any],
        config_yaml: Optional[str] = None) -> None:
    """The whole run into `run_dir`, resuming `checkpoint` when given; `resolved` is the config the
    loggers record, `config_yaml` the resolved config.yaml the main rank writes once the data, the
    warm-up and the parts are ready (a start that fails never rewrites an existing run's config)."""
    parts = prepare(cfg, policy_dir=checkpoint)
    if config_yaml is not None:
        (run_dir.path / "config.yaml").write_text(config_yaml)
    try:
        loop = Loop(cfg, parts, run_dir)
        if checkpoint is not None:
            loop.restore(checkpoint)
        run_dir.open_loggers(resolved)
        loop.run()
    finally:
        parts.close()
        run_dir.close()
