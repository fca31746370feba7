"""Prompt -> token ids through the tokenizer's chat template, and the load-time length check.

`encode_prompt` renders one prompt for generation (generation prompt appended).
`LengthChecked` wraps a prompt set after measuring every prompt once, in batches,
when the data is loaded: a prompt over ``data.max_prompt_tokens`` is an error naming
the row (``data.on_long_prompt=error``) or is dropped and counted (``drop``), so no
over-long prompt is found mid-run. Only lengths are kept, never the token ids, and a
prompt repeated in the data (generated tasks repeat many) is rendered once.
"""
from __future__ import annotations

from typing import Any, Sequence

from rlvr.data.schema import Prompt
from rlvr.errors import UserError

__all__ = ["encode_prompt", "render_prompts", "LengthChecked", "DataError", "needs_chat_template"]

_BATCH = 4096


class DataError(UserError, ValueError):
    """The data cannot be used as configured; the message names the row and the fix."""


def needs_chat_template(prompt: Prompt) -> bool:
    """More than one message or a non-user role only makes sense through a chat template."""
    return len(prompt.messages) > 1 or prompt.messages[0]["role"] != "user"


def render_prompts(tokenizer: Any, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each prompt ready for generation (batched tokenization)."""
    if getattr(tokenizer, "chat_template", None):
        conversations = [[dict(m) for m in p.messages] for p in prompts]
        texts = tokenizer.apply_chat_template(conversations, add_generation_prompt=True, tokenize=False)
        return tokenizer(texts, add_special_tokens=False)["input_ids"]
    for p in prompts:
        if needs_chat_template(p):
            raise DataError(f"prompt {p.uid} has chat messages ({len(p.messages)} turns) but the tokenizer has no "
                            f"chat template; add one to the model's tokenizer_config.json (chat_template) or use "
                            f"plain prompt text")
    return tokenizer(["\n\n".join(m["content"] for m in p.messages) for p in prompts],
                     add_special_tokens=True)["input_ids"]


def encode_prompt(tokenizer: Any, prompt: Prompt, max_tokens: int) -> list[int]:
    """Token ids of `prompt` ready for generation (generation prompt appended)."""
    ids = list(render_prompts(tokenizer, [prompt])[0])
    if len(ids) > max_tokens:
        raise DataError(f"prompt {prompt.uid} has {len(ids)} tokens > data.max_prompt_tokens={max_tokens}; "
                        f"raise data.max_prompt_tokens or set data.on_long_prompt=drop")
    return ids


class LengthChecked:
    """The prompts of ``prompts`` within ``max_tokens``, measured once at load time."""

    def __init__(self, prompts: Any, tokenizer: Any, max_tokens: int, on_long: str, name: str):
        self.prompts, self.name = prompts, name
        self.keep: list[int] = []
        self.dropped, self.longest = 0, 0
        self.verifiers: set[str] = set()  # verifier names the kept rows ask for (checked before training)
        self.without_reference: list[str] = []  # uids of kept rows that have no reference (first few)
        measured: dict[int, int] = {}  # hash of a prompt's messages -> its length: generated tasks repeat prompts
        for start in range(0, len(prompts), _BATCH):
            chunk = [prompts[i] for i in range(start, min(start + _BATCH, len(prompts)))]
            keys = [hash(tuple((m["role"], m["content"]) for m in p.messages)) for p in chunk]
            new = {k: p for k, p in zip(keys, chunk) if k not in measured}
            if new:
                measured.update(zip(new, map(len, render_prompts(tokenizer, list(new.values())))))
            for offset, (p, key) in enumerate(zip(chunk, keys)):
                length = measured[key]
                self.longest = max(self.longest, length)
                if length <= max_tokens:
                    self.keep.append(start + offset)
                    self.verifiers.add(p.verifier)
                    if p.reference is None and p.verifier != "none" and len(self.without_reference) < 3:
                        self.without_reference.append(p.uid)
                elif on_long == "drop":
                    self.dropped += 1
                else:
                    raise DataError(f"{name} prompt {p.uid} has {length} tokens > data.max_prompt_tokens="
                                    f"{max_tokens}; raise data.max_prompt_tokens or set data.on_long_prompt=drop")
        if not self.keep:
            raise DataError(f"every {name} prompt is longer than data.max_prompt_tokens={max_tokens} (longest "
                            f"{self.longest}); raise data.max_prompt_tokens")

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, index: int) -> Prompt:
        return self.prompts[self.keep[index]]

    def describe(self) -> str:
        dropped = f", {self.dropped} dropped as longer than data.max_prompt_tokens" if self.dropped else ""
        return f"{self.name}: {len(self)} prompts (longest {self.longest} tokens{dropped})"
