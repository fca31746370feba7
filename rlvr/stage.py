"""The skeleton every training stage shares (`rlvr-train`'s RL stage, `rlvr-sft`, `rlvr-rm`, `rlvr-dpo`).

- `run_stage`: the body of a stage's Hydra entry point: the typed config, its validation,
  the run directory Hydra chose with the resolved ``config.yaml``, then the stage's own
  ``run(cfg, run_path)``; a user error anywhere is one ``error:`` line and exit status 2.
  A stage that runs under torchrun (`rlvr-rm`, `rlvr-dpo`: ``timeout_of`` given) joins the
  process group first, and rank 0's run directory becomes every rank's, as in `rlvr-train`;
  the others refuse a launch of several ranks.
- `load_data`: the prompt sets of a run (`rlvr.data`) with every prompt measured against the
  tokenizer and every verifier a row names checked, before anything expensive is built.
- `seed_everything`, `resolve_device`: the same seeding and device choice in every stage.
- `no_trace_of_a_failed_start`: a start that fails with a user error leaves no run directory behind.

What a console entry does before Hydra (its own --help, the presets, the run directory's
writability) and the entry body of the single-process stages live in `rlvr.entry`.

The RL stage's entry (`rlvr.rl.train`) does the same for torchrun with its own steps (the world size
decides its batch arithmetic), then uses the same pieces.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional

import torch

from rlvr.config import ConfigError, TrainConfig, check_known_keys, check_verifier
from rlvr.data import build_prompt_sets
from rlvr.data.chat import DataError, LengthChecked, declare_tools
from rlvr.errors import exit_on_user_error
from rlvr.models import base_model_dir, load_tokenizer

__all__ = ["run_stage", "RunData", "load_data", "seed_everything", "resolve_device", "no_trace_of_a_failed_start",
           "check_rows", "as_data_error"]


class RunData(NamedTuple):
    """What `load_data` returns (unpacks as a 4-tuple)."""

    base: Path  # the base model directory (`model.path`, imported or built once into the cache)
    tokenizer: Any
    train_set: LengthChecked
    eval_set: LengthChecked


def _only_hydra_records(path: Path) -> bool:
    """The directory holds nothing but what Hydra writes at every start (``.hydra/``, ``<job>.log``)."""
    return path.is_dir() and all(p.name == ".hydra" or p.suffix == ".log" for p in path.iterdir())


@contextlib.contextmanager
def no_trace_of_a_failed_start(run_path: Path, is_main: bool = True) -> Iterator[None]:
    """A run directory made for this start (nothing in it but Hydra's records) is removed again when the
    start fails with a user error (exit status 2) before the run wrote anything: a typo leaves no run
    behind. A directory that held a run before is never removed."""
    fresh = is_main and run_path.resolve() != Path.cwd().resolve() and _only_hydra_records(run_path)
    try:
        yield
    except SystemExit as exc:
        if fresh and exc.code == 2 and not any(p.name in ("metrics.jsonl", "checkpoints") for p in run_path.iterdir()):
            shutil.rmtree(run_path, ignore_errors=True)
        raise


def run_stage(dict_cfg: Any, validate: Callable[..., None], run: Callable[[Any, Path], Any],
              timeout_of: Optional[Callable[[Any], int]] = None, command: str = "this stage") -> Any:
    """The body of a stage's Hydra entry point (`rlvr-sft`, `rlvr-rm`, `rlvr-dpo`, `rlvr-eval`): the typed config,
    `validate`, the run directory Hydra chose with the resolved ``config.yaml``, then `run(cfg, run_path)`;
    a user error anywhere is one line and exit status 2.

    ``timeout_of`` (the config's collective timeout) marks a stage that runs under torchrun: ``validate`` is
    then called with the world size, every rank joins the process group, rank 0's run directory is
    broadcast and rank 0 alone writes ``config.yaml``. Without it a launch of several ranks is refused."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf
    from transformers.utils import logging as hf_logging

    from rlvr.distributed import broadcast_object, exit_on_collective_failure, launched_world, start

    hf_logging.disable_progress_bar()
    run_path, world = Path(HydraConfig.get().runtime.output_dir), launched_world()
    with no_trace_of_a_failed_start(run_path, world.is_main), exit_on_user_error():
        check_known_keys(dict_cfg)
        cfg = OmegaConf.to_object(dict_cfg)
        if timeout_of is None and world.size > 1:
            raise ConfigError(f"{command} runs one process, but this launch has {world.size} ranks; "
                              f"run it without torchrun")
        if timeout_of is None:
            validate(cfg)
        else:
            validate(cfg, world.size)
    collectives = exit_on_collective_failure(timeout_of(cfg)) if timeout_of else contextlib.nullcontext()
    with no_trace_of_a_failed_start(run_path, world.is_main), exit_on_user_error(), collectives:
        if timeout_of is not None:
            start(timeout_of(cfg))
            run_path = Path(broadcast_object(str(run_path)))  # decided once, by rank 0
        if world.is_main:
            run_path.mkdir(parents=True, exist_ok=True)
            (run_path / "config.yaml").write_text(OmegaConf.to_yaml(dict_cfg, resolve=True))
        return run(cfg, run_path)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


@contextlib.contextmanager
def as_data_error() -> Iterator[None]:
    """A data source's ValueError (a missing column, a row a format cannot read) is a user error."""
    try:
        yield
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(str(exc)) from None


def load_data(cfg: TrainConfig, need_reference: bool = True, policy_dir: Optional[Path] = None) -> RunData:
    """(base model dir, tokenizer, train set, held-out set), every prompt measured and its verifier checked;
    the tokenizer is `policy_dir`'s (a checkpoint being resumed) when given."""
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    d = cfg.data
    with as_data_error():
        train_raw, eval_raw = build_prompt_sets(d)
    base = base_model_dir(cfg)
    tokenizer = load_tokenizer(policy_dir or base, d.chat_template)
    declare_tools(tokenizer, cfg.rollout.tools)  # prompts list the offered tools where the template can
    with as_data_error():  # every row is read here: a row a format cannot read names itself
        train_set = LengthChecked(train_raw, tokenizer, d.max_prompt_tokens, d.on_long_prompt, "training")
        eval_set = LengthChecked(eval_raw, tokenizer, d.max_prompt_tokens, d.on_long_prompt, "held-out")
    print(f"data: {train_set.describe()}; {eval_set.describe()}", flush=True)
    for checked in (train_set, eval_set):
        check_rows(cfg, checked, need_reference)
    return RunData(base, tokenizer, train_set, eval_set)


def check_rows(cfg: TrainConfig, checked: LengthChecked, need_reference: bool = True) -> None:
    """Every verifier the rows name exists; rows a verifier scores have a reference."""
    for name in sorted(checked.verifiers - {"none"}):  # none: rows a reward model scores alone
        try:
            check_verifier(f"{checked.name} rows", name, {})
        except ConfigError as exc:
            raise DataError(str(exc)) from None
    uses_verifier = any(s.kind == "verifier" for s in cfg.reward.sources)
    if need_reference and uses_verifier and checked.without_reference:
        raise DataError(f"{checked.name} prompt {checked.without_reference[0]} has no reference (gold answer) "
                        f"for its verifier; set data.reference_field to the dataset's answer column")
