"""`rlvr-train [hydra overrides]`: compose the config, validate it, agree on the run directory, run
the RL stage (`rlvr.rl.run`). Also `python -m rlvr.train` (the same entry, `rlvr/train.py`).

With no arguments it runs the embedded default: a tiny Llama built locally, a short
supervised warm-up (`rlvr.sft.warm_up`) on the built-in arithmetic task, then GRPO
(CPU, minutes). A bad config, data, model directory or resume request ends the run
with one line naming the fix and exit status 2, before anything expensive is built.

Under torchrun (``torchrun --nproc-per-node N -m rlvr.train ...``) every rank runs this
with the same overrides: the process group is joined with ``trainer.deepspeed.timeout_s``
(`rlvr.distributed`), rank 0's Hydra output directory becomes every rank's run directory
(ranks > 0 make no Hydra directory of their own), and rank 0 decides the checkpoint to
resume. Without torchrun's environment it is one process, exactly as before.
"""
from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from rlvr.config import CONF_DIR, TrainConfig, check_known_keys, register_schemas
from rlvr.config_checks import batch_arithmetic, validate
from rlvr.distributed import QUIET_HYDRA_OVERRIDES, launched_world
from rlvr.entry import CommandHelp, answer_listing_flags
from rlvr.stage import no_trace_of_a_failed_start

register_schemas()


HELP = CommandHelp(
    "rlvr-train", "config.yaml",
    "Reinforcement learning with verifiable rewards (GRPO and the other registered estimators and losses):\n"
    "sample groups of completions, score them with verifiers and reward models, update the policy, evaluate\n"
    "held-out prompts, watch for reward hacking. With no arguments: the embedded default (a tiny Llama\n"
    "built locally, a supervised warm-up, GRPO on the built-in arithmetic task; CPU, minutes). Runs land in\n"
    "runs/<run_name>/ (config.yaml, metrics.jsonl, samples/, checkpoints/, summary.json, report.html).",
    ("rlvr-train",
     "rlvr-train data=jsonl data.path=train.jsonl data.format=gsm8k model=local model.path=/models/qwen",
     "rlvr-train +experiment=smollm2_arith",
     "rlvr-train rollout=vllm algorithm=dapo trainer.total_steps=500",
     "rlvr-train run_name=exp1 resume=auto",
     "torchrun --nproc-per-node 2 -m rlvr.train trainer.backend=deepspeed"),
    (("model.path", "a Hugging Face directory, a .gguf file or package:NAME (with model=local)"),
     ("data.path / data.format", "your prompts (jsonl/json/csv/parquet) and their shape (auto, gsm8k, math, ...)"),
     ("model.dtype / model.weights_dtype", "compute precision (fp32 | bf16) / the policy's stored weights"),
     ("model.lora.rank", "a LoRA adapter of this rank instead of full fine-tuning (0 = off)"),
     ("trainer.gradient_checkpointing", "recompute activations in the backward pass (less memory)"),
     ("algorithm.group_size", "completions per prompt (G)"),
     ("algorithm.beta", "KL coefficient to the reference model (0 = no reference)"),
     ("rollout.max_new_tokens", "tokens sampled per completion"),
     ("rollout.tools.names", "tools the model may call inside its rollouts: [python], [calculator] (docs/tools.md)"),
     ("trainer.total_steps", "training steps"),
     ("trainer.prompts_per_step", "prompts per step (x G completions)"),
     ("trainer.micro_batch_size", "completions per forward/backward"),
     ("trainer.optim.lr", "learning rate"),
     ("reward.sources", "verifiers, reward models, rules, judges and their weights"),
     ("run_name / resume", "the run directory runs/<run_name>; resume=auto continues it")))


def main() -> None:
    """The console entry: ranks > 0 of a torchrun launch tell Hydra to write nothing of its own."""
    answer_listing_flags(HELP)
    if launched_world().rank > 0:
        sys.argv += list(QUIET_HYDRA_OVERRIDES)
    try:
        train()
    except KeyboardInterrupt:  # before the first step, or a second Ctrl-C (rlvr.rl.interrupt)
        print("interrupted: no checkpoint of the step in flight; resume=auto continues from the last saved one",
              file=sys.stderr, flush=True)
        sys.exit(130)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def train(dict_cfg: DictConfig) -> None:
    from transformers.utils import logging as hf_logging

    from rlvr.checkpoint import ResumeError, resolve_resume
    from rlvr.distributed import broadcast_object, decided_by_main, exit_on_collective_failure, start
    from rlvr.errors import exit_on_user_error
    from rlvr.rl.run import run
    from rlvr.run_dir import RunDir

    hf_logging.disable_progress_bar()
    own_dir = Path(HydraConfig.get().runtime.output_dir)
    main_rank = launched_world().rank == 0
    with no_trace_of_a_failed_start(own_dir, main_rank), exit_on_user_error():
        check_known_keys(dict_cfg)
        cfg: TrainConfig = OmegaConf.to_object(dict_cfg)  # type: ignore[assignment]
        validate(cfg, launched_world().size)
    with (no_trace_of_a_failed_start(own_dir, main_rank), exit_on_user_error(),
          exit_on_collective_failure(cfg.trainer.deepspeed.timeout_s)):
        world = start(cfg.trainer.deepspeed.timeout_s)
        path = broadcast_object(str(own_dir))  # decided once, by rank 0
        run_dir = RunDir(path, cfg.logger, writer=world.is_main)
        checkpoint = decided_by_main(lambda: resolve_resume(cfg.resume, run_dir.path, cfg.trainer.total_steps,
                                                            world.size), (ResumeError, OSError))
        if world.is_main:
            print(f"run directory: {run_dir.path}\n{batch_arithmetic(cfg, world.size)}", flush=True)
        config_yaml = OmegaConf.to_yaml(dict_cfg, resolve=True) if world.is_main else None
        run(cfg, run_dir, checkpoint, OmegaConf.to_container(dict_cfg, resolve=True), config_yaml)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
