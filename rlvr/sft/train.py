"""`rlvr-sft [hydra overrides]`: the SFT stage's entry (the run: `rlvr.sft.run`).

Same config groups as `rlvr-train` (``conf/config.yaml``); the stage is described by ``model.sft``.
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from rlvr.config import CONF_DIR, register_schemas
from rlvr.config_checks import validate
from rlvr.sft.run import run
from rlvr.stage import run_stage

register_schemas()

__all__ = ["main"]


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(dict_cfg: DictConfig) -> None:
    run_stage(dict_cfg, validate, run)


if __name__ == "__main__":
    sys.exit(main())
