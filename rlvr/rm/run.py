"""One `rlvr-rm` run: data -> tokens -> reward model -> training loop -> saved model, stats and summary.

Fail fast: the pairs are loaded (drops counted), the model directory and the tokenizer
are checked and every answer is tokenized before any model weights are loaded.

    RUN_DIR/config.yaml, metrics.jsonl, curve.png, summary.json
    RUN_DIR/checkpoints/step_N/   (trainer.save_every; resume=auto continues from the newest;
                                   with LoRA a checkpoint holds the adapter and the trained head)
    RUN_DIR/model/                the final reward model + tokenizer + reward_stats.json: plain
                                   weights (an adapter is merged), what reward.sources[].path loads

Under torchrun (``trainer.backend=deepspeed``) every rank runs this with the same config: rank 0
builds the cached base model first (`main_first`) and decides the checkpoint to resume, each rank
trains on its share of every batch (`rlvr.rm.trainer`), and rank 0 alone writes the run directory
and prints the progress.
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

__all__ = ["run", "token_budget", "load_reward_policy"]


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


def load_reward_policy(cfg: RMConfig, base: Path, tokenizer: Any, checkpoint: Path | None = None):
    """The reward model to train: ``checkpoint`` (a full one, or an adapter back on ``base``) or ``base`` with a
    fresh head; LoRA adapters where ``model.lora.rank > 0`` (the head trains fully beside them), gradient
    checkpointing, ``model.weights_dtype``."""
    from rlvr.models.policy import load_policy
    from rlvr.rm.model import HEAD, build_reward_model

    t, m = cfg.trainer, cfg.model

    def load(path: Path):
        return build_reward_model(path, tokenizer, t.seed, t.freeze_backbone, m.weights_dtype, m.attn_implementation)

    return load_policy(m, base, checkpoint, t.gradient_checkpointing, load=load, modules_to_save=[HEAD])


def _build(cfg: RMConfig, base: Path, checkpoint: Path | None, tokenizer: Any, sets: dict[str, EncodedPairs],
           total_steps: int):
    from rlvr.learner import autocast_dtype, open_backend
    from rlvr.models.lora import is_adapted
    from rlvr.models.policy import policy_line
    from rlvr.models.precision import precision_line
    from rlvr.rm.scorers import FeatureScorer, SequenceScorer
    from rlvr.stage import resolve_device

    t = cfg.trainer
    device = resolve_device(cfg.model.device)
    model = load_reward_policy(cfg, base, tokenizer, checkpoint).to(device)
    plain = model.get_base_model() if is_adapted(model) else model
    print(f"model: {checkpoint or base} as {type(plain).__name__} "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {cfg.model.dtype}, {device}); "
          f"backend: {t.backend}; torch threads {torch.get_num_threads()}", flush=True)
    backend = open_backend(t.backend, model, t, total_steps, cfg.model.dtype, cfg.model.master_dtype)
    scorer_cls = FeatureScorer if t.freeze_backbone else SequenceScorer
    scorer = scorer_cls(backend.module, sets, tokenizer.pad_token_id, device, autocast_dtype(cfg.model.dtype),
                        backend.forward)
    if backend.is_main:
        print(f"{precision_line(cfg.model, t.backend)}; "
              f"{policy_line(model, t.gradient_checkpointing).replace('policy: ', 'reward model: ', 1)}; "
              f"{backend.world_size} rank(s)", flush=True)
    start = time.perf_counter()
    scorer.prepare(t.eval_batch_size)
    if t.freeze_backbone:
        print(f"features: {scorer.distinct} distinct answers through the frozen backbone in "
              f"{time.perf_counter() - start:.1f}s", flush=True)
    return backend, RMTrainer(cfg, backend, scorer, sets, total_steps)


def _resume(checkpoint: Path | None, backend: Any, run_dir: Any) -> int:
    from rlvr.checkpoint import BACKEND_DIR, load_trainer_state, set_rng_state

    if checkpoint is None:
        return 0
    state = load_trainer_state(checkpoint, backend.rank)
    backend.load(checkpoint / BACKEND_DIR)
    set_rng_state(state["rng"])
    run_dir.truncate_metrics(int(state["step"]))
    if backend.is_main:
        print(f"resumed from {checkpoint} at step {state['step']}", flush=True)
    return int(state["step"])


def _loop(cfg: RMConfig, trainer: RMTrainer, backend: Any, tokenizer: Any, run_dir: Any, start: int) -> float:
    """Steps start+1 .. total with logging, evaluation and checkpoints; returns the seconds spent training."""
    from rlvr.checkpoint import save_checkpoint
    from rlvr.rm.report import eval_line, step_line

    t, total, every = cfg.trainer, trainer.total_steps, cfg.logger.console_every
    say = backend.is_main  # rank 0 prints; every rank evaluates its share
    if start == 0:
        row = trainer.evaluate(0)
        run_dir.log(row)
        if say:
            print(eval_line(row), flush=True)
    train_s = 0.0
    for step in range(start + 1, total + 1):
        row = trainer.train_step(step)
        train_s += row["time/step"]
        run_dir.log(row)
        if say and every and (step % every == 0 or step == total):
            print(step_line(row, total), flush=True)
        if step == total or (t.eval_every and step % t.eval_every == 0):
            evaluation = trainer.evaluate(step)
            run_dir.log(evaluation)
            if say:
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


def _save_model(cfg: RMConfig, backend: Any, tokenizer: Any, base: Path, out: Path, stats: dict) -> Path:
    """The final reward model in ``out`` as plain weights (an adapter merged into its base), with
    ``reward_stats.json``; collective (every rank joins the backend's save, rank 0 writes)."""
    from rlvr.distributed import barrier
    from rlvr.models.lora import is_adapter_dir, merge_in_place
    from rlvr.rm.model import build_reward_model, write_reward_stats

    backend.save_pretrained(out, tokenizer)
    if backend.is_main:
        if is_adapter_dir(out):
            m = cfg.model
            merge_in_place(out, build_reward_model(base, tokenizer, cfg.trainer.seed, dtype=m.weights_dtype,
                                                   attn_implementation=m.attn_implementation))
        write_reward_stats(out, stats)
    barrier()
    return out


def _finish(cfg: RMConfig, data: PairSets, sets: dict[str, EncodedPairs], base: Path, tokenizer: Any,
            trainer: RMTrainer, run_dir: Any, start: int, train_s: float) -> dict[str, Any]:
    """Final scores of every training answer -> reward_stats.json beside the saved model; summary.json."""
    from rlvr.rm.metrics import pairwise_accuracy
    from rlvr.rm.report import answer_stats, plot_rm_curve

    chosen, rejected = trainer.score_set(TRAIN)  # collective
    stats = answer_stats(data.train, chosen, rejected)
    model_dir = _save_model(cfg, trainer.backend, tokenizer, base, run_dir.path / "model", stats)
    if not trainer.backend.is_main:
        return {}
    rows = run_dir.read_metrics()
    final = next(r for r in reversed(rows) if r.get(f"eval/{HELDOUT}/accuracy") is not None)
    before = next((r.get(f"eval/{HELDOUT}/accuracy") for r in rows if r.get("step") == 0), None)
    trained = sum(len(trainer.batch_indices(s)) for s in range(start + 1, trainer.total_steps + 1))
    summary = _summary(cfg, data, sets, final, stats, pairwise_accuracy(chosen, rejected), {
        "pairwise_accuracy_before": before, "steps": trainer.total_steps, "resumed_from_step": start,
        "train_seconds": train_s, "train_pairs_per_s": trained / train_s if train_s > 0 else None,
        "model_dir": str(model_dir), "run_dir": str(run_dir.path), "backend": cfg.trainer.backend,
        "world_size": trainer.backend.world_size, "lora_rank": cfg.model.lora.rank})
    plot_rm_curve(run_dir.path, rows)
    return summary


def run(cfg: RMConfig, run_path: Path) -> dict[str, Any]:
    from rlvr.checkpoint import ResumeError, resolve_resume, save_checkpoint
    from rlvr.distributed import decided_by_main, launched_world, main_first
    from rlvr.models import base_model_dir, load_tokenizer
    from rlvr.run_dir import RunDir
    from rlvr.stage import seed_everything

    wall, world = time.perf_counter(), launched_world()
    if cfg.trainer.threads > 0:
        torch.set_num_threads(cfg.trainer.threads)
    seed_everything(cfg.trainer.seed)
    data = load_pair_sets(cfg.data)
    print("data: " + "\n      ".join(data.notes), flush=True)
    total, arithmetic = rm_arithmetic(cfg, len(data.train), world.size)
    checkpoint = decided_by_main(lambda: resolve_resume(cfg.resume, run_path, total, world.size, "trainer.epochs"),
                                 (ResumeError, OSError))
    with main_first():  # several ranks: rank 0 builds the cached base model, the others then read it
        base = base_model_dir(cfg)  # type: ignore[arg-type]  (reads cfg.model and cfg.trainer.seed)
    tokenizer = load_tokenizer(checkpoint or base, cfg.data.chat_template)
    sets = _encode(data, tokenizer, token_budget(cfg, base))
    if world.is_main:
        print(f"run directory: {run_path}\n{arithmetic}", flush=True)
    backend, trainer = _build(cfg, base, checkpoint, tokenizer, sets, total)
    run_dir = RunDir(run_path, cfg.logger, writer=world.is_main)
    try:
        run_dir.open_loggers(asdict(cfg))
        start = _resume(checkpoint, backend, run_dir)
        train_s = _loop(cfg, trainer, backend, tokenizer, run_dir, start)
        if cfg.trainer.save_every:
            save_checkpoint(run_path, total, backend, tokenizer, {}, cfg.trainer.keep_checkpoints)
        summary = _finish(cfg, data, sets, base, tokenizer, trainer, run_dir, start, train_s)
        if world.is_main:
            summary["wall_time_s"] = time.perf_counter() - wall
            run_dir.write_json("summary.json", summary)
    finally:
        run_dir.close()
    if not world.is_main:
        return summary
    before, gap = summary["pairwise_accuracy_before"], summary["length_bias_gap"]
    print(f"done: {total} steps in {summary['wall_time_s']:.0f}s; held-out pairwise accuracy "
          f"{'' if before is None else f'{before:.3f} -> '}{summary['pairwise_accuracy']:.3f}, length-bias gap "
          f"{'n/a' if gap is None else f'{gap:+.3f}'}; model {summary['model_dir']}", flush=True)
    return summary
