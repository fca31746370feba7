"""One `rlvr-dpo` run: pairs -> starting policy -> reference log-probs -> DPO steps -> evaluation -> summary.

Order matters for failing fast: the pairs are loaded (drops counted) and the rlvr-train
config of ``policy.train_overrides`` is composed and validated before any model is
built. Evaluation before and after training: the held-out pairs' implicit-reward
accuracy, the greedy pass rate on rlvr-train's held-out prompts (the true-preference
rate on the built-in task) and, after training, the sampled sequence-level KL to the
starting policy. Run directory: config.yaml, metrics.jsonl, model/ (Hugging Face
format), summary.json (``true_preference_before``/``_after`` on the built-in task,
``kl``, ``wall_s``).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from rlvr.config import ConfigError, TrainConfig
from rlvr.dpo.config import DPOConfig, dpo_arithmetic

__all__ = ["run", "compose_train_config", "chat_template_choice"]

MODEL_DIR = "model"


def compose_train_config(overrides: list[str]) -> TrainConfig:
    """rlvr-train's config with ``overrides`` (inside a Hydra app or outside one)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from rlvr.config import CONF_DIR, RewardSource, register_schemas
    from rlvr.config_checks import validate

    register_schemas()
    try:
        if GlobalHydra.instance().is_initialized():
            composed = compose(config_name="config", overrides=list(overrides))
        else:
            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
                composed = compose(config_name="config", overrides=list(overrides))
        train_cfg: TrainConfig = OmegaConf.to_object(composed)  # type: ignore[assignment]
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"policy.train_overrides={list(overrides)}: {str(exc).splitlines()[0]}") from None
    # DPO reads the data, model, rollout and warm-up blocks; the reward sources are rlvr-train's (a preset's
    # reward model need not exist for DPO): each row's own verifier scores DPO's evaluation instead.
    train_cfg.reward.sources, train_cfg.reward.mix = [RewardSource()], "sum"
    try:
        validate(train_cfg)
    except ConfigError as exc:
        raise ConfigError(f"policy.train_overrides: {exc}") from None
    return train_cfg


def chat_template_choice(dpo: str, train: str) -> str:
    """The one ``data.chat_template`` of a DPO run: DPO's own, or the one ``policy.train_overrides`` set (the
    warm-up's and the held-out prompts'); both set (not auto) and different is a `ConfigError`."""
    if dpo != "auto" and train != "auto" and dpo != train:
        raise ConfigError(f"data.chat_template={dpo} but policy.train_overrides set data.chat_template={train}: the "
                          f"pairs and the policy's prompts must be rendered alike; set one of them")
    return dpo if dpo != "auto" else train


def _starting_policy(cfg: DPOConfig, train_cfg: TrainConfig):
    """(policy directory, tokenizer, held-out prompts): ``policy.path``, or rlvr-train's cached warm-up."""
    from rlvr.stage import load_data

    policy_dir = Path(cfg.policy.path).expanduser() if cfg.policy.path else None
    if policy_dir is not None and not (policy_dir / "config.json").is_file():
        from rlvr.errors import ModelError

        raise ModelError(f"policy.path={cfg.policy.path}: no config.json there; point it at a Hugging Face policy "
                         f"directory (e.g. an rlvr-sft checkpoint), or leave it null to start from the warm-up")
    base, tokenizer, train_set, eval_set = load_data(train_cfg, policy_dir=policy_dir)
    if policy_dir is None and train_cfg.model.sft.steps > 0:
        from rlvr.sft import warm_up

        policy_dir = warm_up(train_cfg, base, train_set, tokenizer)
    return policy_dir or base, tokenizer, [eval_set[i] for i in range(len(eval_set))]


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
    """Held-out pairs (implicit-reward metrics) and prompts (greedy pass rate), logged and printed."""

    def __init__(self, trainer: Any, heldout: list, prompts: list, tokenizer: Any, max_new_tokens: int, workers: int):
        from rlvr.dpo.policy_eval import row_verifier_scorer

        self.trainer, self.heldout, self.prompts, self.tokenizer = trainer, heldout, prompts, tokenizer
        self.max_new_tokens, self.scorer = max_new_tokens, row_verifier_scorer(workers)

    def __call__(self, step: int) -> dict[str, Any]:
        from rlvr.dpo.policy_eval import greedy_pass_rate

        row: dict[str, Any] = {"step": step, **self.trainer.evaluate(self.heldout, "eval/heldout")}
        rate, reasons, _ = greedy_pass_rate(self.trainer.backend.module, self.tokenizer, self.prompts,
                                            self.max_new_tokens, self.scorer)
        row["eval/pass@1"] = rate
        row.update({f"eval/verdict/{k}": float(v) for k, v in sorted(reasons.items())})
        acc = row.get("eval/heldout/reward_accuracy")
        print(f"eval  step {step:>5} | held-out greedy pass@1 {rate:.3f}"
              + (f" | held-out implicit-reward accuracy {acc:.3f}" if acc is not None else ""), flush=True)
        return row

    def close(self) -> None:
        self.scorer.close()


def _build(cfg: DPOConfig, start_dir: Path, tokenizer: Any, train_cfg: TrainConfig, pairs: list, heldout: list,
           total: int):
    """(trainer, the starting policy for the KL, or None to load it again) with reference log-probs ready."""
    from rlvr.dpo.reference import REFERENCES
    from rlvr.dpo.trainer import DPOTrainer
    from rlvr.learner import autocast_dtype
    from rlvr.learner.torch_backend import TorchBackend
    from rlvr.models import load_model
    from rlvr.stage import resolve_device

    t = cfg.trainer
    device, dtype = resolve_device(train_cfg.model.device), autocast_dtype(train_cfg.model.dtype)
    backend = TorchBackend(load_model(start_dir).to(device), t.optim, total)
    kind = REFERENCES.lookup(t.reference)
    ref_model = load_model(start_dir).to(device).requires_grad_(False) if kind.needs_copy else backend.module
    reference = kind(ref_model, tokenizer, t.micro_batch_size, dtype, device)
    reference.prepare(pairs + heldout)
    reference.release()
    trainer = DPOTrainer(backend, tokenizer, reference, pairs, cfg.loss, t.batch_size, t.micro_batch_size, t.seed,
                         dtype)
    return trainer, (ref_model if kind.needs_copy else None)


def run(cfg: DPOConfig, run_path: Path) -> dict[str, Any]:
    from rlvr.dpo.policy_eval import sampled_kl
    from rlvr.models import load_model
    from rlvr.run_dir import RunDir
    from rlvr.stage import seed_everything

    started, t = time.perf_counter(), cfg.trainer
    if t.threads > 0:
        torch.set_num_threads(t.threads)
    train_cfg = compose_train_config(cfg.policy.train_overrides)
    train_cfg.data.chat_template = chat_template_choice(cfg.data.chat_template, train_cfg.data.chat_template)
    seed_everything(t.seed)
    train_pairs, heldout, counts = _load_pairs(cfg)
    start_dir, tokenizer, prompts = _starting_policy(cfg, train_cfg)
    train_pairs, heldout = _fit_pairs(cfg, tokenizer, train_pairs, heldout, counts)
    total, arithmetic = dpo_arithmetic(cfg, len(train_pairs))
    print(f"run directory: {run_path}\n{arithmetic}\npolicy: {start_dir}", flush=True)
    trainer, start_model = _build(cfg, start_dir, tokenizer, train_cfg, train_pairs, heldout, total)
    run_dir, max_new = RunDir(run_path, cfg.logger), train_cfg.rollout.max_new_tokens
    evaluate = _Evaluation(trainer, heldout, prompts, tokenizer, max_new, train_cfg.reward.workers)
    try:
        before = evaluate(0)
        run_dir.log(before)
        for step in range(1, total + 1):
            metrics = {"step": step, **trainer.step()}
            run_dir.log(metrics)
            if cfg.logger.console_every and step % cfg.logger.console_every == 0:
                print(progress_line(metrics, total), flush=True)
            if t.eval_every and step % t.eval_every == 0 and step != total:
                run_dir.log(evaluate(step))
        after = evaluate(total)
    finally:
        evaluate.close()
    policy = trainer.backend.module
    start_model = start_model if start_model is not None else load_model(start_dir).to(trainer.backend.device)
    kl = sampled_kl(policy, start_model, tokenizer, prompts, t.kl_samples, max_new, seed=t.seed, dtype=trainer.dtype)
    run_dir.log({**after, **{f"eval/{k}": v for k, v in kl.items()}})
    trainer.backend.save_pretrained(run_path / MODEL_DIR, tokenizer)
    summary = _summary(train_cfg, before, after, kl, counts, total, time.perf_counter() - started, run_path)
    run_dir.write_json("summary.json", summary)
    run_dir.close()
    name = "true preference" if train_cfg.data.source == "preference" else "held-out pass@1"
    print(f"done: {total} steps; {name} {before['eval/pass@1']:.3f} -> {after['eval/pass@1']:.3f}; "
          f"KL to the start {kl.get('kl', float('nan')):.3f} nats/answer; {summary['wall_s']:.0f}s; "
          f"model {run_path / MODEL_DIR}", flush=True)
    return summary


def _summary(train_cfg: TrainConfig, before: dict, after: dict, kl: dict, counts: dict, total: int,
             wall: float, run_path: Path) -> dict[str, Any]:
    summary: dict[str, Any] = {"steps": total, **counts}
    key = "true_preference" if train_cfg.data.source == "preference" else "heldout_pass"
    summary.update({f"{key}_before": before["eval/pass@1"], f"{key}_after": after["eval/pass@1"],
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
