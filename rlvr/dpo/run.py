"""One `rlvr-dpo` run: pairs -> starting policy -> reference log-probs -> DPO steps -> evaluation -> summary.

Order matters for failing fast: the pairs are loaded (drops counted) and the rlvr-train
config of ``policy.train_overrides`` is composed and validated (`rlvr.dpo.start`) before
any model is built. Evaluation before and after training: the held-out pairs'
implicit-reward accuracy, the greedy pass rate on rlvr-train's held-out prompts, the greedy
mean of the run's truth source where the composed config names one (``reward.truth``: the
true-preference rate on the built-in task) and, after training, the sampled
sequence-level KL to the starting policy. Run directory: config.yaml, metrics.jsonl,
checkpoints/step_N/ (``trainer.save_every``: weights, or the LoRA adapter, the backend's
state, the data position, the RNG states and the precomputed reference log-probs;
``resume=auto`` continues exactly), model/ (Hugging Face format, an adapter merged),
summary.json (``heldout_pass_before``/``_after``, ``<reward.truth.name>_before``/``_after`` where a truth is
named: ``true_preference_*`` on the built-in task; ``kl``, ``wall_s``).

Under torchrun (``trainer.backend=deepspeed``) every rank runs this with the same config:
each trains on its share of every batch (`rlvr.dpo.trainer`), scores its share of the pairs,
and runs the same greedy evaluation in step with the others (identical results); rank 0
alone writes the run directory and prints the progress.
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import torch

from rlvr.config import TrainConfig
from rlvr.dpo.config import DPOConfig, dpo_arithmetic
from rlvr.dpo.start import policy_config, starting_policy

__all__ = ["run", "progress_line"]

MODEL_DIR = "model"


def _load_pairs(cfg: DPOConfig):
    """(training pairs, held-out pairs, counts): loaded first, so bad data fails before any model loads."""
    from rlvr.rm.data import HELDOUT, load_pair_sets

    sets = load_pair_sets(cfg.data)
    for note in sets.notes:
        print(f"data: {note}", flush=True)
    return sets.train.pairs, sets.evals[HELDOUT].pairs, {"dropped": dict(sets.train.dropped)}


def _fit_pairs(cfg: DPOConfig, tokenizer: Any, train: list, heldout: list, counts: dict):
    """The pairs within ``data.max_tokens`` (the rest dropped and counted)."""
    from rlvr.dpo.pairs import fit_pairs

    train, dropped = fit_pairs(tokenizer, train, cfg.data.max_tokens)
    heldout, dropped_eval = fit_pairs(tokenizer, heldout, cfg.data.max_tokens)
    if dropped or dropped_eval:
        print(f"data: {dropped} training and {dropped_eval} held-out pairs over data.max_tokens="
              f"{cfg.data.max_tokens} dropped", flush=True)
    if not train:
        from rlvr.data.chat import DataError

        raise DataError(f"every training pair is longer than data.max_tokens={cfg.data.max_tokens}; raise it")
    counts.update({"pairs_train": len(train), "pairs_heldout": len(heldout),
                   "dropped_over_max_tokens": dropped + dropped_eval})
    return train, heldout


class _Evaluation:
    """Held-out pairs (implicit-reward metrics) and prompts (greedy pass rate, each source's mean: the row's
    verifier and the run's truth), logged; rank 0 prints."""

    def __init__(self, trainer: Any, heldout: list, prompts: list, tokenizer: Any, max_new_tokens: int,
                 reward: Any):
        from rlvr.rewards import RewardScorer

        self.trainer, self.heldout, self.prompts, self.tokenizer = trainer, heldout, prompts, tokenizer
        self.max_new_tokens, self.scorer = max_new_tokens, RewardScorer(reward)

    def __call__(self, step: int) -> dict[str, Any]:
        from collections import Counter

        from rlvr.dpo.policy_eval import greedy_scores

        row: dict[str, Any] = {"step": step, **self.trainer.evaluate(self.heldout, "eval/heldout")}
        result, _ = greedy_scores(self.trainer.backend.module, self.tokenizer, self.prompts, self.max_new_tokens,
                                  self.scorer)
        passed = result.passed if result.passed is not None else torch.zeros(len(self.prompts), dtype=torch.bool)
        rate = passed.float().mean().item()
        row["eval/pass@1"] = rate
        row.update({f"eval/verdict/{k}": float(v) for k, v in sorted(Counter(result.gate_reasons()).items())})
        row.update({f"eval/reward/{label}/mean": mean for label in result.per_source
                    if (mean := result.source_mean(label)) is not None})
        acc = row.get("eval/heldout/reward_accuracy")
        if self.trainer.backend.is_main:
            print(f"eval  step {step:>5} | held-out greedy pass@1 {rate:.3f}"
                  + (f" | held-out implicit-reward accuracy {acc:.3f}" if acc is not None else ""), flush=True)
        return row

    def close(self) -> None:
        self.scorer.close()


def _build(cfg: DPOConfig, train_cfg: TrainConfig, start_dir: Path, checkpoint: Optional[Path], tokenizer: Any,
           pairs: list, heldout: list, total: int):
    """(trainer, the reference policy for the KL, or None to place it at the end), reference log-probs ready."""
    from rlvr.dpo.reference import REFERENCES
    from rlvr.dpo.trainer import DPOTrainer
    from rlvr.learner import autocast_dtype, open_backend
    from rlvr.models.lora import is_adapted
    from rlvr.models.policy import load_policy, load_reference, policy_line
    from rlvr.models.precision import precision_line
    from rlvr.stage import resolve_device

    t, m = cfg.trainer, train_cfg.model
    device, dtype = resolve_device(m.device), autocast_dtype(m.dtype)
    policy = load_policy(m, start_dir, checkpoint, t.gradient_checkpointing).to(device)
    backend = open_backend(t.backend, policy, t, total, m.dtype, m.master_dtype)
    kind = REFERENCES.lookup(t.reference)
    if kind.needs_copy:  # a frozen copy placed like the policy, or the policy with its adapter disabled
        ref = load_reference(m, start_dir, backend.module, backend.reference)
        reference = kind(ref, tokenizer, t.micro_batch_size, dtype, device)
    else:  # the starting policy itself, before its first update (on resume: from the checkpoint)
        ref = None
        reference = kind(backend.forward, tokenizer, t.micro_batch_size, dtype, device, module=backend.module)
        if checkpoint is None:
            reference.prepare(pairs + heldout)
    reference.release()
    if backend.is_main:
        what = ("precomputed by the starting policy" if not kind.needs_copy else "the policy with its adapter "
                "disabled (no copy)" if is_adapted(backend.module) else "a frozen copy of the starting policy")
        print(f"{precision_line(m, t.backend)}; {policy_line(backend.module, t.gradient_checkpointing)}; reference "
              f"log-probs: {what}; backend: {t.backend} ({backend.world_size} rank(s))", flush=True)
    trainer = DPOTrainer(backend, tokenizer, reference, pairs, cfg.loss, t.batch_size, t.micro_batch_size, t.seed,
                         dtype)
    return trainer, ref


def _resume(checkpoint: Optional[Path], trainer: Any, pairs: list, run_dir: Any) -> int:
    """The step to continue after: the checkpoint's, with the backend, data position, reference log-probs
    and RNG states restored (0 for a fresh run)."""
    from rlvr.checkpoint import BACKEND_DIR, load_trainer_state, set_rng_state

    if checkpoint is None:
        return 0
    backend = trainer.backend
    state = load_trainer_state(checkpoint, backend.rank)
    backend.load(checkpoint / BACKEND_DIR)
    trainer.load_state_dict(state["stage"])
    trainer.reference.load_state_dict(pairs, state["reference"])
    set_rng_state(state["rng"])
    run_dir.truncate_metrics(int(state["step"]))
    if backend.is_main:
        print(f"resumed from {checkpoint} at step {state['step']}", flush=True)
    return int(state["step"])


def _save_model(train_cfg: TrainConfig, backend: Any, tokenizer: Any, start_dir: Path, out: Path) -> None:
    """The trained policy in ``out`` as plain weights (an adapter merged into its start); collective."""
    from rlvr.distributed import barrier
    from rlvr.models import load_model
    from rlvr.models.lora import is_adapter_dir, merge_in_place

    backend.save_pretrained(out, tokenizer)
    if backend.is_main and is_adapter_dir(out):
        m = train_cfg.model
        merge_in_place(out, load_model(start_dir, m.weights_dtype, m.attn_implementation))
    barrier()


def _train(cfg: DPOConfig, trainer: Any, evaluate: Any, run_dir: Any, tokenizer: Any, pairs: list, start: int,
           total: int) -> None:
    """Steps start+1 .. total with logging, periodic evaluation and checkpoints."""
    from rlvr.checkpoint import save_checkpoint

    t = cfg.trainer
    for step in range(start + 1, total + 1):
        metrics = {"step": step, **trainer.step()}
        run_dir.log(metrics)
        if trainer.backend.is_main and cfg.logger.console_every and step % cfg.logger.console_every == 0:
            print(progress_line(metrics, total), flush=True)
        if t.eval_every and step % t.eval_every == 0 and step != total:
            run_dir.log(evaluate(step))
        if t.save_every and (step % t.save_every == 0 or step == total):
            state = {"stage": trainer.state_dict(), "reference": trainer.reference.state_dict(pairs)}
            save_checkpoint(run_dir.path, step, trainer.backend, tokenizer, state, t.keep_checkpoints)


def run(cfg: DPOConfig, run_path: Path) -> dict[str, Any]:
    from rlvr.checkpoint import ResumeError, resolve_resume
    from rlvr.distributed import decided_by_main, launched_world
    from rlvr.dpo.policy_eval import sampled_kl
    from rlvr.models.policy import load_reference
    from rlvr.run_dir import RunDir
    from rlvr.stage import seed_everything

    started, t, world = time.perf_counter(), cfg.trainer, launched_world()
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    train_cfg = policy_config(cfg)
    seed_everything(t.seed)
    train_pairs, heldout, counts = _load_pairs(cfg)
    start_dir, tokenizer, prompts = starting_policy(cfg, train_cfg)
    train_pairs, heldout = _fit_pairs(cfg, tokenizer, train_pairs, heldout, counts)
    total, arithmetic = dpo_arithmetic(cfg, len(train_pairs), world.size)
    checkpoint = decided_by_main(lambda: resolve_resume(cfg.resume, run_path, total, world.size, "trainer.max_steps or trainer.epochs"),
                                 (ResumeError, OSError))
    if world.is_main:
        print(f"run directory: {run_path}\n{arithmetic}\npolicy: {start_dir}", flush=True)
    trainer, reference = _build(cfg, train_cfg, start_dir, checkpoint, tokenizer, train_pairs, heldout, total)
    run_dir, max_new = RunDir(run_path, cfg.logger, writer=world.is_main), train_cfg.rollout.max_new_tokens
    evaluate = _Evaluation(trainer, heldout, prompts, tokenizer, max_new, train_cfg.reward)
    try:
        run_dir.open_loggers(asdict(cfg))
        start = _resume(checkpoint, trainer, train_pairs + heldout, run_dir)
        if start == 0:
            run_dir.log(evaluate(0))
        _train(cfg, trainer, evaluate, run_dir, tokenizer, train_pairs + heldout, start, total)
        after = evaluate(total)
    finally:
        evaluate.close()
    backend = trainer.backend
    if reference is None:  # precomputed: the starting policy is placed only now, for the KL
        reference = load_reference(train_cfg.model, start_dir, backend.module, backend.reference)
    kl = sampled_kl(backend.module, reference, tokenizer, prompts, t.kl_samples, max_new, seed=t.seed,
                    dtype=trainer.dtype)
    run_dir.log({**after, **{f"eval/{k}": v for k, v in kl.items()}})
    _save_model(train_cfg, backend, tokenizer, start_dir, run_path / MODEL_DIR)
    if not world.is_main:
        run_dir.close()
        return {}
    before = next(r for r in run_dir.read_metrics() if r.get("step") == 0 and "eval/pass@1" in r)
    summary = _summary(train_cfg, before, after, kl, counts, total, time.perf_counter() - started, run_path)
    summary.update({"resumed_from_step": start, "backend": t.backend, "world_size": world.size,
                    "lora_rank": train_cfg.model.lora.rank})
    run_dir.write_json("summary.json", summary)
    run_dir.close()
    truth = train_cfg.reward.truth
    key = f"{truth.name}" if f"{truth.name}_after" in summary else "heldout_pass"
    name = key.replace("_", " ") if key != "heldout_pass" else "held-out pass@1"
    print(f"done: {total} steps; {name} {summary[key + '_before']:.3f} -> {summary[key + '_after']:.3f}; "
          f"KL to the start {kl.get('kl', float('nan')):.3f} nats/answer; {summary['wall_s']:.0f}s; "
          f"model {run_path / MODEL_DIR}", flush=True)
    return summary


def _summary(train_cfg: TrainConfig, before: dict, after: dict, kl: dict, counts: dict, total: int,
             wall: float, run_path: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"steps": total, **counts}
    truth = train_cfg.reward.truth  # the run's truth source (reward.truth): its greedy held-out mean
    held = f"eval/reward/{truth.source}/mean"
    if truth.source is not None and held in before and held in after:
        summary.update({f"{truth.name}_before": before[held], f"{truth.name}_after": after[held],
                        "truth": {"source": truth.source, "name": truth.name}})
    summary.update({"heldout_pass_before": before["eval/pass@1"], "heldout_pass_after": after["eval/pass@1"],
                    "heldout_reward_accuracy_before": before.get("eval/heldout/reward_accuracy"),
                    "heldout_reward_accuracy_after": after.get("eval/heldout/reward_accuracy"),
                    "heldout_reward_margin_after": after.get("eval/heldout/reward_margin"),
                    "kl": kl.get("kl"), "kl_stderr": kl.get("kl_stderr"),
                    "kl_estimator": "sequence-level k1 on temperature-1 samples of the trained policy at the held-out "
                                    "prompts, against the starting (reference) policy",
                    "wall_s": wall, "model_dir": str(run_path / MODEL_DIR), "run_dir": str(run_path)})
    return summary


def progress_line(m: dict[str, Any], total: int) -> str:
    return (f"dpo step {m['step']:>5}/{total} | loss {m['dpo/loss']:.4f} | acc {m['dpo/reward_accuracy']:.3f} | "
            f"margin {m['dpo/reward_margin']:.3f} | chosen {m['dpo/reward_chosen']:+.3f} rejected "
            f"{m['dpo/reward_rejected']:+.3f} | gnorm {m['dpo/grad_norm']:.3f} | lr {m['dpo/lr']:.2e}")
