"""Built-in offline task: write a small Python function, scored by the `code` verifier.

Problem ``i`` of a stream is a pure function of (seed, split, i), like `arithmetic`;
held-out problems come from their own seed and are excluded (by prompt text) from the
training stream. Each row is routed to ``code`` with a ``call``-harness reference of
``num_cases`` argument tuples whose expected values are computed here, by the plain
Python functions in `OPS` (never by running the solution), and carries a fenced
solution for the supervised warm-up:

    Write a Python function add(v) that returns v plus 25.
    ```python
    def add(v):
        return v + 25
    ```

Each difficulty adds operations to the ones below it:

    difficulty 1: x + k
    difficulty 2: x - k, x * k
    difficulty 3: two arguments (sum, difference, product, larger, smaller) and abs(x - k)
    difficulty 4: two steps: x * k + m, (x + k) * m, x * x + k
    difficulty 5: lists: sum, largest, smallest, length, sum plus k, sorted
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable

from rlvr.data.schema import Prompt

__all__ = ["CodingTask", "Op", "OPS", "LEVELS"]

NAMES = ("f", "g", "h", "add", "calc", "step")
SCALARS = ("x", "n", "y", "v")
PAIRS = (("a", "b"), ("x", "y"), ("m", "n"), ("p", "q"))
LISTS = ("xs", "nums", "vals")


@dataclass(frozen=True)
class Op:
    """One kind of function: the words of the prompt, the code, and the truth as a Python function."""

    phrase: str  # with {0}, {1} for argument names and {k}, {m} for constants
    code: str  # the returned expression, same placeholders
    fn: Callable[..., Any]  # (args..., k, m) -> expected return value
    arity: str = "scalar"  # scalar | pair | list: which argument names and test values
    k: tuple[int, int] = (1, 49)  # range of the constant k (inclusive)
    m: tuple[int, int] = (0, 0)  # range of the second constant m


OPS = {
    "plus": Op("{0} plus {k}", "{0} + {k}", lambda x, k, m: x + k),
    "minus": Op("{0} minus {k}", "{0} - {k}", lambda x, k, m: x - k),
    "times": Op("{0} times {k}", "{0} * {k}", lambda x, k, m: x * k, k=(2, 12)),
    "sum2": Op("the sum of {0} and {1}", "{0} + {1}", lambda a, b, k, m: a + b, "pair"),
    "diff2": Op("{0} minus {1}", "{0} - {1}", lambda a, b, k, m: a - b, "pair"),
    "prod2": Op("the product of {0} and {1}", "{0} * {1}", lambda a, b, k, m: a * b, "pair"),
    "max2": Op("the larger of {0} and {1}", "max({0}, {1})", lambda a, b, k, m: max(a, b), "pair"),
    "min2": Op("the smaller of {0} and {1}", "min({0}, {1})", lambda a, b, k, m: min(a, b), "pair"),
    "absdiff": Op("the absolute value of {0} minus {k}", "abs({0} - {k})", lambda x, k, m: abs(x - k), k=(1, 20)),
    "affine": Op("{0} times {k} plus {m}", "{0} * {k} + {m}", lambda x, k, m: x * k + m, k=(2, 9), m=(1, 20)),
    "shifted": Op("{0} plus {k}, times {m}", "({0} + {k}) * {m}", lambda x, k, m: (x + k) * m, k=(1, 20), m=(2, 9)),
    "square": Op("{0} squared plus {k}", "{0} * {0} + {k}", lambda x, k, m: x * x + k, k=(1, 20)),
    "lsum": Op("the sum of {0}", "sum({0})", lambda xs, k, m: sum(xs), "list"),
    "lmax": Op("the largest item of {0}", "max({0})", lambda xs, k, m: max(xs), "list"),
    "lmin": Op("the smallest item of {0}", "min({0})", lambda xs, k, m: min(xs), "list"),
    "llen": Op("the length of {0}", "len({0})", lambda xs, k, m: len(xs), "list"),
    "lsumk": Op("the sum of {0} plus {k}", "sum({0}) + {k}", lambda xs, k, m: sum(xs) + k, "list", k=(1, 20)),
    "lsorted": Op("{0} sorted", "sorted({0})", lambda xs, k, m: sorted(xs), "list"),
}
_NEW_AT = {1: ("plus",), 2: ("minus", "times"), 3: ("sum2", "diff2", "prod2", "max2", "min2", "absdiff"),
           4: ("affine", "shifted", "square"), 5: ("lsum", "lmax", "lmin", "llen", "lsumk", "lsorted")}
LEVELS = {d: tuple(op for level in range(1, d + 1) for op in _NEW_AT[level]) for d in _NEW_AT}
_SPLIT_SALT = {"train": 0, "eval": 7919}


@dataclass(frozen=True)
class Problem:
    name: str
    params: tuple[str, ...]
    op: Op
    k: int
    m: int

    @property
    def prompt(self) -> str:
        phrase = self.op.phrase.format(*self.params, k=self.k, m=self.m)
        return f"Write a Python function {self.name}({', '.join(self.params)}) that returns {phrase}."

    @property
    def solution(self) -> str:
        body = self.op.code.format(*self.params, k=self.k, m=self.m)
        return f"```python\ndef {self.name}({', '.join(self.params)}):\n    return {body}\n```"


def _value(rng: random.Random) -> int:
    return rng.randint(-20, 20)


# arity -> (argument names, one test case's arguments)
_ARITIES: dict[str, tuple[Callable[[random.Random], tuple[str, ...]], Callable[[random.Random], list[Any]]]] = {
    "scalar": (lambda rng: (rng.choice(SCALARS),), lambda rng: [_value(rng)]),
    "pair": (lambda rng: rng.choice(PAIRS), lambda rng: [_value(rng), _value(rng)]),
    "list": (lambda rng: (rng.choice(LISTS),), lambda rng: [[_value(rng) for _ in range(rng.randint(1, 5))]]),
}


def _draw_problem(rng: random.Random, ops: tuple[str, ...]) -> Problem:
    op = OPS[rng.choice(ops)]
    params = _ARITIES[op.arity][0](rng)
    return Problem(rng.choice(NAMES), tuple(params), op, rng.randint(*op.k), rng.randint(*op.m))


class CodingTask:
    """Indexable stream of function-writing prompts for one split."""

    def __init__(self, difficulty: int, size: int, seed: int, split: str, num_cases: int = 4,
                 exclude: frozenset[str] = frozenset()):
        if difficulty not in LEVELS:
            raise ValueError(f"data.coding.difficulty={difficulty}; choose one of {sorted(LEVELS)}")
        if num_cases < 1:
            raise ValueError(f"data.coding.num_cases={num_cases}; use 1 or more test cases per problem")
        self.ops, self.size, self.seed, self.split = LEVELS[difficulty], size, seed, split
        self.num_cases, self.exclude = num_cases, exclude

    def __len__(self) -> int:
        return self.size

    def _rng(self, index: int, attempt: int) -> random.Random:
        return random.Random(f"code/{self.seed}/{_SPLIT_SALT[self.split]}/{index}/{attempt}")

    def problem(self, index: int) -> tuple[Problem, random.Random]:
        """The problem for `index` (skipping excluded prompts) and the random stream of its test cases."""
        for attempt in range(1000):
            rng = self._rng(index, attempt)
            problem = _draw_problem(rng, self.ops)
            if problem.prompt not in self.exclude:
                return problem, rng
        raise ValueError("too few distinct coding problems outside the held-out set; "
                         "lower data.eval_size or raise data.coding.difficulty")

    def prompt_text(self, index: int) -> str:
        return self.problem(index)[0].prompt

    def __getitem__(self, index: int) -> Prompt:
        if not 0 <= index < self.size:
            raise IndexError(f"{self.split} problem {index} outside 0..{self.size - 1}")
        problem, rng = self.problem(index)
        cases = []
        for _ in range(self.num_cases):
            args = _ARITIES[problem.op.arity][1](rng)
            cases.append({"args": args, "expected": problem.op.fn(*args, problem.k, problem.m)})
        reference = {"kind": "call", "entry_point": problem.name, "cases": cases}
        return Prompt(messages=({"role": "user", "content": problem.prompt},), verifier="code",
                      reference=reference, solution=problem.solution, uid=f"{self.split}-{index}")
