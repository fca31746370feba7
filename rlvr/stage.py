"""The skeleton every training stage shares (`rlvr-train`'s RL stage, `rlvr-sft`, `rlvr-rm`, `rlvr-dpo`).

- `run_stage`: the body of a single-process Hydra entry point: the typed config, its validation,
  the run directory Hydra chose with the resolved ``config.yaml``, then the stage's own
  ``run(cfg, run_path)``; a user error anywhere is one ``error:`` line and exit status 2.
- `load_data`: the prompt sets of a run (`rlvr.data`) with every prompt measured against the
  tokenizer and every verifier a row names checked, before anything expensive is built.
- `seed_everything`, `resolve_device`: the same seeding and device choice in every stage.

The RL stage runs under torchrun too, so its entry (`rlvr.rl.train`) joins the process group and
agrees on the run directory first, then uses the same pieces.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple, Optional

import torch

from rlvr.config import ConfigError, TrainConfig, check_known_keys, check_verifier
from rlvr.data import build_prompt_sets
from rlvr.data.chat import DataError, LengthChecked
from rlvr.errors import exit_on_user_error
from rlvr.models import base_model_dir, load_tokenizer

__all__ = ["run_stage", "RunData", "load_data", "seed_everything", "resolve_device", "no_trace_of_a_failed_start",
           "CommandHelp", "experiments", "answer_listing_flags", "check_rows", "as_data_error", "stage_entry"]


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


def run_stage(dict_cfg: Any, validate: Callable[[Any], None], run: Callable[[Any, Path], Any]) -> Any:
    """The body of a single-process Hydra entry point (`rlvr-sft`, `rlvr-rm`, `rlvr-dpo`): the typed config,
    `validate`, the run directory Hydra chose with the resolved ``config.yaml``, then `run(cfg, run_path)`;
    a user error anywhere is one line and exit status 2."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    run_path = Path(HydraConfig.get().runtime.output_dir)
    with no_trace_of_a_failed_start(run_path), exit_on_user_error():
        check_known_keys(dict_cfg)
        cfg = OmegaConf.to_object(dict_cfg)
        validate(cfg)
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
    tokenizer = load_tokenizer(policy_dir or base)
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


# ---- the console entries' own help and preset list (before Hydra parses anything) ----------------------
@dataclass(frozen=True)
class CommandHelp:
    """What ``COMMAND --help`` prints: usage, what the command does, common invocations, its own config
    groups (from the config root's defaults) and its most-used keys. Hydra's own help stays reachable
    (``--hydra-help``), and ``--cfg job`` prints every key with its value."""

    command: str
    root: str  # its root config under conf/ (config.yaml, rm.yaml, dpo.yaml)
    what: str
    examples: tuple[str, ...]
    keys: tuple[tuple[str, str], ...]

    def groups(self) -> list[tuple[str, list[str]]]:
        """The config groups the root's defaults list selects, each with the options conf/ has for it."""
        from rlvr.config import CONF_DIR

        conf = Path(CONF_DIR)
        named = re.findall(r"^\s*-\s*(?:optional\s+)?(?:override\s+)?/?([a-z_]+)\s*:", (conf / self.root).read_text(),
                           re.MULTILINE)
        return [(g, sorted(p.stem for p in (conf / g).glob("*.yaml"))) for g in named
                if g != "preset" and (conf / g).is_dir()]

    def render(self) -> str:
        width = max(len(k) for k, _ in self.keys)
        lines = [f"usage: {self.command} [KEY=VALUE ...] [GROUP=OPTION ...] [+experiment=NAME]", "", self.what, "",
                 "examples:", *(f"  {e}" for e in self.examples), "", "config groups (GROUP=OPTION):"]
        lines += [f"  {g:<12} {', '.join(options)}" for g, options in self.groups()]
        presets = [name for name, _ in experiments(self.root)]
        lines += [f"  {'+experiment':<12} {', '.join(presets) or '(none)'}  (descriptions: {self.command} "
                  f"--list-experiments)", "",
                  "most-used keys:"]
        lines += [f"  {k:<{width}}  {text}" for k, text in self.keys]
        lines += ["", f"every key and its value: {self.command} --cfg job;  Hydra's own help: {self.command} --hydra-help"]
        return "\n".join(lines)


def experiments(root: str) -> list[tuple[str, str]]:
    """(name, first line of its description) of each preset under conf/experiment/ for this root config
    (a preset names another root with a ``# root: rm.yaml`` line; otherwise it is rlvr-train's)."""
    from rlvr.config import CONF_DIR

    found = []
    for path in sorted((Path(CONF_DIR) / "experiment").glob("*.yaml")):
        comments = [line[1:].strip() for line in path.read_text().splitlines() if line.startswith("#")]
        roots = [c.split(":", 1)[1].split()[0] for c in comments if c.startswith("root:")]
        if (roots[0] if roots else "config.yaml") != root:
            continue
        found.append((path.stem, _first_sentence(comments)))
    return found


def _first_sentence(comments: list[str], limit: int = 110) -> str:
    """The first sentence of a preset's header comment (its description)."""
    words = []
    for line in comments:
        if line.startswith(("@package", "root:")):
            continue
        if not line or line.startswith(("rlvr-", " ")):
            if words:
                break
            continue
        words.append(line)
    text = " ".join(words)
    end = text.find(". ")
    text = text[:end + 1] if end >= 0 else text
    return text if len(text) <= limit else text[:limit - 3].rstrip() + "..."


def _run_dir_parent(args: list[str]) -> Path:
    """Where Hydra will create the run directory: the parent of ``hydra.run.dir`` when given, else ``runs/``."""
    for arg in args:
        if arg.lstrip("+").startswith("hydra.run.dir="):
            return Path(os.path.expanduser(arg.split("=", 1)[1])).absolute().parent
    return Path("runs").absolute()


def check_writable_run_dir(args: list[str]) -> None:
    """A run directory that cannot be created (a read-only file system, no permission) is one error line and
    exit status 2 before Hydra tries (Hydra's own failure is a traceback and exit status 1)."""
    parent = _run_dir_parent(args)
    existing = next((p for p in (parent, *parent.parents) if p.exists()), Path("/"))
    if not os.access(existing, os.W_OK | os.X_OK):
        print(f"error: cannot create the run directory under {existing} (read-only or not writable); run from a "
              f"writable directory or set hydra.run.dir=DIR", file=sys.stderr, flush=True)
        sys.exit(2)


def answer_listing_flags(help: CommandHelp, argv: Optional[list[str]] = None) -> None:
    """``--help`` / ``-h`` print the command's own help; ``--list-experiments`` its presets; then exit 0.
    A run directory that cannot be created is one error line, exit 2. Anything else is left for Hydra."""
    args = sys.argv[1:] if argv is None else argv
    if "--help" in args or "-h" in args:
        print(help.render())
        sys.exit(0)
    if "--list-experiments" in args:
        found = experiments(help.root)
        width = max((len(name) for name, _ in found), default=0)
        print("\n".join(f"{name:<{width}}  {text}" for name, text in found) or "(no presets)")
        print(f"\nuse one: {help.command} +experiment=NAME")
        sys.exit(0)
    if not any(a.startswith("--") for a in args):  # --cfg, --hydra-help, ... write no run directory
        check_writable_run_dir(args)


def stage_entry(help: CommandHelp, validate: Callable[[Any], None], run: Callable[[Any, Path], Any]
                ) -> Callable[[], None]:
    """The console entry of a single-process stage: its own --help and --list-experiments, else Hydra composes
    ``help.root`` and `run_stage` runs it (``run`` may import its heavy modules itself, so help stays fast)."""
    import hydra

    from rlvr.config import CONF_DIR

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=Path(help.root).stem)
    def composed(dict_cfg: Any) -> None:
        run_stage(dict_cfg, validate, run)

    def main() -> None:
        answer_listing_flags(help)
        composed()

    return main
