"""Reward-model sources: a scalar score from a sequence-classification model directory.

The directory is anything ``AutoModelForSequenceClassification.from_pretrained`` loads
with one output (``num_labels=1``) plus its tokenizer. Each completion is rendered after
its prompt with the tokenizer's chat template (as an assistant turn), scored in batches
on the learner's device, and the score is read at the last *real* token, found from the
attention mask, so neither the amount of padding nor ``pad == eos`` changes it.

The raw score is normalized with the statistics `rlvr-rm` saves beside the model
(``reward_stats.json``: mean and std of its scores over the training answers) and
clipped, so a reward model's scale does not depend on how it happened to train, and a
score far outside what it saw in training cannot dominate the batch. Options
(``reward.sources[i].options``): ``batch_size`` (16), ``max_tokens`` (1024: longer
inputs keep their end), ``normalize`` (true), ``clip`` (5.0, in standard deviations;
0 = none). A model source never decides `passed`; the raw scores are kept for the
metrics (``reward/<label>/raw_mean``) and the hacking watch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from rlvr.config import ConfigError
from rlvr.config import RewardSource as SourceConfig
from rlvr.data.chat import chat_texts
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext, SourceScores
from rlvr.rewards.mix import normalize_scores

__all__ = ["RewardModelSource", "check_model_source", "last_token_scores", "render_pair", "load_reward_stats",
           "STATS_FILE"]

_OPTIONS = {"batch_size": 16, "max_tokens": 1024, "normalize": True, "clip": 5.0}
STATS_FILE = "reward_stats.json"  # written by rlvr-rm beside the model: mean, std, min, max, quantiles, count


def load_reward_stats(path: str | Path) -> Optional[dict[str, Any]]:
    """The statistics saved with a reward model, or None when the directory has none."""
    file = Path(path) / STATS_FILE
    if not file.is_file():
        return None
    stats = json.loads(file.read_text())
    for key in ("mean", "std"):
        if not isinstance(stats.get(key), (int, float)):
            raise ValueError(f"{file}: {key!r} is missing or not a number; retrain with rlvr-rm, or set "
                             f"options.normalize=false on this reward source")
    return stats


def render_pair(tokenizer: Any, prompt: Prompt, completion: str) -> str:
    """The prompt's messages followed by the completion as the assistant's turn."""
    messages = [dict(m) for m in prompt.messages] + [{"role": "assistant", "content": completion}]
    if getattr(tokenizer, "chat_template", None):
        return chat_texts(tokenizer, [messages], False, [prompt.uid])[0]
    return "\n\n".join(m["content"] for m in messages)


def last_token_scores(per_token: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] scores -> [B]: the score at each row's last position whose mask is 1 (any padding side)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (positions * attention_mask.long()).argmax(-1)
    return per_token.gather(1, last.unsqueeze(1)).squeeze(1)


def check_model_source(where: str, src: SourceConfig) -> None:
    """`reward.sources[i]` of kind model, before anything expensive starts (the warm-up, model loads): its
    options are known, ``path`` is a model directory, and the score statistics normalization needs exist."""
    unknown = sorted(set(src.options) - set(_OPTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {', '.join(unknown)}; valid: {', '.join(_OPTIONS)}")
    if not src.path:
        raise ConfigError(f"{where}: set its path to a reward-model directory (rlvr-rm ... run_name=NAME writes "
                          f"runs/NAME/model)")
    path = Path(os.path.expanduser(src.path))
    if not (path / "config.json").is_file():
        problem = "has no config.json" if path.is_dir() else "does not exist"
        raise ConfigError(f"{where}: reward-model directory {src.path} {problem}; train one first (rlvr-rm ... "
                          f"run_name=NAME writes runs/NAME/model) or fix the path")
    if {**_OPTIONS, **src.options}["normalize"] and not (path / STATS_FILE).is_file():
        raise ConfigError(f"{where}: {src.path} has no {STATS_FILE} (the score statistics rlvr-rm saves); train it "
                          f"with rlvr-rm, or set options.normalize=false to use raw scores")


class RewardModelSource:
    decides_pass = False
    learned = True

    def __init__(self, cfg: SourceConfig, label: str, ctx: SourceContext):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        unknown = sorted(set(cfg.options) - set(_OPTIONS))
        if unknown:
            raise ValueError(f"reward source {label!r}: unknown option(s) {', '.join(unknown)}; "
                             f"valid: {', '.join(_OPTIONS)}")
        if not cfg.path or not os.path.isdir(os.path.expanduser(cfg.path)):
            raise ValueError(f"reward source {label!r} (kind model) needs path: a reward-model directory; "
                             f"got {cfg.path!r}")
        path = os.path.expanduser(cfg.path)
        self.label, self.weight, self.device = label, cfg.weight, ctx.device
        self.options = {**_OPTIONS, **cfg.options}
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model, info = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32,
                                                                             output_loading_info=True)
        head = [k for k in info.get("missing_keys", []) if k.split(".")[0] == "score"]
        if head:
            raise ValueError(f"reward source {label!r}: {path} has no reward head ({', '.join(head)} missing: it is "
                             f"a plain language model); train a reward model from it with rlvr-rm")
        if self.model.config.num_labels != 1:
            raise ValueError(f"{path}: a reward model has one output; this one has num_labels="
                             f"{self.model.config.num_labels}")
        self.model.to(self.device).eval().requires_grad_(False)
        self.stats = load_reward_stats(path)
        if self.options["normalize"] and self.stats is None:
            raise ValueError(f"reward source {label!r}: {path} has no {STATS_FILE} (the score statistics rlvr-rm "
                             f"saves); train the model with rlvr-rm, or set reward.sources[].options.normalize=false "
                             f"to use raw scores")

    @torch.no_grad()
    def score(self, prompts: Sequence[Prompt], completions: Sequence[str]) -> SourceScores:
        texts = [render_pair(self.tokenizer, p, c) for p, c in zip(prompts, completions)]
        scores = []
        size = int(self.options["batch_size"])
        self.tokenizer.truncation_side, self.tokenizer.padding_side = "left", "right"  # positions start at 0
        for i in range(0, len(texts), size):
            enc = self.tokenizer(texts[i:i + size], return_tensors="pt", padding=True, truncation=True,
                                 max_length=int(self.options["max_tokens"]), add_special_tokens=False).to(self.device)
            backbone = getattr(self.model, self.model.base_model_prefix)
            hidden = backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
            per_token = self.model.score(hidden).squeeze(-1).float()
            scores.append(last_token_scores(per_token, enc["attention_mask"]).cpu())
        raw = torch.cat(scores) if scores else torch.zeros(0)
        rewards = raw
        if self.options["normalize"]:
            rewards = normalize_scores(raw, float(self.stats["mean"]), float(self.stats["std"]),
                                       float(self.options["clip"]))
        return SourceScores(rewards, ["scored"] * len(texts), None, raw=raw)

    def close(self) -> None:
        pass
