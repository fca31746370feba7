"""Built-in offline task: integer arithmetic with a difficulty knob, scored by `math`.

Problem ``i`` of a stream is a pure function of (seed, split, i), so any position in
the stream can be regenerated after a resume. Held-out problems come from their own
seed and are excluded from the training stream, so evaluation never sees training data.

    difficulty 1: a + b,            one-digit operands
    difficulty 2: a + b,            a up to two digits, b one digit (the carry is the hard part)
    difficulty 3: a + b,            two-digit operands
    difficulty 4: a +/- b,          two-digit operands
    difficulty 5: a +/- b +/- c,    two-digit operands
    difficulty 6: a +/- b,          three-digit operands
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from rlvr.data.schema import Prompt

__all__ = ["ArithmeticTask", "LEVELS"]


@dataclass(frozen=True)
class Level:
    digits: tuple[int, ...]  # maximum digits of each operand
    operators: str

    @property
    def terms(self) -> int:
        return len(self.digits)


LEVELS = {1: Level((1, 1), "+"), 2: Level((2, 1), "+"), 3: Level((2, 2), "+"), 4: Level((2, 2), "+-"),
          5: Level((2, 2, 2), "+-"), 6: Level((3, 3), "+-")}
_SPLIT_SALT = {"train": 0, "eval": 7919}


class ArithmeticTask:
    """Indexable stream of arithmetic prompts for one split."""

    def __init__(self, difficulty: int, size: int, seed: int, split: str, exclude: frozenset[str] = frozenset(),
                 spaced: bool = False):
        if difficulty not in LEVELS:
            raise ValueError(f"data.arithmetic.difficulty={difficulty}; choose one of {sorted(LEVELS)}")
        self.level, self.size, self.seed, self.split = LEVELS[difficulty], size, seed, split
        self.exclude, self.spaced = exclude, spaced

    def __len__(self) -> int:
        return self.size

    def expression(self, index: int) -> str:
        """The expression for `index`, skipping any that belong to the excluded set."""
        for attempt in range(1000):
            rng = random.Random(f"{self.seed}/{_SPLIT_SALT[self.split]}/{index}/{attempt}")
            lv = self.level
            terms = [str(rng.randrange(10 ** d)) for d in lv.digits]
            text = terms[0] + "".join(rng.choice(lv.operators) + t for t in terms[1:])
            if text not in self.exclude:
                return text
        raise ValueError(f"difficulty {self.level} has too few distinct problems outside the held-out set; "
                         f"lower data.eval_size or raise data.arithmetic.difficulty")

    def __getitem__(self, index: int) -> Prompt:
        if not 0 <= index < self.size:
            raise IndexError(f"{self.split} problem {index} outside 0..{self.size - 1}")
        text = self.expression(index)
        answer = str(eval(text, {"__builtins__": {}}))  # digits and +/- only: built by us above
        shown = text.replace("+", " + ").replace("-", " - ") if self.spaced else text
        return Prompt(messages=({"role": "user", "content": shown},), verifier="math", reference=answer,
                      solution=f"\\boxed{{{answer}}}", uid=f"{self.split}-{index}")
