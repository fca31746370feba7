"""The row schema every prompt source produces.

A dataset row (jsonl/json/parquet/csv, or anything `datasets.load_dataset` reads
offline) becomes a `Prompt` like this (field names are configurable under ``data.*``):

    {"prompt": "What is 2+3?",                      # or
     "messages": [{"role": "user", "content": "What is 2+3?"}],
     "reference": "5",                               # gold answer / tests, passed to the verifier
     "verifier": "math",                             # optional: else data.verifier applies to every row
     "solution": "\\boxed{5}",                       # optional: target text for the supervised warm-up
     ...}                                            # any other fields go to the verifier as **fields

``messages`` wins over ``prompt``. (``data.prompt_template`` and ``data.system_prompt``
phrase the prompts of every source, files and built-in tasks alike: see
`rlvr.data.sources.Phrased`.) A chat row whose last message is the assistant's
uses that message as its ``solution`` (the supervised target). ``reference`` may be
absent (supervised-only rows, rows scored by a reward model); a run whose verifier
needs one stops at load time naming the row. The messages are rendered with the
tokenizer's chat template when it has one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

__all__ = ["Prompt", "row_to_prompt"]


@dataclass(frozen=True)
class Prompt:
    """One training or evaluation prompt, routed to the verifier that scores it."""

    messages: tuple[Mapping[str, str], ...]
    verifier: str
    reference: Any
    solution: Optional[str] = None  # reference completion for supervised warm-up
    fields: Mapping[str, Any] = field(default_factory=dict)  # extra row fields for the verifier
    uid: str = ""  # stable identifier (dataset index) used in sample dumps


def row_to_prompt(row: Mapping[str, Any], *, uid: str, prompt_field: str, messages_field: str,
                  reference_field: str, verifier_field: str, default_verifier: str) -> Prompt:
    """Map one dataset row onto `Prompt`; a row without a prompt is an error."""
    if row.get(messages_field):
        messages = tuple({"role": str(m["role"]), "content": str(m["content"])} for m in row[messages_field])
    elif row.get(prompt_field) is not None:
        messages = ({"role": "user", "content": str(row[prompt_field])},)
    else:
        raise ValueError(f"row {uid}: neither {messages_field!r} nor {prompt_field!r} is set; "
                         f"set data.prompt_field / data.messages_field to the dataset's column names")
    solution = row.get("solution")
    if messages[-1]["role"] == "assistant":  # a chat row ending in an answer: that answer is the SFT target
        solution = messages[-1]["content"] if solution is None else solution
        messages = messages[:-1]
        if not messages:
            raise ValueError(f"row {uid}: {messages_field!r} holds only an assistant message; add the user turn")
    used = {prompt_field, messages_field, reference_field, verifier_field, "solution"}
    extra = {k: v for k, v in row.items() if k not in used}
    return Prompt(messages=messages, verifier=str(row.get(verifier_field) or default_verifier),
                  reference=row.get(reference_field), solution=solution, fields=extra, uid=uid)
