"""Built-in task where tools matter: products of multi-digit numbers, scored by `math`.

A tiny model cannot multiply 3- and 4-digit numbers in its head, but it can learn to hand the
product to the ``python`` tool and copy the answer (``rlvr-train +experiment=tiny_tools``; the
same task without tools is the control, ``+experiment=tiny_tools_notools``).

``data.products.tool_format`` decides what the prompts offer and what the supervised targets show:

- ``null``: no tool; the target answers directly, ``\\boxed{561741}``;
- ``fenced`` / ``json`` (as ``rollout.tools.call_format``): the prompt offers ``python`` (a system
  line), and the target is a tool-use trace laid out like a rollout's transcript: the call, the
  tool's output marked ``[[tool]]...[[/tool]]`` (`rlvr.rollout.multiturn.TOOL_OPEN`), then the
  boxed answer. Supervised fine-tuning inserts the marked output through the chat template's
  tool turn and trains on the model's parts only (`rlvr.learner.targets.sft_batch`).

Problem ``i`` of a split is a pure function of (seed, split, i); held-out problems never appear
in training.
"""
from __future__ import annotations

import random
from typing import Optional

from rlvr.data.schema import Prompt
from rlvr.rollout.multiturn import TOOL_CLOSE, TOOL_OPEN
from rlvr.tools.calls import render_call

__all__ = ["ProductsTask", "TOOL_OFFER", "tool_trace"]

TOOL_OFFER = "tools: python"  # the system line of prompts that offer the tool
_SPLIT_SALT = {"train": 0, "eval": 7919}


def tool_trace(expression: str, answer: str, fmt: str) -> str:
    """The supervised target that computes ``expression`` with the python tool, as a rollout's transcript."""
    call = render_call(fmt, "python", {"code": f"print({expression})"})
    return f"{call}{TOOL_OPEN}{answer}\n{TOOL_CLOSE}\\boxed{{{answer}}}"


class ProductsTask:
    """Indexable stream of ``a*b`` prompts, each operand with ``min_digits`` to ``max_digits`` digits."""

    def __init__(self, min_digits: int, max_digits: int, size: int, seed: int, split: str,
                 tool_format: Optional[str] = None, exclude: frozenset[str] = frozenset()):
        if not 1 <= min_digits <= max_digits:
            raise ValueError(f"data.products: min_digits={min_digits}, max_digits={max_digits}; "
                             f"use 1 <= min_digits <= max_digits")
        self.min_digits, self.max_digits, self.size, self.seed, self.split = min_digits, max_digits, size, seed, split
        self.tool_format, self.exclude = tool_format, exclude

    def __len__(self) -> int:
        return self.size

    def expression(self, index: int) -> str:
        for attempt in range(1000):
            rng = random.Random(f"products/{self.seed}/{_SPLIT_SALT[self.split]}/{index}/{attempt}")
            a, b = (rng.randrange(10 ** (d - 1), 10 ** d)
                    for d in (rng.randint(self.min_digits, self.max_digits) for _ in range(2)))
            text = f"{a}*{b}"
            if text not in self.exclude:
                return text
        raise ValueError("data.products has too few distinct problems outside the held-out set; "
                         "raise data.products.max_digits or lower data.eval_size")

    def __getitem__(self, index: int) -> Prompt:
        if not 0 <= index < self.size:
            raise IndexError(f"{self.split} problem {index} outside 0..{self.size - 1}")
        text = self.expression(index)
        a, b = text.split("*")
        answer = str(int(a) * int(b))
        messages: tuple[dict, ...] = ({"role": "user", "content": text},)
        if self.tool_format is None:
            solution = f"\\boxed{{{answer}}}"
        else:
            messages = ({"role": "system", "content": TOOL_OFFER},) + messages
            solution = tool_trace(text, answer, self.tool_format)
        return Prompt(messages=messages, verifier="math", reference=answer, solution=solution,
                      uid=f"{self.split}-{index}")


def build_prompt_sets(cfg) -> tuple[ProductsTask, ProductsTask]:
    """``data.source=products``: (training stream, held-out set); held-out problems never appear in training."""
    p = cfg.products
    held_out = ProductsTask(p.min_digits, p.max_digits, cfg.eval_size, p.seed, "eval", p.tool_format)
    exclude = frozenset(held_out.expression(i) for i in range(len(held_out)))
    return ProductsTask(p.min_digits, p.max_digits, p.num_train, p.seed, "train", p.tool_format, exclude), held_out
