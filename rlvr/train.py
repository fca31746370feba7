"""`rlvr-train [hydra overrides]`: compose the config, build the parts, run the loop.

With no arguments it runs the embedded default: a tiny Llama built locally, a short
supervised warm-up (`rlvr.sft.warm_up`) on the built-in arithmetic task, then GRPO
(CPU, minutes). A bad config, data, model directory or resume request ends the run
with one line naming the fix and exit status 2, before anything expensive is built.
"""
from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlvr.config import CONF_DIR, TrainConfig, batch_arithmetic, register_schemas, validate

register_schemas()


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(dict_cfg: DictConfig) -> None:
    from transformers.utils import logging as hf_logging

    from rlvr.checkpoint import resolve_resume
    from rlvr.errors import exit_on_user_error
    from rlvr.loop import Loop
    from rlvr.parts import build_parts
    from rlvr.run_dir import RunDir

    hf_logging.disable_progress_bar()
    cfg: TrainConfig = OmegaConf.to_object(dict_cfg)  # type: ignore[assignment]
    run_dir = RunDir(HydraConfig.get().runtime.output_dir, cfg.logger)
    with exit_on_user_error():
        validate(cfg)
        checkpoint = resolve_resume(cfg.resume, run_dir.path, cfg.trainer.total_steps)
        print(f"run directory: {run_dir.path}\n{batch_arithmetic(cfg)}", flush=True)
        (run_dir.path / "config.yaml").write_text(OmegaConf.to_yaml(dict_cfg, resolve=True))
        parts = build_parts(cfg, policy_dir=checkpoint)
        try:
            loop = Loop(cfg, parts, run_dir)
            if checkpoint is not None:
                loop.restore(checkpoint)
            run_dir.open_loggers(OmegaConf.to_container(dict_cfg, resolve=True))  # type: ignore[arg-type]
            loop.run()
        finally:
            parts.close()
            run_dir.close()


if __name__ == "__main__":
    main()
