"""User errors (a bad config, data, model directory or resume) end the run with one line and exit 2."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

__all__ = ["exit_on_user_error", "run_stage"]


def _user_errors() -> tuple[type[BaseException], ...]:
    from rlvr.checkpoint import ResumeError
    from rlvr.config import ConfigError
    from rlvr.data.chat import DataError
    from rlvr.models import ModelError
    from rlvr.registry import RegistryError

    return (ConfigError, DataError, ModelError, ResumeError, RegistryError)



@contextlib.contextmanager
def exit_on_user_error() -> Iterator[None]:
    """Turn the errors whose message names the fix into ``error: <message>`` on stderr and exit status 2."""
    try:
        yield
    except _user_errors() as exc:
        message = str(exc.args[0]) if exc.args else str(exc)
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def run_stage(dict_cfg: Any, validate: Callable[[Any], None], run: Callable[[Any, Path], Any]) -> Any:
    """The body of a single-process Hydra entry point (`rlvr-sft`, `rlvr-rm`, `rlvr-dpo`): the typed config,
    `validate`, the run directory Hydra chose with the resolved ``config.yaml``, then `run(cfg, run_path)`;
    a user error anywhere is one line and exit status 2."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    cfg = OmegaConf.to_object(dict_cfg)
    run_path = Path(HydraConfig.get().runtime.output_dir)
    with exit_on_user_error():
        validate(cfg)
        run_path.mkdir(parents=True, exist_ok=True)
        (run_path / "config.yaml").write_text(OmegaConf.to_yaml(dict_cfg, resolve=True))
        return run(cfg, run_path)
