"""`rlvr-dpo [hydra overrides]`: Direct Preference Optimization on preference pairs.

    rlvr-dpo                                                   # tiny policy, built-in task, CPU, minutes
    rlvr-dpo data.length_bias=0.5 loss.beta=0.05               # biased labels, a looser leash
    rlvr-dpo policy.path=runs/sft/checkpoints/step_000500 data.source=file data.path=prefs.jsonl

Root config ``conf/dpo.yaml`` (schema `rlvr.dpo.config.DPOConfig`); the run itself is
`rlvr.dpo.run.run`. A bad config, data file or model directory ends the run with one
line naming the fix and exit status 2, before any weights are loaded.
"""
from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlvr.config import CONF_DIR
from rlvr.dpo.config import DPOConfig, register_dpo_schema, validate_dpo

register_dpo_schema()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="dpo")
def main(dict_cfg: DictConfig) -> None:
    from transformers.utils import logging as hf_logging

    from rlvr.dpo.run import run
    from rlvr.errors import exit_on_user_error

    hf_logging.disable_progress_bar()
    cfg: DPOConfig = OmegaConf.to_object(dict_cfg)  # type: ignore[assignment]
    run_path = Path(HydraConfig.get().runtime.output_dir)
    with exit_on_user_error():
        validate_dpo(cfg)
        run_path.mkdir(parents=True, exist_ok=True)
        (run_path / "config.yaml").write_text(OmegaConf.to_yaml(dict_cfg, resolve=True))
        run(cfg, run_path)


if __name__ == "__main__":
    main()
