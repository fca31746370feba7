"""The chat template's tool-response turn, as the token ids a rollout inserts.

The template is asked once how it renders a tool's answer after an assistant turn: it renders
``user, assistant(MARK), tool(OUT)`` with the generation prompt, and the text between MARK and
OUT (the assistant's end of turn, the tool's header) and after OUT (the tool's end of turn, the
next assistant header) frame every output. With ChatML templates (Qwen2.5) that is
``<|im_end|>\\n<|im_start|>user\\n<tool_response>\\n`` ... ``\\n</tool_response><|im_end|>\\n<|im_start|>assistant\\n``.

The inserted text is tokenized on its own and appended to the exact ids the model sampled:
nothing sampled is ever decoded and re-encoded. When the model's turn already ended at the
end-of-turn id the frame starts with, that id is not inserted twice.

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

    def ids(self, output: str, last_sampled: Optional[int] = None) -> list[int]:
        """The ids framing ``output``; the frame's leading id is dropped when the model just sampled it."""
        before = self.before_ids
        if before and last_sampled is not None and before[0] == last_sampled:
            before = before[1:]
        return before + self.encode(output) + self.after_ids

    def frame_len(self) -> int:
        return len(self.before_ids) + len(self.after_ids)
