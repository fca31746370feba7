"""The SFT stage's run (`rlvr-sft [hydra overrides]`, entry: `rlvr.sft.train`): supervised fine-tuning.

Same config groups and conventions as `rlvr-train` (model, data, trainer, reward,
logger; run directory ``runs/<run_name>`` with config.yaml, metrics.jsonl,
checkpoints, resume and summary.json). The stage is described by ``model.sft``
(steps, prompts per step, lr with a cosine decay to 10%, the probe that can stop it
early); micro-batches and checkpoints follow ``trainer``. Any dataset with a
``solution`` column or chat ``messages`` ending in the assistant's answer works:

    rlvr-sft model=local model.path=/models/base data=jsonl data.path=sft.jsonl model.sft.steps=500

`warm_up` is the same stage run for `rlvr-train` before RL (the embedded default's
warm-up), cached by everything that determines its result.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from rlvr.config import ConfigError, OptimConfig, RewardConfig, RewardSource, TrainConfig

__all__ = ["run", "warm_up", "sft_optim"]


def sft_optim(cfg: TrainConfig) -> OptimConfig:
    s, o = cfg.model.sft, cfg.trainer.optim
    return OptimConfig(lr=s.lr, weight_decay=o.weight_decay, betas=o.betas, warmup_steps=0, schedule="cosine",
                       min_lr_ratio=0.1, max_grad_norm=o.max_grad_norm)


def _probe_scorer(cfg: TrainConfig):
    from rlvr.rewards import RewardScorer

    if cfg.model.sft.stop_at_accuracy <= 0 and cfg.model.sft.probe_size <= 0:
        return None
    return RewardScorer(RewardConfig(sources=[RewardSource()], workers=cfg.reward.workers, timeout=cfg.reward.timeout))


def _stage(cfg: TrainConfig, model, train_set, tokenizer, micro: int, scorer):
    from rlvr.learner.torch_backend import TorchBackend
    from rlvr.sft.supervised import SupervisedStage

    backend = TorchBackend(model, sft_optim(cfg), cfg.model.sft.steps, master_dtype=cfg.model.master_dtype)
    return SupervisedStage(backend, tokenizer, train_set, cfg.model.sft, micro, cfg.trainer.seed, scorer,
                           cfg.rollout.max_new_tokens, cfg.rollout.tools)


def warm_up(cfg: TrainConfig, base: Path, train_set, tokenizer) -> Path:
    """The model after the ``model.sft`` stage on ``train_set``, built once into the cache."""
    from rlvr.models import cache_key, cached

    data = OmegaConf.to_container(OmegaConf.structured(cfg.data))
    for key in ("format", "chat_template"):  # added after caches existed: at their default they stay out of the key
        if data.get(key) == "auto":
            del data[key]
    if data.get("chat_template") not in (None, "none"):  # a template file: its text decides, not its path alone
        data["chat_template"] = Path(os.path.expanduser(data["chat_template"])).read_text()
    payload = {"base": str(base.resolve()), "sft": OmegaConf.to_container(OmegaConf.structured(cfg.model.sft)),
               "data": data, "seed": cfg.trainer.seed,
               "max_new_tokens": cfg.rollout.max_new_tokens, "optim": str(sft_optim(cfg))}
    version = getattr(train_set, "trace_version", None)  # a built-in source's own targets: their code's version
    if version is not None:  # (absent: existing caches stay valid)
        payload["traces"] = version
    if cfg.rollout.tools.enabled:  # tool traces' layout and the probe's tools (absent: existing caches stay valid)
        payload["tools"] = OmegaConf.to_container(OmegaConf.structured(cfg.rollout.tools))

    def build(out: Path) -> None:
        s = cfg.model.sft
        print(f"[sft] supervised warm-up: up to {s.steps} steps x {s.batch_size} prompts "
              f"(cached in {out.parent})", flush=True)
        scorer = _probe_scorer(cfg)
        try:
            from rlvr.models import load_model

            # the cached warm-up of rlvr-train: full fine-tuning in fp32 (its output is the RL stage's start)
            stage = _stage(cfg, load_model(base), train_set, tokenizer, s.batch_size, scorer)
            losses: list[float] = []

            def log_loss(step: int, metrics: dict[str, Any]) -> None:
                losses.append(metrics["sft/loss"])
                if step % 100 == 0:
                    print(f"[sft] step {step}/{s.steps} loss {sum(losses[-100:]) / len(losses[-100:]):.4f}", flush=True)

            stage.run(s.steps, log=lambda m: print(m, flush=True), on_step=log_loss)
            stage.backend.save_pretrained(out, tokenizer)
        finally:
            if scorer is not None:
                scorer.close()

    path = Path(os.path.expanduser(cfg.model.cache_dir)) / f"warmup-{cache_key(payload)}"
    return cached(path, build)


def run(cfg: TrainConfig, run_path: Path) -> dict[str, Any]:
    from rlvr.checkpoint import BACKEND_DIR, load_trainer_state, resolve_resume, save_checkpoint, set_rng_state
    from rlvr.run_dir import RunDir
    from rlvr.stage import load_data, seed_everything

    s, t = cfg.model.sft, cfg.trainer
    if s.steps < 1:
        raise ConfigError("model.sft.steps=0: nothing to train; set model.sft.steps (e.g. model.sft.steps=500)")
    checkpoint = resolve_resume(cfg.resume, run_path, s.steps, steps_key="model.sft.steps")
    run_dir = RunDir(run_path, cfg.logger)
    seed_everything(t.seed)
    base, tokenizer, train_set, _ = load_data(cfg, need_reference=False)
    scorer = _probe_scorer(cfg)
    try:
        from rlvr.models.policy import load_policy, policy_line
        from rlvr.models.precision import precision_line

        model = load_policy(cfg.model, base, checkpoint, t.gradient_checkpointing)
        print(f"{precision_line(cfg.model)}; {policy_line(model, t.gradient_checkpointing)}", flush=True)
        stage = _stage(cfg, model, train_set, tokenizer, t.micro_batch_size, scorer)
        start = 0
        if checkpoint is not None:
            state = load_trainer_state(checkpoint)
            stage.backend.load(checkpoint / BACKEND_DIR)
            stage.load_state_dict(state["stage"])
            set_rng_state(state["rng"])
            start = int(state["step"])
            run_dir.truncate_metrics(start)
        before = stage.probe() if start == 0 else float("nan")

        def on_step(step: int, metrics: dict[str, Any]) -> None:
            run_dir.log({"step": step, **metrics})
            if cfg.logger.console_every and step % cfg.logger.console_every == 0:
                print(f"sft step {step:>5}/{s.steps} | loss {metrics['sft/loss']:.4f} | "
                      f"gnorm {metrics['sft/grad_norm']:.3f} | lr {metrics['sft/lr']:.2e}", flush=True)
            if t.save_every and step % t.save_every == 0:
                save_checkpoint(run_path, step, stage.backend, tokenizer, {"stage": stage.state_dict()},
                                t.keep_checkpoints)

        last = stage.run(s.steps, start, log=lambda m: print(m, flush=True), on_step=on_step)
        final = save_checkpoint(run_path, last, stage.backend, tokenizer, {"stage": stage.state_dict()},
                                t.keep_checkpoints)
        after = stage.probe()
    finally:
        if scorer is not None:
            scorer.close()
    rows = [r for r in run_dir.read_metrics() if "sft/loss" in r]
    summary = {"steps": last, "loss_first": rows[0]["sft/loss"] if rows else None,
               "loss_last": rows[-1]["sft/loss"] if rows else None, "probe_accuracy_before": before,
               "probe_accuracy_after": after, "probe_failures": dict(stage.probe_failures), "model": str(final),
               "resumed_from_step": start, "run_dir": str(run_path)}
    run_dir.write_json("summary.json", summary)
    run_dir.close()
    print(f"done: {last} steps, loss {summary['loss_first']} -> {summary['loss_last']}, probe accuracy "
          f"{before:.3f} -> {after:.3f}; model {final}", flush=True)
    return summary
