"""Prompt -> token ids, through the tokenizer's chat template when it has one."""
from __future__ import annotations

from typing import Any

from rlvr.data.schema import Prompt

__all__ = ["encode_prompt"]


def encode_prompt(tokenizer: Any, prompt: Prompt, max_tokens: int) -> list[int]:
    """Token ids of `prompt` ready for generation (generation prompt appended)."""
    messages = [dict(m) for m in prompt.messages]
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
    else:
        text = "\n\n".join(m["content"] for m in messages)
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    ids = list(ids)
    if len(ids) > max_tokens:
        raise ValueError(f"prompt {prompt.uid} has {len(ids)} tokens > data.max_prompt_tokens={max_tokens}; "
                         f"raise data.max_prompt_tokens or filter the dataset")
    return ids
