"""`rlvr-dpo [hydra overrides]`: Direct Preference Optimization on preference pairs.

    rlvr-dpo                                                   # tiny policy, built-in task, CPU, minutes
    rlvr-dpo data.length_bias=0.5 loss.beta=0.05               # biased labels, a looser leash
    rlvr-dpo policy.path=runs/sft/checkpoints/step_000500 data.source=file data.path=prefs.jsonl

Root config ``conf/dpo.yaml`` (schema `rlvr.dpo.config.DPOConfig`); the run itself is
`rlvr.dpo.run.run`. A bad config, data file or model directory ends the run with one
line naming the fix and exit status 2, before any weights are loaded.
"""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rlvr.config import CONF_DIR
from rlvr.dpo.config import register_dpo_schema, validate_dpo

register_dpo_schema()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="dpo")
def main(dict_cfg: DictConfig) -> None:
    from rlvr.dpo.run import run
    from rlvr.stage import run_stage

    run_stage(dict_cfg, validate_dpo, run)


if __name__ == "__main__":
    main()
