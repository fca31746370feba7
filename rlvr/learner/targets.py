"""Supervised targets as a batch: a prompt (left-padded) followed by its target completion and the
token that closes it (right-padded, mask 1 on the target tokens), the shape the learner's log-prob
path reads. The closing token is the chat template's end of turn (``<|im_end|>``, ``<|eot_id|>``),
what the model will emit to finish an answer in the rollouts, or EOS without a template
(`rlvr.models.eos.closing_id`).

A target that shows tool use (a rollout's transcript: tool outputs marked ``[[tool]]...[[/tool]]``,
`rlvr.rollout.multiturn.TOOL_OPEN`) is laid out exactly as a multi-turn rollout lays it out: the model's
parts are targets (``completion_mask`` 1), each tool output is framed by the same `rlvr.tools.insert.Inserter`
the rollout uses and is context only (``completion_mask`` 0, ``context_mask`` 1): no SFT target on tool text.

Shared by the SFT stage (`rlvr.sft.supervised`), DPO's whole-answer log-probs (`rlvr.dpo.pairs`)
and the pretraining mix (`rlvr.learner.ptx`), so all three render and pad exactly alike.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch

from rlvr.data.chat import DataError, render_prompts
from rlvr.data.schema import Prompt
from rlvr.models.eos import closing_id
from rlvr.rollout.base import RolloutBatch
from rlvr.rollout.hf import left_pad

__all__ = ["sft_batch", "target_text", "target_ids"]


def target_text(prompt: Prompt) -> str:
    """The prompt's SFT target; a row without one is a `DataError` naming the ways out."""
    if prompt.solution is None:
        raise DataError(f"prompt {prompt.uid} has no `solution` (nor a final assistant message, nor a data.format "
                        f"target): supervised fine-tuning needs target completions; add a solution column, or skip "
                        f"the supervised warm-up with model.sft.steps=0")
    return prompt.solution


def target_ids(tokenizer: Any, target: str, close: int, inserter: Optional[Any] = None) -> tuple[list[int], list[bool]]:
    """A target's ids + the closing id, and which of them the model writes (False: a tool's inserted output).
    Without an ``inserter`` (no tools offered) a marked target is refused: its tool text would become a target."""
    from rlvr.rollout.multiturn import TOOL_CLOSE, TOOL_OPEN

    encode = lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []  # noqa: E731
    if TOOL_OPEN not in target:
        ids = encode(target) + [close]
        return ids, [True] * len(ids)
    if inserter is None:
        raise DataError(f"a target shows tool use ({TOOL_OPEN}...{TOOL_CLOSE}) but no tools are offered; set "
                        f"rollout.tools.names, or give targets without tool output")
    ids: list[int] = []
    model: list[bool] = []
    rest = target
    while TOOL_OPEN in rest:
        said, _, rest = rest.partition(TOOL_OPEN)
        output, found, rest = rest.partition(TOOL_CLOSE)
        if not found:
            raise DataError(f"a target opens {TOOL_OPEN} without closing it with {TOOL_CLOSE}: {target[:200]!r}")
        part = encode(said)
        ids += part
        model += [True] * len(part)
        inserted = inserter.ids(output)  # a model turn that stops at a call ends at no EOS: the whole frame
        ids += inserted
        model += [False] * len(inserted)
    part = encode(rest) + [close]
    return ids + part, model + [True] * len(part)


def sft_batch(tokenizer: Any, prompts: Sequence[Prompt], inserter: Optional[Any] = None) -> RolloutBatch:
    """Prompts (left-padded) with their targets + the closing token (the template's end of turn, else EOS) as the
    completion (right-padded, mask 1 on targets; tool outputs inserted through ``inserter``, mask 0)."""
    prompt_ids = render_prompts(tokenizer, prompts)
    close = closing_id(tokenizer)
    targets = [target_ids(tokenizer, target_text(p), close, inserter) for p in prompts]
    ids, mask = left_pad(prompt_ids, tokenizer.pad_token_id)
    width = max(len(t) for t, _ in targets)
    completion = torch.full((len(prompts), width), tokenizer.pad_token_id, dtype=torch.long)
    cmask = torch.zeros((len(prompts), width))
    context = torch.zeros((len(prompts), width))
    for i, (t, model) in enumerate(targets):
        completion[i, :len(t)] = torch.tensor(t)
        cmask[i, :len(t)] = torch.tensor(model, dtype=torch.float)
        context[i, :len(t)] = 1.0
    tools = any(not all(model) for _, model in targets)
    return RolloutBatch(ids, mask, completion, cmask, torch.zeros_like(cmask), torch.zeros(len(prompts), dtype=torch.bool),
                        [p.solution or "" for p in prompts], context_mask=context if tools else None)
