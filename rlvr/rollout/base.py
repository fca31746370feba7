"""The rollout engine protocol, its batch type, and the engine registry.

An engine turns token-id prompts into ``n`` completions each and reports, per
completion token, the log-probability the sampler used (at the sampling temperature,
before top-p truncation: the same quantity the learner recomputes). Engines register
under a name (``rollout.engine``); the learner calls `Engine.sync_weights` after every
optimizer step so engines holding their own copy of the weights can refresh it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch

from rlvr.registry import Registry

__all__ = ["SamplingParams", "RolloutBatch", "Engine", "ENGINES", "register_engine", "build_engine"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1  # completions per prompt (consecutive in the output)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    greedy: bool = False  # argmax decoding (evaluation pass@1); temperature/top_p ignored


@dataclass
class RolloutBatch:
    """N = prompts x n completions; prompts left-padded, completions right-padded."""

    prompt_ids: torch.Tensor  # [N, P] long
    prompt_mask: torch.Tensor  # [N, P] long, 1 on real tokens
    completion_ids: torch.Tensor  # [N, C] long
    completion_mask: torch.Tensor  # [N, C] float, 1 up to and including EOS
    logprobs: torch.Tensor  # [N, C] float, sampling log-probs (0 on padding)
    truncated: torch.Tensor  # [N] bool, True when max_new_tokens was reached without EOS
    texts: list[str]  # decoded completions, special tokens removed

    def __len__(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(-1)

    def to(self, device: torch.device | str) -> "RolloutBatch":
        return RolloutBatch(self.prompt_ids.to(device), self.prompt_mask.to(device), self.completion_ids.to(device),
                            self.completion_mask.to(device), self.logprobs.to(device), self.truncated.to(device),
                            self.texts)

    def select(self, index: torch.Tensor) -> "RolloutBatch":
        idx = index.tolist()
        return RolloutBatch(self.prompt_ids[index], self.prompt_mask[index], self.completion_ids[index],
                            self.completion_mask[index], self.logprobs[index], self.truncated[index],
                            [self.texts[i] for i in idx])


def concat_rollouts(parts: Sequence[RolloutBatch], pad_id: int) -> RolloutBatch:
    """Join batches whose prompt/completion widths differ (prompts stay left-padded)."""
    if len(parts) == 1:
        return parts[0]
    p_w = max(b.prompt_ids.shape[1] for b in parts)
    c_w = max(b.completion_ids.shape[1] for b in parts)

    def left(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (p_w - t.shape[1], 0), value=value)

    def right(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, c_w - t.shape[1]), value=value)

    return RolloutBatch(
        torch.cat([left(b.prompt_ids, pad_id) for b in parts]), torch.cat([left(b.prompt_mask, 0) for b in parts]),
        torch.cat([right(b.completion_ids, pad_id) for b in parts]),
        torch.cat([right(b.completion_mask, 0) for b in parts]), torch.cat([right(b.logprobs, 0) for b in parts]),
        torch.cat([b.truncated for b in parts]), [t for b in parts for t in b.texts])


class Engine(Protocol):
    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams) -> RolloutBatch: ...

    def sync_weights(self, model: torch.nn.Module) -> None: ...


ENGINES: Registry[Callable[..., Engine]] = Registry("rollout.engine")
register_engine = ENGINES.register


def build_engine(name: str, model: torch.nn.Module, tokenizer: Any, **kwargs: Any) -> Engine:
    return ENGINES.lookup(name)(model=model, tokenizer=tokenizer, **kwargs)
