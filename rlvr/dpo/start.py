"""Where an `rlvr-dpo` run's policy starts, and what describes it.

``policy.train_overrides`` compose an `rlvr-train` config (`compose_train_config`): its
supervised warm-up is the starting policy unless ``policy.path`` names one, and its held-out
prompts and answer budget are DPO's evaluation. The policy's ``model.*`` is rlvr-dpo's own
block merged onto that config's (`rlvr.dpo.config.merged_model`: a key rlvr-dpo sets to a
non-default value wins), checked for the backend before anything is loaded. Under torchrun
rank 0 builds the cached base model and warm-up first (`main_first`); the others read them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rlvr.config import ConfigError, TrainConfig
from rlvr.dpo.config import DPOConfig, merged_model

__all__ = ["compose_train_config", "chat_template_choice", "policy_config", "starting_policy"]


def compose_train_config(overrides: list[str]) -> TrainConfig:
    """rlvr-train's config with ``overrides`` (inside a Hydra app or outside one)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from rlvr.config import CONF_DIR, RewardSource, register_schemas
    from rlvr.config_checks import validate
    from rlvr.rewards.scorer import source_labels

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
    # reward model need not exist for DPO): each row's own verifier scores DPO's evaluation instead, with the
    # run's truth source (reward.truth; validation adds a weight-0 verifier of that name when it is no source).
    truth = [s for s, label in zip(train_cfg.reward.sources, source_labels([s.name for s in train_cfg.reward.sources]))
             if train_cfg.reward.truth.source is not None and label == train_cfg.reward.truth.source]
    train_cfg.reward.sources, train_cfg.reward.mix = [RewardSource(), *truth], "sum"
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


def policy_config(cfg: DPOConfig) -> TrainConfig:
    """The composed rlvr-train config with the run's one chat template and the policy's merged ``model.*``."""
    from rlvr.models.precision import check_model_settings

    train_cfg = compose_train_config(cfg.policy.train_overrides)
    train_cfg.data.chat_template = chat_template_choice(cfg.data.chat_template, train_cfg.data.chat_template)
    train_cfg.model = merged_model(cfg.model, train_cfg.model)
    check_model_settings(train_cfg.model, cfg.trainer.backend)
    return train_cfg


def starting_policy(cfg: DPOConfig, train_cfg: TrainConfig) -> tuple[Path, Any, list]:
    """(policy directory, tokenizer, held-out prompts): ``policy.path``, or rlvr-train's cached warm-up."""
    from rlvr.distributed import main_first
    from rlvr.stage import load_data

    policy_dir = Path(cfg.policy.path).expanduser() if cfg.policy.path else None
    if policy_dir is not None and not (policy_dir / "config.json").is_file():
        from rlvr.errors import ModelError

        raise ModelError(f"policy.path={cfg.policy.path}: no config.json there; point it at a Hugging Face policy "
                         f"directory (e.g. an rlvr-sft checkpoint), or leave it null to start from the warm-up")
    with main_first():  # several ranks: rank 0 builds the cached base model and warm-up, the others read them
        base, tokenizer, train_set, eval_set = load_data(train_cfg, policy_dir=policy_dir)
        if policy_dir is None and train_cfg.model.sft.steps > 0:
            from rlvr.sft import warm_up

            policy_dir = warm_up(train_cfg, base, train_set, tokenizer)
    return policy_dir or base, tokenizer, [eval_set[i] for i in range(len(eval_set))]
