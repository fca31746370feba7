"""Checks of a composed `rlvr-train` config before anything is built (`validate`), and the batch
arithmetic the trainer prints. Each failed check raises `rlvr.config.ConfigError` with the fix.

`validate` checks the relations between fields (divisibility of the batch across micro-batches,
mini-batches and ranks, choices, the reward mix); `check_names` every registry name and verifier
option (so a typo fails before the supervised warm-up or a model load, not at first use).
"""
from __future__ import annotations

import os
import sys
from typing import Any

from rlvr.config import ConfigError, TrainConfig, check_verifier

__all__ = ["validate", "check_names", "check_verifier", "check_chat_template", "batch_arithmetic", "LEARNED_KINDS",
           "apply_truth"]


_CHOICES = {
    "algorithm.scale": ("group", "batch", "none"),
    "algorithm.aggregation": ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"),
    "trainer.optim.schedule": ("constant", "linear", "cosine"),
    "data.on_long_prompt": ("error", "drop"),
    "trainer.deepspeed.zero_stage": (2, 3),
    "reward.mix": ("sum", "gated"),
    "algorithm.kl_penalty": ("reward", "loss"),
    "rollout.tools.call_format": ("json", "fenced"),
    "model.tiny_tokenizer": ("chars", "chars_tools"),
}


def check_chat_template(value: str, where: str = "data.chat_template") -> None:
    """auto, none, or an existing file (checked now, before any model or data is loaded)."""
    if value in ("auto", "none"):
        return
    if not value or not os.path.isfile(os.path.expanduser(value)):
        raise ConfigError(f"{where}={value!r}: no such file; use auto (the tokenizer's own chat template), none (raw "
                          f"prompt text) or the path of a Jinja template file")


def _get(cfg: TrainConfig, dotted: str) -> Any:
    value: Any = cfg
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _check_world(cfg: TrainConfig, world_size: int) -> None:
    """Data parallelism: equal prompt shares per rank, a backend that averages gradients over ranks."""
    t, a = cfg.trainer, cfg.algorithm
    if world_size <= 1:
        return
    if t.backend == "torch":
        raise ConfigError(f"trainer.backend=torch runs one process, but this launch has {world_size} ranks; "
                          f"use trainer.backend=deepspeed (ZeRO-2/3 data parallelism) or launch one process")
    if t.prompts_per_step % world_size:
        fit = world_size * max(1, round(t.prompts_per_step / world_size))
        raise ConfigError(f"trainer.prompts_per_step={t.prompts_per_step} cannot be split into {world_size} equal "
                          f"per-rank shares; set trainer.prompts_per_step to a multiple of {world_size} "
                          f"(e.g. {fit})")
    if a.drop_zero_variance:
        raise ConfigError(f"algorithm.drop_zero_variance=true refills dropped groups per rank, which leaves the "
                          f"{world_size} ranks with unequal batches (a ZeRO collective would hang); set "
                          f"algorithm.drop_zero_variance=false or launch one process")


def _check_batches(cfg: TrainConfig, world_size: int = 1) -> None:
    t, g = cfg.trainer, cfg.algorithm.group_size
    if g < 2 and cfg.algorithm.advantage != "gae":
        raise ConfigError(f"algorithm.group_size={g}: group-relative advantages need at least 2 completions per prompt")
    if g < 2 and cfg.algorithm.drop_zero_variance:  # a group of one never has spread: every group would be dropped
        raise ConfigError(f"algorithm.group_size={g} with algorithm.drop_zero_variance=true would drop every group (one "
                          f"completion has no spread); set algorithm.drop_zero_variance=false")
    _check_world(cfg, world_size)
    per_batch = t.prompts_per_step * g // world_size  # per rank (equal shares)
    what = ("trainer.prompts_per_step x algorithm.group_size" if world_size == 1 else
            f"trainer.prompts_per_step x algorithm.group_size / {world_size} ranks")
    if t.optimizer_steps_per_batch < 1 or per_batch % t.optimizer_steps_per_batch:
        raise ConfigError(
            f"{what} = {per_batch} completions cannot be split into "
            f"trainer.optimizer_steps_per_batch={t.optimizer_steps_per_batch} equal mini-batches; "
            f"choose a divisor of {per_batch}")
    mini = per_batch // t.optimizer_steps_per_batch
    if t.micro_batch_size < 1 or mini % t.micro_batch_size:
        where = "mini-batch" if world_size == 1 else "per-rank mini-batch"
        raise ConfigError(
            f"{where} of {mini} completions is not a multiple of trainer.micro_batch_size={t.micro_batch_size}; "
            f"set trainer.micro_batch_size to a divisor of {mini}")


def apply_truth(cfg: TrainConfig) -> None:
    """``reward.truth``: a metric-safe summary name, and its source among ``reward.sources`` (a verifier of that
    name is added at weight 0, measured and not rewarded, when no source has the label). Idempotent."""
    import re

    from rlvr.config import RewardSource
    from rlvr.rewards.scorer import source_labels

    truth = cfg.reward.truth
    if not re.match(r"^[A-Za-z][A-Za-z0-9_]*$", truth.name or ""):
        raise ConfigError(f"reward.truth.name={truth.name!r}: letters, digits and _ (summary.json's "
                          f"<name>_before / <name>_after)")
    if truth.source is None:
        return
    if truth.source not in source_labels([src.name for src in cfg.reward.sources]):
        cfg.reward.sources.append(RewardSource(name=truth.source, weight=0.0, kind="verifier"))


def validate(cfg: TrainConfig, world_size: int = 1) -> None:
    """Reject inconsistent settings with a message that names the fix (``world_size``: ranks of the launch)."""
    for dotted, allowed in _CHOICES.items():
        if _get(cfg, dotted) not in allowed:
            raise ConfigError(f"{dotted}={_get(cfg, dotted)!r}; choose one of {', '.join(allowed)}")
    _check_batches(cfg, world_size)
    from rlvr.models.precision import check_model_settings

    check_model_settings(cfg.model, cfg.trainer.backend)
    if cfg.model.lora.rank > 0 and cfg.trainer.backend == "deepspeed" and cfg.trainer.deepspeed.zero_stage == 3:
        raise ConfigError("model.lora.rank > 0 with ZeRO-3: an adapter's parameters are small enough that ZeRO-2 "
                          "shards what matters (its optimizer state); use trainer.deepspeed.zero_stage=2")
    a, ev = cfg.algorithm, cfg.trainer.eval
    if a.num_iterations < 1:
        raise ConfigError(f"algorithm.num_iterations={a.num_iterations}; use 1 or more")
    if a.rollout_correction_cap <= 1.0:
        raise ConfigError(f"algorithm.rollout_correction_cap={a.rollout_correction_cap}: a cap on the importance "
                          f"ratio must be above 1 (2.0 is the usual choice)")
    if a.epsilon_low < 0 or a.epsilon_high < 0 or a.beta < 0 or a.ptx_coef < 0:
        raise ConfigError("algorithm.epsilon_low, epsilon_high, beta and ptx_coef must be >= 0")
    if a.ptx_coef > 0 and cfg.data.ptx.batch_size < 1:
        raise ConfigError(f"data.ptx.batch_size={cfg.data.ptx.batch_size}: the pretraining mix needs at least 1 row "
                          f"per optimizer step")
    if ev.num_samples < ev.k:
        raise ConfigError(f"trainer.eval.num_samples={ev.num_samples} < trainer.eval.k={ev.k}; raise num_samples to at least k")
    if cfg.rollout.engine == "vllm" and cfg.rollout.top_p < 1.0:
        raise ConfigError(f"rollout.top_p={cfg.rollout.top_p} with rollout.engine=vllm: vLLM reports the "
                          f"nucleus-renormalized log-prob under top-p, not the full-vocabulary one the learner "
                          f"compares with; use rollout.top_p=1.0, or rollout.engine=hf")
    check_chat_template(cfg.data.chat_template)
    _check_ppo(cfg)
    _check_tools(cfg)
    if cfg.rollout.temperature <= 0:
        raise ConfigError("rollout.temperature must be > 0 (greedy decoding is only used for pass@1 evaluation)")
    from rlvr.eval.rubric import apply_rubric

    apply_rubric(cfg)  # a selected rubric becomes reward.sources (rlvr/eval/rubric.py)
    apply_truth(cfg)
    if not cfg.reward.sources:
        raise ConfigError("reward.sources is empty; add at least {name: verifier, weight: 1.0}")
    for i, src in enumerate(cfg.reward.sources):  # e.g. the code verifier's sandbox wall limit
        if float(src.options.get("timeout_s", 0)) >= cfg.reward.timeout:
            raise ConfigError(f"reward.sources[{i}].options.timeout_s={src.options['timeout_s']} leaves no room "
                              f"inside reward.timeout={cfg.reward.timeout}; raise reward.timeout above it")
    if cfg.resume not in ("never", "auto") and not cfg.resume:
        raise ConfigError("resume must be never, auto or a checkpoint path")
    _check_reward_mix(cfg)
    check_names(cfg)


LEARNED_KINDS = ("model", "judge")  # source kinds whose score is learned (the gated mix and the KL rule treat them apart)


def _check_reward_mix(cfg: TrainConfig) -> None:
    """A gated mix needs both a check and a learned score; a learned reward wants a KL leash."""
    kinds = [s.kind for s in cfg.reward.sources]
    learned = [k for k in kinds if k in LEARNED_KINDS]
    if cfg.reward.mix == "gated" and (not learned or len(learned) == len(kinds)):
        raise ConfigError("reward.mix=gated orders answers by a learned score within each verifier verdict: it "
                          "needs at least one verifier source and one reward-model source (kind model); "
                          "use reward.mix=sum otherwise")
    if cfg.reward.gate_scale <= 0:
        raise ConfigError(f"reward.gate_scale={cfg.reward.gate_scale}: use a value > 0 (0.25 is the default)")
    if cfg.data.verifier == "none" and not learned:
        raise ConfigError("data.verifier=none leaves rows without a verifier, and no reward model "
                          "(reward.sources[].kind=model) scores them; add one, or name a verifier")
    if learned and cfg.algorithm.beta == 0:
        print("warning: a learned reward (reward model) is in reward.sources but algorithm.beta=0: nothing keeps "
              "the policy near the reference while it optimizes the model's score (reward hacking); set "
              "algorithm.beta > 0 (e.g. 0.04)", file=sys.stderr, flush=True)


def _check_ppo(cfg: TrainConfig) -> None:
    """PPO (algorithm.advantage=gae): its coefficients in range (the critic trains under the policy's backend)."""
    a, c = cfg.algorithm, cfg.algorithm.critic
    if a.advantage != "gae":
        return
    for name, value in (("gamma", a.gamma), ("lam", a.lam)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"algorithm.{name}={value}: use a value in [0, 1] (PPO's usual: gamma=1, lam=0.95)")
    if c.lr <= 0 or c.warmup_steps < 0 or c.value_clip < 0 or a.kl_target < 0 or a.kl_horizon < 1:
        raise ConfigError("algorithm.critic.lr must be > 0, algorithm.critic.warmup_steps, algorithm.critic.value_clip "
                          "and algorithm.kl_target >= 0, and algorithm.kl_horizon >= 1")
    if a.kl_target > 0 and a.beta == 0:
        raise ConfigError(f"algorithm.kl_target={a.kl_target} steers the KL coefficient algorithm.beta, which is 0 "
                          f"(no reference model, no KL): start it above 0, e.g. algorithm.beta=0.05")
    if c.warmup_steps >= cfg.trainer.total_steps:
        raise ConfigError(f"algorithm.critic.warmup_steps={c.warmup_steps} >= trainer.total_steps="
                          f"{cfg.trainer.total_steps}: the policy would never move; lower the warm-up")
    if c.path is not None and not os.path.isdir(os.path.expanduser(c.path)):
        raise ConfigError(f"algorithm.critic.path={c.path}: no such directory; name a model or reward-model "
                          f"directory (e.g. an rlvr-rm run's output), or null to start from the policy's weights")


def _check_tools(cfg: TrainConfig) -> None:
    """``rollout.tools``: limits that make sense, known tools and environment (plugins included)."""
    t = cfg.rollout.tools
    if not t.enabled:
        return
    for name in ("max_calls", "max_output_chars"):
        if getattr(t, name) < (0 if name == "max_calls" else 1):
            raise ConfigError(f"rollout.tools.{name}={getattr(t, name)}: use {'0' if name == 'max_calls' else '1'} "
                              f"or more")
    if t.timeout_s <= 0 or t.max_turns < 0 or t.max_context_tokens < 0 or t.workers < 0:
        raise ConfigError("rollout.tools.timeout_s must be > 0, and max_turns, max_context_tokens, workers >= 0")
    if t.response_format is not None and "{output}" not in t.response_format:
        raise ConfigError(f"rollout.tools.response_format={t.response_format!r} must contain {{output}} (where the "
                          f"tool's output goes)")
    if t.max_context_tokens and t.max_context_tokens <= cfg.data.max_prompt_tokens:
        raise ConfigError(f"rollout.tools.max_context_tokens={t.max_context_tokens} leaves no room after a prompt of "
                          f"up to data.max_prompt_tokens={cfg.data.max_prompt_tokens}; raise it")
    if cfg.trainer.backend == "deepspeed" and cfg.trainer.deepspeed.zero_stage == 3 and cfg.rollout.engine == "hf":
        raise ConfigError("rollout.tools with ZeRO-3 and the hf engine: every decode step is a collective, but ranks "
                          "take different numbers of tool turns; use trainer.deepspeed.zero_stage=2 or "
                          "rollout.engine=vllm")
    from rlvr.registry import RegistryError
    from rlvr.tools.base import TOOLS, tool_names
    from rlvr.tools.env import ENVIRONMENTS, environment_names

    known = tool_names()
    environment_names()
    try:
        for name in t.names:
            TOOLS.check(name)
        if t.env is not None:
            ENVIRONMENTS.check(t.env)
    except RegistryError as exc:
        raise ConfigError(f"{exc} (tools: {', '.join(known)})") from None
    unknown_options = sorted(set(t.options) - set(t.names))
    if unknown_options:
        raise ConfigError(f"rollout.tools.options names tools that are not offered: {', '.join(unknown_options)}; "
                          f"offered: {', '.join(t.names) or 'none'}")


def check_names(cfg: TrainConfig) -> None:
    """Every registry name and verifier option in the config, before any model is built.

    The registries list their names without importing lazy entries (vllm, deepspeed).
    """
    from rlvr.algo import ADVANTAGE_ESTIMATORS, CORRECTIONS, LOSSES
    from rlvr.data import SOURCES
    from rlvr.learner.base import BACKENDS
    from rlvr.registry import RegistryError
    from rlvr.rewards.base import SOURCE_CHECKS, SOURCE_KINDS
    from rlvr.rollout.base import ENGINES

    checks = [(ADVANTAGE_ESTIMATORS, cfg.algorithm.advantage), (LOSSES, cfg.algorithm.loss),
              (CORRECTIONS, cfg.algorithm.rollout_correction or "none"),
              (ENGINES, cfg.rollout.engine), (BACKENDS, cfg.trainer.backend), (SOURCES, cfg.data.source)]
    if cfg.algorithm.ptx_coef > 0:
        checks.append((SOURCES, cfg.data.ptx.source))
    checks += [(SOURCE_KINDS, src.kind) for src in cfg.reward.sources]
    try:
        for registry, name in checks:
            registry.check(name)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from None
    for i, src in enumerate(cfg.reward.sources):
        if src.kind == "verifier" and (src.check or src.name) == "verifier" and cfg.data.verifier != "none":
            check_verifier(f"data.verifier (reward.sources[{i}] scores each row with it)", cfg.data.verifier,
                           src.options)
        elif src.kind == "verifier":
            check_verifier(f"reward.sources[{i}]", src.check or src.name, src.options)
        elif src.kind in SOURCE_CHECKS:  # model, rule, judge: their own modules check paths and options
            SOURCE_CHECKS.lookup(src.kind)(f"reward.sources[{i}] ({src.name})", src)
    if cfg.data.verifier != "none":  # none: rows without a check, scored by a reward model alone
        check_verifier("data.verifier", cfg.data.verifier, {})


def batch_arithmetic(cfg: TrainConfig, world_size: int = 1) -> str:
    """The derived shapes, said out loud at start-up (per rank when ``world_size`` > 1)."""
    t, a = cfg.trainer, cfg.algorithm
    per_batch = t.prompts_per_step * a.group_size
    per_rank = per_batch // world_size
    mini = per_rank // t.optimizer_steps_per_batch
    accum = mini // t.micro_batch_size
    updates = t.optimizer_steps_per_batch * a.num_iterations
    ranks = "" if world_size == 1 else (
        f"       over {world_size} ranks: {t.prompts_per_step // world_size} prompts = {per_rank} completions "
        f"per rank (global mini-batch {mini * world_size})\n")
    return (
        f"batch: {t.prompts_per_step} prompts x {a.group_size} completions = {per_batch} completions per step\n"
        f"{ranks}"
        f"       {t.optimizer_steps_per_batch} mini-batch(es) of {mini} = {accum} micro-batch(es) of "
        f"{t.micro_batch_size} (gradient accumulation {accum}){' per rank' if world_size > 1 else ''}\n"
        f"       x {a.num_iterations} iteration(s) = {updates} optimizer step(s) per rollout batch; "
        f"{t.total_steps} steps -> {t.total_steps * updates} optimizer steps, "
        f"{t.total_steps * per_batch} completions")
