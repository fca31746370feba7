"""The chat template's tool-response turn, as the token ids a rollout inserts.

The template is asked once how it renders a tool's answer after an assistant turn: it renders
``user, assistant(MARK), tool(OUT)`` with the generation prompt, and the text between MARK and
OUT (the assistant's end of turn, the tool's header) and after OUT (the tool's end of turn, the
next assistant header) frame every output. With ChatML templates (Qwen2.5) that is
``<|im_end|>\\n<|im_start|>user\\n<tool_response>\\n`` ... ``\\n</tool_response><|im_end|>\\n<|im_start|>assistant\\n``.

The inserted text is tokenized on its own and appended to the exact ids the model sampled:
nothing sampled is ever decoded and re-encoded. When the model's turn already ended at the
end-of-turn id the frame starts with, that id is not inserted twice.

A tool's output is untrusted text: a cell that prints ``<|im_end|>`` (or the tiny template's
``<|end|>``) must not insert that special token, which would close the tool's turn early and let
the output open a turn of its own. The output alone is tokenized with ``split_special_tokens``
(special tokens' text spelled out in ordinary ids) where the tokenizer supports it; elsewhere
the special tokens' text is removed from the output first. The frame keeps its real tokens.

A template that has no tool role (rendering fails, or renders the output nowhere) needs
``rollout.tools.response_format`` (a string with ``{output}``); without one the run stops at
start-up with one line.
"""
from __future__ import annotations

from typing import Any, Optional

from rlvr.errors import UserError

__all__ = ["Inserter", "NoToolFormat"]

_MARK, _OUT = "\x00MODELTURN\x00", "\x00TOOLOUTPUT\x00"


class NoToolFormat(UserError, ValueError):
    """The tokenizer's chat template cannot render a tool's answer."""


class Inserter:
    def __init__(self, tokenizer: Any, response_format: Optional[str] = None, role: str = "tool"):
        self.tokenizer = tokenizer
        if response_format is not None:
            if "{output}" not in response_format:
                raise NoToolFormat(f"rollout.tools.response_format must contain {{output}}: {response_format!r}")
            self.before, _, self.after = response_format.partition("{output}")
        else:
            self.before, self.after = self._probe(tokenizer, role)
        self.before_ids = self.encode(self.before)
        self.after_ids = self.encode(self.after)
        self.specials = _special_tokens(tokenizer)
        self.split_specials = bool(self.specials) and _splits_specials(tokenizer, self.specials)

    @staticmethod
    def _probe(tokenizer: Any, role: str) -> tuple[str, str]:
        fix = ("set rollout.tools.response_format to the text that frames a tool's output, e.g. "
               "'<|end|><|tool|>{output}<|end|><|assistant|>'")
        if not getattr(tokenizer, "chat_template", None):
            raise NoToolFormat(f"the tokenizer has no chat template, so no tool-response format; {fix}")
        messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": _MARK},
                    {"role": role, "content": _OUT}]
        try:
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as e:  # templates raise for roles they do not know
            raise NoToolFormat(f"the chat template cannot render a {role!r} message ({e}); {fix}") from None
        if _MARK not in text or _OUT not in text or text.index(_OUT) < text.index(_MARK):
            raise NoToolFormat(f"the chat template does not render a {role!r} message after an assistant turn; {fix}")
        between = text[text.index(_MARK) + len(_MARK):]
        before, _, after = between.partition(_OUT)
        return before, after

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    def encode_output(self, output: str) -> list[int]:
        """A tool's output as ordinary ids: never a special token, whatever text it holds."""
        if not output or not self.specials:
            return self.encode(output)
        if self.split_specials:
            return list(self.tokenizer(output, add_special_tokens=False, split_special_tokens=True)["input_ids"])
        while any(s in output for s in self.specials):  # removing one may join the text of another
            for special in self.specials:
                output = output.replace(special, "")
        return self.encode(output)

    def ids(self, output: str, last_sampled: Optional[int] = None) -> list[int]:
        """The ids framing ``output``; the frame's leading id is dropped when the model just sampled it."""
        before = self.before_ids
        if before and last_sampled is not None and before[0] == last_sampled:
            before = before[1:]
        return before + self.encode_output(output) + self.after_ids

    def frame_len(self) -> int:
        return len(self.before_ids) + len(self.after_ids)


def _special_tokens(tokenizer: Any) -> tuple[str, ...]:
    """The text of every special token (the template's turn markers, end of sequence, padding)."""
    found = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    found.update(getattr(t, "content", str(t)) for t in added.values() if getattr(t, "special", False))
    return tuple(sorted((t for t in found if t), key=len, reverse=True))


def _splits_specials(tokenizer: Any, specials: tuple[str, ...]) -> bool:
    """Whether ``split_special_tokens=True`` really spells special tokens out with this tokenizer."""
    special_ids = set(getattr(tokenizer, "all_special_ids", ()) or ())
    special_ids.update(i for i, t in (getattr(tokenizer, "added_tokens_decoder", None) or {}).items()
                       if getattr(t, "special", False))
    try:
        ids = tokenizer("".join(specials), add_special_tokens=False, split_special_tokens=True)["input_ids"]
    except (TypeError, ValueError):  # an older or custom tokenizer without the option
        return False
    return bool(ids) and not special_ids.intersection(ids)
