"""One `rlvr-rm` run: data -> tokens -> reward model -> training loop -> saved model, stats and summary.

Fail fast: the pairs are loaded (drops counted), the model directory and the tokenizer
are checked and every answer is tokenized before any model weights are loaded.

    RUN_DIR/config.yaml, metrics.jsonl, curve.png, summary.json
    RUN_DIR/checkpoints/step_N/   (trainer.save_every; resume=auto continues from the newest)
    RUN_DIR/model/                the final reward model + tokenizer + reward_stats.json
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rlvr.rm.config import RMConfig, rm_arithmetic
from rlvr.rm.data import HELDOUT, PairSets, load_pair_sets
from rlvr.rm.encode import EncodedPairs, encode_pairs
from rlvr.rm.trainer import TRAIN, RMTrainer

__all__ = ["run", "token_budget"]


def token_budget(cfg: RMConfig, model_dir: Path) -> int:
    """``data.max_tokens``, lowered to the backbone's ``max_position_embeddings`` when that is smaller."""
    from transformers import AutoConfig

    limit = getattr(AutoConfig.from_pretrained(str(model_dir)), "max_position_embeddings", None)
    if limit and limit < cfg.data.max_tokens:
        print(f"data.max_tokens={cfg.data.max_tokens} > the backbone's {limit} positions: using {limit}", flush=True)
        return int(limit)
    return cfg.data.max_tokens


def _encode(data: PairSets, tokenizer: Any, max_tokens: int) -> dict[str, EncodedPairs]:
    sets = {TRAIN: encode_pairs(tokenizer, data.train, max_tokens)}
    sets.update({name: encode_pairs(tokenizer, pairs, max_tokens) for name, pairs in data.evals.items()})
    for name, enc in sets.items():
        cut = f", {enc.truncated} answers cut to {max_tokens} tokens (kept their end)" if enc.truncated else ""
        print(f"tokens: {name} {len(enc)} pairs, longest input {enc.longest} tokens{cut}", flush=True)
    return sets


def _build(cfg: RMConfig, model_dir: Path, tokenizer: Any, sets: dict[str, EncodedPairs], total_steps: int):
    from rlvr.learner import BACKENDS, autocast_dtype
    from rlvr.rm.model import build_reward_model
    from rlvr.rm.scorers import FeatureScorer, SequenceScorer
    from rlvr.stage import resolve_device

    t = cfg.trainer
    device = resolve_device(cfg.model.device)
    model = build_reward_model(model_dir, tokenizer, t.seed, t.freeze_backbone).to(device)
    backend = BACKENDS.lookup(t.backend)(model, t.optim, total_steps)
    scorer_cls = FeatureScorer if t.freeze_backbone else SequenceScorer
    scorer = scorer_cls(model, sets, tokenizer.pad_token_id, device, autocast_dtype(cfg.model.dtype))
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"model: {model_dir} as {type(model).__name__} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M "
          f"parameters, {trained:,} trained, {cfg.model.dtype}, {device}); torch threads {torch.get_num_threads()}",
          flush=True)
    start = time.perf_counter()
    scorer.prepare(t.eval_batch_size)
    if t.freeze_backbone:
        print(f"features: {scorer.distinct} distinct answers through the frozen backbone in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    return model, backend, RMTrainer(cfg, backend, scorer, sets, total_steps)


def _resume(checkpoint: Path | None, backend: Any, run_dir: Any) -> int:
    from rlvr.checkpoint import BACKEND_DIR, load_trainer_state, set_rng_state

    if checkpoint is None:
        return 0
    state = load_trainer_state(checkpoint)
    backend.load(checkpoint / BACKEND_DIR)
    set_rng_state(state["rng"])
    run_dir.truncate_metrics(int(state["step"]))
    print(f"resumed from {checkpoint} at step {state['step']}", flush=True)
    return int(state["step"])


def _loop(cfg: RMConfig, trainer: RMTrainer, backend: Any, tokenizer: Any, run_dir: Any, start: int) -> float:
    """Steps start+1 .. total with logging, evaluation and checkpoints; returns the seconds spent training."""
    from rlvr.checkpoint import save_checkpoint
    from rlvr.rm.report import eval_line, step_line

    t, total, every = cfg.trainer, trainer.total_steps, cfg.logger.console_every
    if start == 0:
        row = trainer.evaluate(0)
        run_dir.log(row)
        print(eval_line(row), flush=True)
    train_s = 0.0
    for step in range(start + 1, total + 1):
        row = trainer.train_step(step)
        train_s += row["time/step"]
        run_dir.log(row)
        if every and (step % every == 0 or step == total):
            print(step_line(row, total), flush=True)
        if step == total or (t.eval_every and step % t.eval_every == 0):
            evaluation = trainer.evaluate(step)
            run_dir.log(evaluation)
            print(eval_line(evaluation), flush=True)
        if t.save_every and step % t.save_every == 0 and step < total:
            save_checkpoint(run_dir.path, step, backend, tokenizer, {}, t.keep_checkpoints)
    return train_s


def _summary(cfg: RMConfig, data: PairSets, sets: dict[str, EncodedPairs], final: dict[str, Any], stats: dict,
             train_accuracy: float, extra: dict[str, Any]) -> dict[str, Any]:
    evals = {name: {k.split("/", 2)[2]: v for k, v in final.items() if k.startswith(f"eval/{name}/")}
             for name in data.evals}
    return {"pairwise_accuracy": evals[HELDOUT]["accuracy"], "length_bias_gap": evals[HELDOUT]["length_bias_gap"],
            "train_accuracy": train_accuracy, "eval": evals,
            "pairs": {TRAIN: len(data.train), **{n: len(p) for n, p in data.evals.items()}},
            "rows_read": data.train.rows_read, "dropped": dict(data.train.dropped), "shapes": dict(data.train.shapes),
            "truncated_answers": {n: e.truncated for n, e in sets.items()},
            "eval_prompts_in_train": data.eval_prompts_in_train, "reward_stats": stats,
            "freeze_backbone": cfg.trainer.freeze_backbone, **extra}


def _finish(cfg: RMConfig, data: PairSets, sets: dict[str, EncodedPairs], model: Any, tokenizer: Any,
            trainer: RMTrainer, run_dir: Any, start: int, train_s: float) -> dict[str, Any]:
    """Final scores of every training answer -> reward_stats.json beside the saved model; summary.json."""
    from rlvr.rm.metrics import pairwise_accuracy
    from rlvr.rm.model import save_reward_model
    from rlvr.rm.report import answer_stats, plot_rm_curve

    rows = run_dir.read_metrics()
    final = next(r for r in reversed(rows) if r.get(f"eval/{HELDOUT}/accuracy") is not None)
    before = next((r.get(f"eval/{HELDOUT}/accuracy") for r in rows if r.get("step") == 0), None)
    chosen, rejected = trainer.score_set(TRAIN)
    stats = answer_stats(data.train, chosen, rejected)
    model_dir = save_reward_model(model, tokenizer, run_dir.path / "model", stats)
    trained = sum(len(trainer.batch_indices(s)) for s in range(start + 1, trainer.total_steps + 1))
    summary = _summary(cfg, data, sets, final, stats, pairwise_accuracy(chosen, rejected), {
        "pairwise_accuracy_before": before, "steps": trainer.total_steps, "resumed_from_step": start,
        "train_seconds": train_s, "train_pairs_per_s": trained / train_s if train_s > 0 else None,
        "model_dir": str(model_dir), "run_dir": str(run_dir.path)})
    plot_rm_curve(run_dir.path, rows)
    return summary


def run(cfg: RMConfig, run_path: Path) -> dict[str, Any]:
    from rlvr.checkpoint import resolve_resume, save_checkpoint
    from rlvr.models import base_model_dir, load_tokenizer
    from rlvr.run_dir import RunDir
    from rlvr.stage import seed_everything

    wall = time.perf_counter()
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    seed_everything(cfg.trainer.seed)
    data = load_pair_sets(cfg.data)
    print("data: " + "\n      ".join(data.notes), flush=True)
    total, arithmetic = rm_arithmetic(cfg, len(data.train))
    checkpoint = resolve_resume(cfg.resume, run_path, total)
    base = base_model_dir(cfg)  # type: ignore[arg-type]  (reads cfg.model and cfg.trainer.seed)
    tokenizer = load_tokenizer(checkpoint or base, cfg.data.chat_template)
    sets = _encode(data, tokenizer, token_budget(cfg, base))
    print(f"run directory: {run_path}\n{arithmetic}", flush=True)
    model, backend, trainer = _build(cfg, checkpoint or base, tokenizer, sets, total)
    run_dir = RunDir(run_path, cfg.logger)
    try:
        run_dir.open_loggers(asdict(cfg))
        start = _resume(checkpoint, backend, run_dir)
        train_s = _loop(cfg, trainer, backend, tokenizer, run_dir, start)
        if cfg.trainer.save_every:
            save_checkpoint(run_path, total, backend, tokenizer, {}, cfg.trainer.keep_checkpoints)
        summary = _finish(cfg, data, sets, model, tokenizer, trainer, run_dir, start, train_s)
        summary["wall_time_s"] = time.perf_counter() - wall
        run_dir.write_json("summary.json", summary)
    finally:
        run_dir.close()
    before, gap = summary["pairwise_accuracy_before"], summary["length_bias_gap"]
    print(f"done: {total} steps in {summary['wall_time_s']:.0f}s; held-out pairwise accuracy "
          f"{'' if before is None else f'{before:.3f} -> '}{summary['pairwise_accuracy']:.3f}, length-bias gap "
          f"{'n/a' if gap is None else f'{gap:+.3f}'}; model {summary['model_dir']}", flush=True)
    return summary
