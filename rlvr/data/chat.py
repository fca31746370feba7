"""Prompt -> token ids through the tokenizer's chat template, and the load-time length check.

`chat_texts` is the one place a chat template is applied (prompts for rollouts, evaluation
and supervised targets here; reward-model inputs in `rlvr.rewards.model`). A template that
rejects a system role (Gemma's "System role not supported") gets the system prompt folded
into the first user turn, said once; a template that still cannot render a conversation is
one `DataError` line naming ``data.chat_template``, never a Jinja traceback. Without a
template (the tokenizer has none, or ``data.chat_template=none``) a prompt is its raw text:
the system prompt, if any, then the user's message, joined by a blank line.
`render_prompts` renders prompts for generation (generation prompt appended).
`encode_prompt` renders one prompt for generation (generation prompt appended).
`LengthChecked` wraps a prompt set after measuring every prompt once, in batches,
when the data is loaded: a prompt over ``data.max_prompt_tokens`` is an error naming
the row (``data.on_long_prompt=error``) or is dropped and counted (``drop``), so no
over-long prompt is found mid-run. Only lengths are kept, never the token ids, and a
prompt repeated in the data (generated tasks repeat many) is rendered once.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

from rlvr.data.schema import Prompt
from rlvr.errors import UserError

__all__ = ["encode_prompt", "render_prompts", "chat_texts", "fold_system", "LengthChecked", "DataError",
           "needs_chat_template"]

_BATCH = 4096
_FOLDING: set[str] = set()  # templates found to reject a system role: later calls fold straight away


class DataError(UserError, ValueError):
    """The data cannot be used as configured; the message names the row and the fix."""


def needs_chat_template(prompt: Prompt) -> bool:
    """Earlier turns (an assistant message, several user messages) only make sense through a chat template; a
    system prompt before one user message does not (raw text prepends it)."""
    roles = [m["role"] for m in prompt.messages]
    return roles not in (["user"], ["system", "user"])


def fold_system(conversation: Sequence[dict]) -> list[dict]:
    """The conversation without system messages: their text opens the first user turn (a blank line between)."""
    system = [m["content"] for m in conversation if m["role"] == "system"]
    rest = [dict(m) for m in conversation if m["role"] != "system"]
    if not system:
        return rest
    first = next((m for m in rest if m["role"] == "user"), None)
    if first is None:
        return [{"role": "user", "content": "\n\n".join(system)}] + rest
    first["content"] = "\n\n".join(system + [first["content"]])
    return rest


def _template_errors() -> tuple[type[BaseException], ...]:
    from jinja2 import TemplateError

    return (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError)


def _apply(tokenizer: Any, conversations: list[list[dict]], add_generation_prompt: bool) -> list[str]:
    tools = getattr(tokenizer, TOOLS_ATTR, None)  # the offered tools' declarations (`declare_tools`)
    extra = {"tools": tools} if tools else {}
    return tokenizer.apply_chat_template(conversations, add_generation_prompt=add_generation_prompt, tokenize=False,
                                         **extra)


TOOLS_ATTR = "rlvr_tools"


def declare_tools(tokenizer: Any, tools: Any) -> None:
    """Every prompt this tokenizer renders declares the tools ``rollout.tools`` offers (the template's ``tools``
    list, as ``apply_chat_template(tools=...)`` passes it; templates without a tool list ignore it), so training,
    evaluation and the supervised warm-up all show the model the same tool list."""
    if tools.names and tools.in_prompt:
        from rlvr.tools.base import tool_schemas

        setattr(tokenizer, TOOLS_ATTR, tool_schemas(list(tools.names)))


def chat_texts(tokenizer: Any, conversations: Sequence[Sequence[dict]], add_generation_prompt: bool,
               uids: Optional[Sequence[str]] = None) -> list[str]:
    """``conversations`` rendered by the tokenizer's chat template (which it must have); system prompts folded into
    the first user turn where the template rejects a system role; a `DataError` naming ``data.chat_template`` (and
    the first row, ``uids``, it fails on) when it cannot render them."""
    template, errors = tokenizer.chat_template, _template_errors()
    convs = [[dict(m) for m in c] for c in conversations]
    has_system = any(m["role"] == "system" for c in convs for m in c)
    if not (has_system and template in _FOLDING):
        try:
            return _apply(tokenizer, convs, add_generation_prompt)
        except errors:
            if not has_system:
                _raise_for_first_failure(tokenizer, convs, add_generation_prompt, uids, folded=False)
    folded = [fold_system(c) for c in convs]
    try:
        texts = _apply(tokenizer, folded, add_generation_prompt)
    except errors:
        _raise_for_first_failure(tokenizer, folded, add_generation_prompt, uids, folded=True)
    if template not in _FOLDING:
        _FOLDING.add(template)
        print("data: the chat template rejects a system role; the system prompt is folded into the first user turn",
              flush=True)
    return texts


def _raise_for_first_failure(tokenizer: Any, convs: list[list[dict]], add_generation_prompt: bool,
                             uids: Optional[Sequence[str]], folded: bool) -> None:
    """Find the first conversation the template cannot render and raise a one-line `DataError` about it."""
    errors = _template_errors()
    for i, conv in enumerate(convs):
        try:
            _apply(tokenizer, [conv], add_generation_prompt)
        except errors as exc:
            from jinja2 import TemplateSyntaxError

            lines = str(exc).strip().splitlines()
            reason = f"{type(exc).__name__}: {lines[0].rstrip('.')}" if lines else type(exc).__name__
            if isinstance(exc, TemplateSyntaxError):
                raise DataError(f"data.chat_template: the chat template is not valid Jinja ({reason}, line "
                                f"{exc.lineno}); fix it, or set data.chat_template to auto (the tokenizer's own), "
                                f"none (raw prompt text) or another Jinja file") from None
            what = f"prompt {uids[i]}" if uids is not None else f"conversation {i}"
            fold = " even with the system prompt folded into the first user turn" if folded else ""
            raise DataError(f"data.chat_template: the chat template cannot render {what} ({reason}){fold}; set "
                            f"data.chat_template to a Jinja file that accepts these messages, or none for raw "
                            f"prompt text") from None
    raise DataError("data.chat_template: the chat template cannot render this batch of conversations, though it "
                    "renders each alone; set data.chat_template to another Jinja file, or none for raw prompt text")


def render_prompts(tokenizer: Any, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each prompt ready for generation (batched tokenization): through the chat template, or the raw
    text (system prompt, blank line, user message) when the tokenizer has none."""
    if getattr(tokenizer, "chat_template", None):
        texts = chat_texts(tokenizer, [p.messages for p in prompts], True, [p.uid for p in prompts])
        return tokenizer(texts, add_special_tokens=False)["input_ids"]
    for p in prompts:
        if needs_chat_template(p):
            raise DataError(f"prompt {p.uid} has earlier chat turns ({len(p.messages)} messages) but the tokenizer has "
                            f"no chat template (or data.chat_template=none); add one to the model's "
                            f"tokenizer_config.json (chat_template), set data.chat_template to a Jinja file, or use "
                            f"single-turn prompts")
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

    @property
    def trace_version(self) -> Optional[str]:
        """The wrapped source's `trace_version` (part of the cached warm-up's key; see `rlvr.sft.run.warm_up`)."""
        return getattr(self.prompts, "trace_version", None)

    def describe(self) -> str:
        dropped = f", {self.dropped} dropped as longer than data.max_prompt_tokens" if self.dropped else ""
        return f"{self.name}: {len(self)} prompts (longest {self.longest} tokens{dropped})"
