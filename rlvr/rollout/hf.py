"""Rollouts with a transformers causal LM, sharing the policy module (no weight copy).

A plain KV-cached decode loop: one forward over the left-padded prompts, then one
token per step for every row. Each step keeps only that step's logits [rows, vocab]
and the chosen token's log-prob (`rlvr.rollout.sampling`), so memory grows with
rows x tokens, never rows x tokens x vocabulary. A row is done at any id of the
engine's ``eos_ids`` (the protocol's end-of-sequence set), and decoding stops early once
every row is done. Under ZeRO-3 with several ranks every forward is a collective (the
parameters are partitioned), so the ranks vote after each token and leave the loop
together: a rank whose rows are done keeps decoding padding until every rank's are
(the `synced_gpus` idea); callers give every rank the same number of rows per call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Optional, Sequence

import torch

from rlvr.distributed import all_true, collective_forward
from rlvr.models.eos import end_of_sequence_ids
from rlvr.rollout.base import RolloutBatch, SamplingParams, WeightSource, concat_rollouts
from rlvr.rollout.sampling import choose_tokens, row_keys, step_uniforms
from rlvr.rollout.stops import completes_stop, stop_window

__all__ = ["HFEngine", "HFEngineConfig", "left_pad", "completion_mask"]


@dataclass
class HFEngineConfig:
    batch_size: int = 64  # sequences per decode batch (0 = all of a call at once)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        if len(p):
            ids[i, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
            mask[i, width - len(p):] = 1
    return ids, mask


def completion_mask(completion_ids: torch.Tensor, eos_ids: Collection[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask up to and including the first id of ``eos_ids``, truncated = none of them at all)."""
    is_eos = torch.isin(completion_ids, torch.tensor(sorted(eos_ids), dtype=completion_ids.dtype))
    has_eos = is_eos.any(-1)
    first = torch.where(has_eos, is_eos.int().argmax(-1), completion_ids.shape[1])
    positions = torch.arange(completion_ids.shape[1]).unsqueeze(0)
    return (positions <= first.unsqueeze(1)).float(), ~has_eos


class HFEngine:
    """Seeded batched sampling on the policy module itself; `update_weights` only re-points it."""

    shares_policy = True  # samples from the learner's own module: its log-probs are the learner's
    default_rollout_correction = "none"

    def __init__(self, model: torch.nn.Module, tokenizer: Any, batch_size: int = 64, autocast_dtype=None,
                 model_dir: Any = None, seed: int = 0):  # model_dir, seed: the common context; unused here
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token; set one (tokenizer.eos_token) so generation can stop")
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        self.autocast_dtype = autocast_dtype
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_ids = end_of_sequence_ids(tokenizer, getattr(model, "generation_config", None))
        self.weight_version = 0

    def update_weights(self, source: WeightSource, version: int) -> None:
        self.model = source.module  # the same module the learner trains: nothing to copy
        self.weight_version = version

    def sleep(self) -> None:  # nothing to free: the weights are the learner's
        pass

    def wake(self) -> None:
        pass

    def close(self) -> None:
        pass

    def generate(self, prompts: Sequence[Sequence[int]], params: SamplingParams,
                 seeds: Optional[Sequence[int]] = None) -> RolloutBatch:
        if seeds is None:  # drawn from the global RNG: reproducible under torch.manual_seed
            seeds = torch.randint(0, 2**62, (len(prompts),)).tolist()
        keys = row_keys(seeds, params.n)
        expanded = [p for p in prompts for _ in range(params.n)]
        size = self.batch_size or len(expanded)
        parts = [self._generate(expanded[i:i + size], keys[i:i + size], params)
                 for i in range(0, len(expanded), size)]
        return concat_rollouts(parts, self.pad_id)

    @torch.no_grad()
    def _generate(self, prompts: Sequence[Sequence[int]], keys, params: SamplingParams) -> RolloutBatch:
        ids, mask = left_pad(prompts, self.pad_id)
        was_training = self.model.training
        self.model.eval()
        try:
            tokens, logps, stopped = self._decode(ids, mask, keys, params)
        finally:
            self.model.train(was_training)
        completion = torch.stack(tokens, dim=1).cpu()
        cmask, truncated = completion_mask(completion, self.eos_ids)
        if stopped is not None:  # a stop string ended these rows at that step (before any end-of-sequence id)
            positions = torch.arange(completion.shape[1]).unsqueeze(0)
            at = torch.where(stopped >= 0, stopped, completion.shape[1]).unsqueeze(1)
            cmask = cmask * (positions <= at).float()
            truncated = truncated & (stopped < 0)
        logprobs = torch.stack(logps, dim=1).float().cpu() * cmask
        completion = torch.where(cmask.bool(), completion, self.pad_id)
        texts = self.tokenizer.batch_decode(completion, skip_special_tokens=True)
        return RolloutBatch(ids, mask, completion, cmask, logprobs, truncated, texts, self.weight_version)

    def _decode(self, ids: torch.Tensor, mask: torch.Tensor, keys, params: SamplingParams):
        device = next(self.model.parameters()).device
        ids, mask = ids.to(device), mask.to(device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
        lockstep = collective_forward(self.model)  # every forward gathers sharded parameters from all ranks
        tokens: list[torch.Tensor] = []
        logps: list[torch.Tensor] = []
        step_input, cache = ids, None
        eos = torch.tensor(sorted(self.eos_ids), dtype=torch.long, device=device)
        next_pos = positions[:, -1:] + 1
        stops = tuple(params.stop)
        stopped = torch.full((ids.shape[0],), -1, dtype=torch.long) if stops else None
        tail = stop_window(stops)  # tokens decoded to look for a stop string
        autocast = torch.autocast(device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)
        for t in range(params.max_new_tokens):
            with autocast:
                out = self.model(input_ids=step_input, attention_mask=mask, position_ids=positions,
                                 past_key_values=cache, use_cache=True, logits_to_keep=1)
            cache = out.past_key_values
            token, logp = choose_tokens(out.logits[:, -1].float(), params.temperature, params.top_p,
                                        params.greedy, step_uniforms(keys, t))
            token = torch.where(done, self.pad_id, token)
            tokens.append(token)
            logps.append(torch.where(done, 0.0, logp))
            if stops:
                newly = self._stopped(tokens, done, stops, tail, t)
                for row in newly:
                    stopped[row] = t
                if newly:
                    done = done | torch.isin(torch.arange(len(done), device=device),
                                             torch.tensor(newly, dtype=torch.long, device=device))
            done = done | torch.isin(token, eos)
            finished = bool(done.all())
            if all_true(finished) if lockstep else finished:  # ZeRO-3: leave the loop together
                break
            step_input, positions = token.unsqueeze(1), next_pos
            next_pos = next_pos + 1
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        return tokens, logps, stopped

    def _stopped(self, tokens: list[torch.Tensor], done: torch.Tensor, stops: tuple[str, ...], tail: int,
                 t: int) -> list[int]:
        """Rows not done whose newest token completes a stop string (`rlvr.rollout.stops`: the rule both engines
        cut by)."""
        rows = (~done).nonzero().flatten().tolist()
        if not rows:
            return []
        recent = torch.stack(tokens[max(0, t + 1 - tail):], dim=1)[rows].cpu().tolist()
        return [r for r, hit in zip(rows, completes_stop(self.tokenizer, recent, stops)) if hit]
