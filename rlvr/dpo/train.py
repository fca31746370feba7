"""`rlvr-dpo [hydra overrides]`: Direct Preference Optimization on preference pairs.

    rlvr-dpo +experiment=tiny_dpo                              # tiny policy, built-in task, CPU, minutes
    rlvr-dpo +experiment=tiny_dpo data.length_bias=0.5 loss.beta=0.05   # biased labels, a looser leash
    rlvr-dpo policy.path=runs/sft/checkpoints/step_000500 data.path=prefs.jsonl
    rlvr-dpo model.lora.rank=16 trainer.save_every=100 run_name=d1     # then: rlvr-dpo run_name=d1 resume=auto ...
    torchrun --nproc-per-node 2 -m rlvr.dpo.train trainer.backend=deepspeed

Root config ``conf/dpo.yaml`` (schema `rlvr.dpo.config.DPOConfig`); the run itself is
`rlvr.dpo.run.run`. A bad config, data file or model directory ends the run with one
line naming the fix and exit status 2, before any weights are loaded.
"""
from __future__ import annotations

from rlvr.dpo.config import register_dpo_schema, validate_dpo
from rlvr.entry import CommandHelp, stage_entry

register_dpo_schema()


HELP = CommandHelp(
    "rlvr-dpo", "dpo.yaml",
    "Direct Preference Optimization on preference pairs (rlvr-rm's data block: the same pairs for the same\n"
    "values), against a frozen reference (precomputed or online); held-out implicit-reward accuracy, greedy\n"
    "pass rate and sampled KL before and after. The tiny demo on the built-in task: +experiment=tiny_dpo.",
    ("rlvr-dpo +experiment=tiny_dpo",
     "rlvr-dpo policy.path=runs/sft/checkpoints/step_000500 data.path=prefs.jsonl",
     "rlvr-dpo data.path=prefs.jsonl policy.train_overrides='[+experiment=my_grpo]'",
     "rlvr-dpo +experiment=tiny_dpo data.length_bias=0.5 loss.beta=0.05",
     "rlvr-dpo +experiment=tiny_dpo trainer.reference=online trainer.micro_batch_size=4",
     "rlvr-dpo +experiment=tiny_dpo model.lora.rank=16 trainer.save_every=100 run_name=d1",
     "torchrun --nproc-per-node 2 -m rlvr.dpo.train trainer.backend=deepspeed"),
    (("policy.path", "the starting policy (e.g. an rlvr-sft checkpoint); null = rlvr-train's warm-up"),
     ("policy.train_overrides", "rlvr-train overrides that give the warm-up, held-out prompts and answer budget"),
     ("data.source / data.path", "file (any preference shape) or the built-in task"),
     ("loss.beta", "the leash: implicit reward = beta * log-ratio to the reference"),
     ("loss.sft_coef", "adds the chosen answer's NLL"),
     ("trainer.batch_size", "pairs per optimizer step"),
     ("trainer.max_steps", "stop after this many steps (0 = the epochs decide)"),
     ("trainer.optim.lr", "learning rate"),
     ("model.lora.rank / model.dtype", "the policy's LoRA and precision (keys left at their defaults: train_overrides')"),
     ("trainer.backend", "torch (one process) | deepspeed (ZeRO-2/3, torchrun)"),
     ("run_name / resume", "the run directory runs/<run_name>; resume=auto continues it (trainer.save_every)")))


def _run(cfg, run_path):
    from rlvr.dpo.run import run

    return run(cfg, run_path)


def _timeout(cfg) -> int:
    return cfg.trainer.deepspeed.timeout_s


main = stage_entry(HELP, validate_dpo, _run, timeout_of=_timeout)


if __name__ == "__main__":
    main()
