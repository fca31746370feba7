"""Held-out evaluation through the same engine and verifiers as training.

pass@1 is greedy; pass@k uses ``num_samples`` samples per prompt and the unbiased
estimator 1 - C(n - c, k) / C(n, k) (c = correct samples). Both need a source that
decides pass/fail (a verifier); the mean reward of the greedy outputs, overall and per
source, is always reported. The sampler runs under its
own seed inside `torch.random.fork_rng`, so evaluating never changes the training
random stream (a resumed run stays identical to an uninterrupted one).

`run_evaluation` also keeps what each held-out prompt got: its greedy answer, every
source's score (and a reward model's raw score), the verdicts, the length and
truncation. `eval_records` turns that into one JSON row per prompt, and the loop writes
them with `write_eval_records` to ``RUN_DIR/eval/step_<N>.jsonl`` (N zero-padded to 6),
so reports can compare two evaluations prompt by prompt (paired bootstrap intervals per
dimension). A row:

    {"step": 50, "index": 3, "uid": "eval-3", "messages": [{"role": "user", "content": "..."}],
     "reference": "22", "completion": "\\boxed{22}", "length": 9, "truncated": false,
     "reward": 1.0, "passed": true, "scores": {"verifier": 1.0, "rm": 0.7},
     "raw": {"rm": 2.31}, "verdicts": {"verifier": "correct", "rm": "scored"},
     "samples": 4, "samples_passed": 3}

A source that does not score a row (``applies``) has ``null`` there; an excluded row (a
weighted source failed on it, `rlvr.rewards.scorer`) has ``reward`` ``null`` and is left out
of ``eval/reward/mean`` (``eval/reward/excluded_frac`` counts them); ``passed`` is
``null`` when no source decides pass/fail; ``samples`` / ``samples_passed`` (the pass@k
draws and how many passed) are there when pass@k was sampled. `rlvr-eval` runs the same
function over a whole dataset in chunks (``first_index``: a chunk's prompts keep their
global seeds and indices, so the chunking changes no sample).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from math import comb
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from rlvr.config import EvalConfig
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardResult, RewardScorer
from rlvr.rollout.base import Engine, RolloutBatch, SamplingParams
from rlvr.rollout.multiturn import generate_for, tool_metrics

__all__ = ["pass_at_k", "evaluate", "run_evaluation", "Evaluation", "eval_records", "write_eval_records",
           "read_eval_records", "EVAL_DIR"]

EVAL_DIR = "eval"  # RUN_DIR/eval/step_<N>.jsonl: one row per held-out prompt and evaluation
_FILE = re.compile(r"step_(\d+)\.jsonl$")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k draws (without replacement) from n samples with c correct is correct."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


@dataclass
class Evaluation:
    """One held-out evaluation: the aggregate metrics and what each prompt got."""

    metrics: dict[str, Any]  # eval/reward/mean, eval/reward/<label>/mean, eval/pass@1, eval/pass@k, eval/k
    prompts: Sequence[Prompt]
    greedy: RolloutBatch  # the greedy answers, one per prompt
    result: RewardResult  # their scores per source
    samples_passed: Optional[list[int]] = None  # per prompt: how many of the pass@k samples passed
    num_samples: int = 0
    first_index: int = 0  # the first prompt's index in the whole evaluation set

    def records(self, step: int) -> list[dict[str, Any]]:
        rows = eval_records(step, self.prompts, self.greedy, self.result, self.first_index)
        if self.samples_passed is not None:
            for row, passed in zip(rows, self.samples_passed):
                row["samples"], row["samples_passed"] = self.num_samples, passed
        return rows


def evaluate(engine: Engine, scorer: RewardScorer, prompts: Sequence[Prompt], encoded: Sequence[list[int]],
             cfg: EvalConfig, top_p: float, max_new_tokens: int, seed: int) -> dict[str, Any]:
    """The aggregate metrics of `run_evaluation`."""
    return run_evaluation(engine, scorer, prompts, encoded, cfg, top_p, max_new_tokens, seed).metrics


def run_evaluation(engine: Engine, scorer: RewardScorer, prompts: Sequence[Prompt], encoded: Sequence[list[int]],
                   cfg: EvalConfig, top_p: float, max_new_tokens: int, seed: int, first_index: int = 0) -> Evaluation:
    """Greedy outputs: mean reward per source (over the rows it scores), and pass@1 where a source
    decides pass/fail; sampled pass@k (``num_samples`` per prompt, seeded per prompt) where one does.
    ``first_index``: these prompts' place in a larger set evaluated in chunks (their seeds follow it)."""
    indices = range(first_index, first_index + len(encoded))
    samples_passed = None
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        greedy = generate_for(engine, encoded, SamplingParams(n=1, greedy=True, max_new_tokens=max_new_tokens),
                              list(indices), prompts)
        result = scorer.score(prompts, greedy.texts)
        valid = result.valid()  # excluded rows (a weighted source failed on them) are no 0 in the mean: left out
        out: dict[str, Any] = {"eval/reward/mean": result.rewards[valid].mean().item() if bool(valid.any())
                               else float("nan"), "eval/reward/excluded_frac": (~valid).float().mean().item()}
        for label in result.per_source:
            mean = result.source_mean(label)
            if mean is not None:
                out[f"eval/reward/{label}/mean"] = mean
        out.update(tool_metrics(greedy, result.rewards, prefix="eval/"))
        rate = result.pass_rate()
        if rate is not None:
            out["eval/pass@1"] = rate
        if rate is not None and cfg.k > 0 and cfg.num_samples > 0:
            params = SamplingParams(n=cfg.num_samples, temperature=cfg.temperature, top_p=top_p,
                                    max_new_tokens=max_new_tokens)
            sampled = generate_for(engine, encoded, params, [seed * 1_000_003 + i for i in indices], prompts)
            repeated = [p for p in prompts for _ in range(cfg.num_samples)]
            correct = scorer.score(repeated, sampled.texts).passed.view(len(prompts), cfg.num_samples).sum(-1)
            samples_passed = [int(c) for c in correct]
            out["eval/pass@k"] = sum(pass_at_k(cfg.num_samples, c, cfg.k) for c in samples_passed) / len(prompts)
            out["eval/k"] = cfg.k
    return Evaluation(out, prompts, greedy, result, samples_passed, cfg.num_samples if samples_passed else 0,
                      first_index)


def _value(result: RewardResult, table: dict[str, torch.Tensor], label: str, i: int) -> Optional[float]:
    return float(table[label][i]) if bool(result.rows(label)[i]) else None


def eval_records(step: int, prompts: Sequence[Prompt], greedy: RolloutBatch, result: RewardResult,
                 first_index: int = 0) -> list[dict[str, Any]]:
    """One row per held-out prompt (the format in the module docstring)."""
    lengths = greedy.lengths.tolist()
    rows = []
    for i, prompt in enumerate(prompts):
        rows.append({
            "step": step, "index": first_index + i, "uid": prompt.uid, "messages": [dict(m) for m in prompt.messages],
            "reference": prompt.reference, "completion": greedy.texts[i], "length": int(lengths[i]),
            "truncated": bool(greedy.truncated[i]),
            **({"transcript": greedy.transcripts[i], "tool_calls": greedy.tool_records[i]}
               if greedy.transcripts is not None else {}),
            "reward": float(result.rewards[i]) if bool(result.valid()[i]) else None,  # None: excluded
            "passed": None if result.passed is None else bool(result.passed[i]),
            "scores": {k: _value(result, result.per_source, k, i) for k in result.per_source},
            "raw": {k: _value(result, result.raw, k, i) for k in result.raw},
            "verdicts": {k: result.reasons[k][i] for k in result.reasons}})
    return rows


def write_eval_records(run_dir: str | Path, step: int, records: Sequence[dict[str, Any]]) -> Path:
    """RUN_DIR/eval/step_<N>.jsonl, replaced whole (a resumed run that repeats an evaluation rewrites it)."""
    folder = Path(run_dir) / EVAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"step_{step:06d}.jsonl"
    tmp = target.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in records))
    os.replace(tmp, target)
    return target


def read_eval_records(run_dir: str | Path) -> dict[int, list[dict[str, Any]]]:
    """step -> that evaluation's rows, for every RUN_DIR/eval/step_<N>.jsonl (empty when there are none).

    A torn last line (a killed run) is dropped; a malformed line elsewhere is a ValueError naming it."""
    out: dict[int, list[dict[str, Any]]] = {}
    folder = Path(run_dir) / EVAL_DIR
    for path in sorted(folder.glob("step_*.jsonl")) if folder.is_dir() else []:
        match = _FILE.search(path.name)
        if not match:
            continue
        lines, rows = path.read_text().splitlines(), []
        for n, line in enumerate(lines):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if n == len(lines) - 1:
                    break
                raise ValueError(f"{path}:{n + 1}: not a JSON row; delete the file or rerun the evaluation") from None
        out[int(match.group(1))] = rows
    return out
