"""Which token ids end a sequence: one answer for generation, masks and supervised targets.

A model says "I am done" in more than one way. Llama 3.x Instruct ends a turn with
``<|eot_id|>`` but also stops at ``<|eom_id|>`` and ``<|end_of_text|>`` (its
``generation_config.eos_token_id`` is a list); a Qwen2.5 tokenizer's EOS is ``<|endoftext|>``
while its chat template closes every assistant turn with ``<|im_end|>``. Each of these is a
finish, never a truncation, so every place that stops, masks or closes a target asks here:

- `end_of_turn_id`: the special token the chat template writes right after an assistant
  message's content (found by rendering a one-turn conversation), or None.
- `end_of_sequence_ids`: the union of the generation config's ``eos_token_id`` (an int or a
  list), the tokenizer's EOS and that end of turn (engines stop and mask on any of them).
- `closing_id`: the token a supervised target ends with: the template's end of turn, or EOS
  when there is no template (or it writes none).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

__all__ = ["end_of_turn_id", "end_of_sequence_ids", "closing_id"]

_MARK = "rlvr-end-of-turn-probe"  # plain text no template writes itself


def _special_ids(tokenizer: Any) -> set[int]:
    ids = set(getattr(tokenizer, "all_special_ids", None) or ())
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids.update(i for i, token in added.items() if getattr(token, "special", False))
    return ids


def end_of_turn_id(tokenizer: Any) -> Optional[int]:
    """The first special token the chat template writes after an assistant turn's content; None without a
    template, or when the template writes none there (or cannot render a plain user/assistant turn)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    conversation = [{"role": "user", "content": "1+1"}, {"role": "assistant", "content": _MARK}]
    try:
        text = tokenizer.apply_chat_template(conversation, tokenize=False)
    except Exception:  # a template that cannot render this turn says nothing about its end (rendering prompts will)
        return None
    if not isinstance(text, str) or _MARK not in text:
        return None
    tail = tokenizer(text[text.rindex(_MARK) + len(_MARK):], add_special_tokens=False)["input_ids"]
    special = _special_ids(tokenizer)
    return next((int(i) for i in tail if i in special), None)


def _as_ids(value: Any) -> Iterable[int]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    return (int(v) for v in value)


def end_of_sequence_ids(tokenizer: Any, generation_config: Any = None) -> frozenset[int]:
    """Every id that ends a completion: ``generation_config.eos_token_id`` (int or list), the tokenizer's EOS and
    the chat template's end of turn."""
    ids = set(_as_ids(getattr(generation_config, "eos_token_id", None)))
    ids.update(_as_ids(getattr(tokenizer, "eos_token_id", None)))
    ids.update(_as_ids(end_of_turn_id(tokenizer)))
    return frozenset(ids)


def closing_id(tokenizer: Any) -> int:
    """The id a supervised target (SFT, DPO answers, the pretraining mix) ends with: the template's end of turn,
    else the tokenizer's EOS."""
    turn = end_of_turn_id(tokenizer)
    return turn if turn is not None else tokenizer.eos_token_id
