"""`rlvr-sft [hydra overrides]`: the SFT stage's entry (the run: `rlvr.sft.run`).

Same config groups as `rlvr-train` (``conf/config.yaml``); the stage is described by ``model.sft``.
"""
from __future__ import annotations

import sys

from rlvr.config import register_schemas
from rlvr.config_checks import validate
from rlvr.sft.run import run
from rlvr.entry import CommandHelp, stage_entry

register_schemas()

__all__ = ["main"]


HELP = CommandHelp(
    "rlvr-sft", "config.yaml",
    "Supervised fine-tuning on reference completions (a row's solution, the last assistant turn of its chat\n"
    "messages, or a dataset format's target such as GSM8K's worked answer), with rlvr-train's config groups,\n"
    "run directory, checkpoints and resume. The stage is model.sft: steps, prompts per step, learning rate.",
    ("rlvr-sft model=local model.path=/models/base data=jsonl data.path=sft.jsonl model.sft.steps=500",
     "rlvr-sft model=local model.path=/models/base data=jsonl data.path=gsm8k.jsonl data.format=gsm8k model.sft.steps=1000",
     "rlvr-sft +experiment=tiny_pref_arith_sft",
     "rlvr-sft model.sft.steps=300 model.sft.lr=1e-3",
     "rlvr-sft run_name=sft1 resume=auto model.sft.steps=500"),
    (("model.path", "the model to fine-tune (with model=local)"),
     ("data.path / data.format", "the rows and their shape"),
     ("model.sft.steps", "optimizer steps (required: 0 means nothing to train)"),
     ("model.sft.batch_size", "prompts per step"),
     ("model.sft.lr", "learning rate (cosine-decayed to 10%)"),
     ("trainer.micro_batch_size", "rows per forward/backward"),
     ("trainer.save_every", "checkpoint interval"),
     ("run_name / resume", "the run directory runs/<run_name>; resume=auto continues it")))


main = stage_entry(HELP, validate, run)


if __name__ == "__main__":
    sys.exit(main())
