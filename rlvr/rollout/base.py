"""The rollout engine protocol, its batch type, and the engine registry.

The loop talks to an engine only through `Engine`:

    engine.wake()                                  # GPU engines: reclaim weights / KV memory
    engine.update_weights(source, version=step-1)  # once per step, before generating (and after a resume)
    batch = engine.generate(prompts, params, seeds)
    engine.sleep()                                 # GPU engines: free the KV cache while the learner trains
    engine.close()                                 # at the end of the run

**Which log-prob an engine returns.** For every completion token, ``log softmax(z / T)``
of the chosen token over the *whole* vocabulary, where ``z`` are the policy's logits and
``T`` the sampling temperature (1 for greedy decoding). Under ``top_p < 1`` tokens are
*drawn* from the renormalized nucleus, but the log-prob reported is still the one over
the whole vocabulary: the quantity the learner recomputes, so on-policy importance
ratios are exactly 1. An engine that cannot report that quantity for some setting must
refuse the setting when it is built, never return a different number.

**Weights.** `update_weights` receives a `WeightSource` (the learner backend): engines
that share the policy module (``hf``) keep a reference to ``source.module``; engines with
their own copy pull the complete, gathered set from ``source.named_tensors()`` in one
call. Every batch carries the engine's ``weight_version``; the loop refuses a batch whose
version is not the learner's (a sync that silently did not happen).

**End of sequence.** An engine stops a completion at *any* id of ``eos_ids``
(`rlvr.models.eos.end_of_sequence_ids`: the generation config's ``eos_token_id``, an int or
a list, the tokenizer's EOS and the chat template's end of turn, e.g. ``<|im_end|>`` or
``<|eot_id|>``). The id reached is the completion's last masked token and the completion is
finished (``truncated`` False); only a completion that reaches ``max_new_tokens`` without
any of them is truncated.

**Seeds.** ``seeds[i]`` seeds prompt ``i``'s completions (completion ``j`` draws from its own
stream derived from ``(seeds[i], j)``), so a prompt's completions do not depend on which
other prompts share the batch or how it is split.

Engines register under ``rollout.engine``; heavy ones lazily (``"module:Class"``), so
choosing ``hf`` never imports vllm.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

import torch

from rlvr.registry import Registry

__all__ = ["SamplingParams", "RolloutBatch", "Engine", "WeightSource", "ENGINES", "register_engine",
           "build_engine", "concat_rollouts", "StaleWeightsError"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1  # completions per prompt (consecutive in the output)
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    greedy: bool = False  # argmax decoding (evaluation pass@1); temperature/top_p ignored
    stop: tuple[str, ...] = ()  # a completion also ends once its text contains one of these (a tool call's end);
    #   the token that completed it is its last masked token, and it counts as finished (not truncated)
    fit_context: bool = False  # multi-turn continuations (rows of different lengths share one max_new_tokens, each
    #   cut to its own budget by the caller): a row whose prompt + max_new_tokens passes an engine's context gets
    #   what fits there (truncated at its end) instead of being refused


@dataclass
class RolloutBatch:
    """N = prompts x n completions; prompts left-padded, completions right-padded."""

    prompt_ids: torch.Tensor  # [N, P] long
    prompt_mask: torch.Tensor  # [N, P] long, 1 on real tokens
    completion_ids: torch.Tensor  # [N, C] long
    completion_mask: torch.Tensor  # [N, C] float, 1 up to and including the first end-of-sequence id
    logprobs: torch.Tensor  # [N, C] float, sampling log-probs (see the module doc; 0 on padding)
    truncated: torch.Tensor  # [N] bool, True when max_new_tokens was reached without any end-of-sequence id
    texts: list[str]  # decoded completions, special tokens removed (multi-turn: the model's own text)
    weight_version: int = -1  # the engine's weight version when these were sampled
    # multi-turn rollouts (`rlvr.rollout.multiturn`): the completion interleaves sampled tokens with tokens the
    # environment inserted (a tool's output). ``completion_mask`` is 1 on *sampled* tokens only (what the loss,
    # the KL, lengths and the watch count); ``context_mask`` is 1 on every real token (what attention sees).
    context_mask: Optional[torch.Tensor] = None  # [N, C] float; None: equal to completion_mask
    transcripts: Optional[list[str]] = None  # the whole completion, inserted parts marked (samples, bad cases)
    tool_records: Optional[list[list[dict]]] = None  # per row: one record per tool call (tool, status, seconds)

    @property
    def attention_mask(self) -> torch.Tensor:
        """[N, P + C] long: 1 on every real token of prompt and completion, inserted ones included."""
        context = self.completion_mask if self.context_mask is None else self.context_mask
        return torch.cat([self.prompt_mask, context.long()], dim=1)

    @property
    def context(self) -> torch.Tensor:
        """[N, C]: 1 on every real completion token (sampled or inserted)."""
        return self.completion_mask if self.context_mask is None else self.context_mask

    def __len__(self) -> int:
        return self.completion_ids.shape[0]

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask.sum(-1)

    def _map(self, fn: Callable[[torch.Tensor], torch.Tensor], rows: Optional[list[int]] = None) -> "RolloutBatch":
        def pick(values: Optional[list]) -> Optional[list]:
            return values if values is None or rows is None else [values[i] for i in rows]

        return replace(self, prompt_ids=fn(self.prompt_ids), prompt_mask=fn(self.prompt_mask),
                       completion_ids=fn(self.completion_ids), completion_mask=fn(self.completion_mask),
                       logprobs=fn(self.logprobs), truncated=fn(self.truncated), texts=pick(self.texts),
                       context_mask=None if self.context_mask is None else fn(self.context_mask),
                       transcripts=pick(self.transcripts), tool_records=pick(self.tool_records))

    def to(self, device: torch.device | str) -> "RolloutBatch":
        return self._map(lambda t: t.to(device))

    def select(self, index: torch.Tensor) -> "RolloutBatch":
        return self._map(lambda t: t[index], index.tolist())

    def trimmed(self) -> "RolloutBatch":
        """The same rows without padding columns no row uses (leading prompt pads, trailing completion
        pads): a micro-batch of short completions does not pay for the longest one in the batch."""
        used = self.prompt_mask.bool().any(0)
        start = int(used.int().argmax()) if bool(used.any()) else self.prompt_ids.shape[1]
        width = _last_real(self.context) if len(self) else 0
        return replace(self, prompt_ids=self.prompt_ids[:, start:], prompt_mask=self.prompt_mask[:, start:],
                       completion_ids=self.completion_ids[:, :width], completion_mask=self.completion_mask[:, :width],
                       logprobs=self.logprobs[:, :width],
                       context_mask=None if self.context_mask is None else self.context_mask[:, :width])


def _last_real(mask: torch.Tensor) -> int:
    """1 + the last column any row uses (masks are 1 on a prefix for single-turn rows, with holes for multi-turn)."""
    used = mask.bool().any(0)
    return int(used.nonzero().max()) + 1 if bool(used.any()) else 1


def concat_rollouts(parts: Sequence[RolloutBatch], pad_id: int) -> RolloutBatch:
    """Join batches whose prompt/completion widths differ (prompts stay left-padded)."""
    if len(parts) == 1:
        return parts[0]
    versions = {b.weight_version for b in parts}
    if len(versions) != 1:
        raise StaleWeightsError(f"rollout parts sampled with different weight versions {sorted(versions)}")
    p_w = max(b.prompt_ids.shape[1] for b in parts)
    c_w = max(b.completion_ids.shape[1] for b in parts)

    def left(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (p_w - t.shape[1], 0), value=value)

    def right(t: torch.Tensor, value: float) -> torch.Tensor:
        return torch.nn.functional.pad(t, (0, c_w - t.shape[1]), value=value)

    multi = any(b.context_mask is not None for b in parts)

    def joined(name: str) -> Optional[list]:
        if all(getattr(b, name) is None for b in parts):
            return None
        return [x for b in parts for x in (getattr(b, name) if getattr(b, name) is not None
                                           else _default(name, b))]

    return RolloutBatch(
        torch.cat([left(b.prompt_ids, pad_id) for b in parts]), torch.cat([left(b.prompt_mask, 0) for b in parts]),
        torch.cat([right(b.completion_ids, pad_id) for b in parts]),
        torch.cat([right(b.completion_mask, 0) for b in parts]), torch.cat([right(b.logprobs, 0) for b in parts]),
        torch.cat([b.truncated for b in parts]), [t for b in parts for t in b.texts], versions.pop(),
        context_mask=torch.cat([right(b.context, 0) for b in parts]) if multi else None,
        transcripts=joined("transcripts"), tool_records=joined("tool_records"))


def _default(name: str, batch: RolloutBatch) -> list:
    return list(batch.texts) if name == "transcripts" else [[] for _ in range(len(batch))]


class StaleWeightsError(RuntimeError):
    """A rollout batch was sampled with weights other than the learner's current ones."""


class WeightSource(Protocol):
    """What an engine needs to refresh its weights (the learner backend implements it)."""

    @property
    def module(self) -> torch.nn.Module: ...  # the live policy module (engines that share it)

    def named_tensors(self) -> Iterator[tuple[str, torch.Tensor]]: ...  # complete, gathered weights (HF names)


class Engine(Protocol):
    pad_id: int  # token id used to pad prompts (left) and completions (right)
    eos_ids: frozenset[int]  # generation stops at any of these (the one reached is part of the completion and its
    #   mask, and the completion counts as finished): `rlvr.models.eos.end_of_sequence_ids`
    weight_version: int  # set by update_weights, stamped on every batch
    shares_policy: bool  # True when it samples from the learner's module itself (no copy to drift)
    default_rollout_correction: str  # algorithm.rollout_correction when the config leaves it null

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
                 seeds: Optional[Sequence[int]] = None) -> RolloutBatch: ...

    def update_weights(self, source: WeightSource, version: int) -> None: ...

    def sleep(self) -> None: ...

    def wake(self) -> None: ...

    def close(self) -> None: ...


ENGINES: Registry[Callable[..., Engine]] = Registry("rollout.engine")
register_engine = ENGINES.register
ENGINES.register_lazy("hf", "rlvr.rollout.hf:HFEngine")
ENGINES.register_lazy("vllm", "rlvr.rollout.vllm:VLLMEngine")


def build_engine(name: str, model: torch.nn.Module, tokenizer: Any, **options: Any) -> Engine:
    """The engine registered as ``name``, sharing or copying ``model``.

    Options: the common context (``autocast_dtype``, ``model_dir`` the policy was loaded from,
    ``seed``) and the fields of the engine's own config block (``rollout.<name>``).
    """
    return ENGINES.lookup(name)(model=model, tokenizer=tokenizer, **options)
