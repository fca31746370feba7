"""Pairs -> token ids, once, and micro-batches of padded sequences.

Each answer is rendered after its context with `rlvr.rewards.model.render_pair` (the
tokenizer's chat template, or the plain "\\n\\n" join when it has none), exactly as the
reward-model *source* renders completions when it scores them later. Inputs over the
token budget keep their end (the answer, where the score is read), and are counted.
`collate` pads on either side and derives position ids from the attention mask, so a
sequence's score does not depend on how much padding its batch needs or on which side.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from rlvr.data.schema import Prompt
from rlvr.preference import Pair, PreferenceSet, prompt_key
from rlvr.rewards.model import render_pair

__all__ = ["EncodedPairs", "encode_pairs", "collate", "render_answer"]

_CHUNK = 1024


def render_answer(tokenizer: Any, pair: Pair, answer: str) -> str:
    prompt = Prompt(messages=tuple(pair.messages), verifier="none", reference=None, uid=pair.uid)
    return render_pair(tokenizer, prompt, answer)


@dataclass
class EncodedPairs:
    """One preference set, tokenized: chosen and rejected ids, data margins and answer lengths."""

    chosen: list[list[int]]
    rejected: list[list[int]]
    margins: torch.Tensor  # [N] the data's margins
    chosen_chars: torch.Tensor  # [N] answer lengths in characters (the length-bias metrics)
    rejected_chars: torch.Tensor  # [N]
    truncated: int  # inputs (answers) cut to the token budget, keeping their end
    longest: int  # longest input in tokens before truncation
    groups: list[list[int]]  # pair indices sharing one prompt (context), in first-seen order

    def __len__(self) -> int:
        return len(self.chosen)


def _tokenize(tokenizer: Any, texts: list[str], max_tokens: int) -> tuple[list[list[int]], int, int]:
    ids, truncated, longest = [], 0, 0
    for start in range(0, len(texts), _CHUNK):
        for row in tokenizer(texts[start:start + _CHUNK], add_special_tokens=False)["input_ids"]:
            longest = max(longest, len(row))
            if len(row) > max_tokens:
                truncated += 1
                row = row[-max_tokens:]
            ids.append(list(row))
    return ids, truncated, longest


def encode_pairs(tokenizer: Any, pairs: PreferenceSet | Sequence[Pair], max_tokens: int) -> EncodedPairs:
    items = pairs.pairs if isinstance(pairs, PreferenceSet) else list(pairs)
    chosen, t_c, l_c = _tokenize(tokenizer, [render_answer(tokenizer, p, p.chosen) for p in items], max_tokens)
    rejected, t_r, l_r = _tokenize(tokenizer, [render_answer(tokenizer, p, p.rejected) for p in items], max_tokens)
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(items):
        groups.setdefault(prompt_key(p), []).append(i)
    return EncodedPairs(chosen, rejected, torch.tensor([p.margin for p in items], dtype=torch.float32),
                        torch.tensor([len(p.chosen) for p in items], dtype=torch.float32),
                        torch.tensor([len(p.rejected) for p in items], dtype=torch.float32),
                        t_c + t_r, max(l_c, l_r), list(groups.values()))


def collate(sequences: Sequence[Sequence[int]], pad_id: int, side: str = "right",
            pad_to: int = 0) -> dict[str, torch.Tensor]:
    """Padded ``input_ids``, ``attention_mask`` and mask-derived ``position_ids`` (0 at each first real token)."""
    width = max([len(s) for s in sequences] + [pad_to])
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        span = slice(width - len(seq), width) if side == "left" else slice(0, len(seq))
        ids[i, span] = torch.tensor(seq, dtype=torch.long)
        mask[i, span] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
