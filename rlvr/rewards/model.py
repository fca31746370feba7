"""Reward-model sources: a scalar score from a sequence-classification model directory.

The directory is anything ``AutoModelForSequenceClassification.from_pretrained`` loads
with one output (``num_labels=1``) plus its tokenizer. Each completion is rendered after
its prompt with the tokenizer's chat template (as an assistant turn), scored in batches
on the learner's device, and the score is read at the last *real* token, found from the
attention mask, so neither the amount of padding nor ``pad == eos`` changes it.
Options (``reward.sources[i].options``): ``batch_size`` (16), ``max_tokens`` (1024:
longer inputs keep their end). A model source never decides `passed`.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from rlvr.config import RewardSource as SourceConfig
from rlvr.data.schema import Prompt
from rlvr.rewards.base import SourceContext, SourceScores

__all__ = ["RewardModelSource", "last_token_scores", "render_pair"]

_OPTIONS = {"batch_size": 16, "max_tokens": 1024}


def render_pair(tokenizer: Any, prompt: Prompt, completion: str) -> str:
    """The prompt's messages followed by the completion as the assistant's turn."""
    messages = [dict(m) for m in prompt.messages] + [{"role": "assistant", "content": completion}]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False)
    return "\n\n".join(m["content"] for m in messages)


def last_token_scores(per_token: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] scores -> [B]: the score at each row's last position whose mask is 1 (any padding side)."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    last = (positions * attention_mask.long()).argmax(-1)
    return per_token.gather(1, last.unsqueeze(1)).squeeze(1)


class RewardModelSource:
    decides_pass = False

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
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
        if self.model.config.num_labels != 1:
            raise ValueError(f"{path}: a reward model has one output; this one has num_labels="
                             f"{self.model.config.num_labels}")
        self.model.to(self.device).eval().requires_grad_(False)

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
        rewards = torch.cat(scores) if scores else torch.zeros(0)
        return SourceScores(rewards, ["scored"] * len(texts), None)

    def close(self) -> None:
        pass
