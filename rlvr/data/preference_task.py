"""Built-in preference task: chat answers judged by a hidden, known rule (`verifiers.preference`).

Prompts are short chat questions about one of 40 simple facts (colours, opposites,
counts, capitals), in ten phrasings::

    user:      Quick one: What color is the sky?
    assistant: Hi! It is blue.                                true-preferred (score 5)
               Hello! As an AI, not sure. Glad I could help!  evasive, banned phrase, too long

An answer is ``[greeting] [disclaimer] core [fillers]``: the greeting makes it polite,
the disclaimer ("As an AI, ") is the banned phrase, a filler sentence always takes it
over the prompt's length budget (the longest greeting + the plain answer + 3
characters), and the core either answers (``It is {word}.``) or evades (``Not sure.``,
``No idea.``, ``Who knows?``). The rule (correct, clean, polite, concise; see
`verifiers.preference`) gives every answer a true score; a person prefers the higher
score, equal scores tie. The rule's correctness check is the fact itself (the right
word, no other answer of the same kind), but no generated answer states a wrong fact:
a tiny reward model learns "answers vs evades" from a few thousand pairs, while a
fact-lookup table learned from pairwise labels takes far longer than the minutes this
demonstration has (0.51-0.54 held-out accuracy after 250 steps on pairs that differed
only in the fact). A policy that drifts to a wrong fact still fails the rule.

Three things come out of the task, all pure functions of their seed:

* `ranked_rows` -- rows in the preference schema of `rlvr.preference` (``messages``,
  ``answers`` with ``rank``, ``origin``) for `rlvr-rm` / `rlvr-dpo`: K distinct answers
  whose dimensions are drawn independently (each met with probability 1/2), ranked by
  the true score. ``length_bias = p`` makes a biased labeller: with probability p a row
  is ranked by length instead (the longest answer first), the data a length-hackable
  reward model learns from. Each answer also carries its ``true_score`` (ignored by the
  loader) and each row its spec under ``reference``, so rows can be relabelled later.
* `PreferenceTask` -- the `data.source=preference` prompt set for `rlvr-train`, each
  prompt routed to the ``preference_rule`` verifier with its spec as ``reference``, and
  a ``solution`` drawn from a mixed-quality SFT distribution: three phrasings are
  answered well, each of the other seven has a *weak* dimension met only ``weak_prob``
  of the time (0.3), so the SFT model's greedy answer fails it there and is
  true-preferred on about 30% of held-out prompts while its samples still show the
  better answer often enough for RL to find it.
* a held-out split: 100 of the 400 (phrasing, fact) prompts, fixed by the task (not by
  any seed), never used for training rows or the training stream of any seed.

    python -m rlvr.data.preference_task --out rows.jsonl --n 1000 [--length-bias 0.5] [--prompts]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Optional

from rlvr.data.schema import Prompt
from verifiers.preference import DEFAULT_BANNED, DEFAULT_GREETINGS, true_score

__all__ = ["TEMPLATES", "FACTS", "GREETINGS", "FILLERS", "DISCLAIMER", "EVASIONS", "HELD_OUT_SIZE", "Style", "compose",
           "spec_of",
           "prompt_keys", "ranked_rows", "PreferenceTask", "build_prompt_sets", "main"]

# (phrasing, its weak dimension in the SFT solutions: None = answered well)
TEMPLATES: tuple[tuple[str, Optional[str]], ...] = (
    ("{q}", None),
    ("Can you help? {q}", "polite"),
    ("Quick one: {q}", "concise"),
    ("Tell me: {q}", None),
    ("Question: {q}", "clean"),
    ("Please answer: {q}", "concise"),
    ("I wonder: {q}", "polite"),
    ("Hey there. {q}", "clean"),
    ("{q} Thanks!", None),
    ("Help me out. {q}", "concise"),
)
_KINDS = {  # kind -> (question, answer) facts; wrong answers are the other answers of the same kind
    "color": (("What color is the sky?", "blue"), ("What color is grass?", "green"), ("What color is snow?", "white"),
              ("What color is coal?", "black"), ("What color is a banana?", "yellow"), ("What color is blood?", "red"),
              ("What color is a carrot?", "orange"), ("What color is a plum?", "purple"),
              ("What color is a crow?", "black"), ("What color is a lemon?", "yellow"),
              ("What color is the sea?", "blue"), ("What color is a frog?", "green")),
    "opposite": (("What is the opposite of hot?", "cold"), ("What is the opposite of up?", "down"),
                 ("What is the opposite of big?", "small"), ("What is the opposite of fast?", "slow"),
                 ("What is the opposite of day?", "night"), ("What is the opposite of wet?", "dry"),
                 ("What is the opposite of old?", "young"), ("What is the opposite of left?", "right"),
                 ("What is the opposite of open?", "shut"), ("What is the opposite of full?", "empty"),
                 ("What is the opposite of light?", "dark"), ("What is the opposite of high?", "low")),
    "count": (("How many legs has a cat?", "four"), ("How many legs has a bird?", "two"),
              ("How many legs has a spider?", "eight"), ("How many days in a week?", "seven"),
              ("How many sides has a triangle?", "three"), ("How many wheels has a bike?", "two"),
              ("How many months in a year?", "twelve"), ("How many legs has an ant?", "six")),
    "capital": (("What is the capital of France?", "Paris"), ("What is the capital of Japan?", "Tokyo"),
                ("What is the capital of Italy?", "Rome"), ("What is the capital of Spain?", "Madrid"),
                ("What is the capital of Egypt?", "Cairo"), ("What is the capital of Peru?", "Lima"),
                ("What is the capital of Kenya?", "Nairobi"), ("What is the capital of Cuba?", "Havana")),
}
# (question, answer, wrong answers): 40 facts
FACTS: tuple[tuple[str, str, tuple[str, ...]], ...] = tuple(
    (q, a, tuple(sorted({b for _, b in facts} - {a}))) for facts in _KINDS.values() for q, a in facts)
GREETINGS = ("Hi! ", "Hello! ", "Sure! ")
DISCLAIMER = "As an AI, "
EVASIONS = ("Not sure.", "No idea.", "Who knows?")  # no longer than the shortest plain answer ("It is red.")
# each at least 17 characters: over the longest budget (24) even after the shortest core (8, "No idea.")
FILLERS = (" Hope this helps!", " Glad I could help!", " Have a nice day!", " Let me know if you need more.")
HELD_OUT_SIZE = 100  # prompts reserved for evaluation (data.eval_size takes the first ones)
_SLACK = 3  # the length budget: the longest greeting + the plain answer + this many characters
_SPLIT_SALT = "preference-task/held-out/v2"
_STRONG = 0.9  # probability that an SFT solution meets a dimension that is not its phrasing's weak one


@dataclass(frozen=True)
class Style:
    """How one answer is written: which dimensions it meets and its surface choices."""

    greeting: str = ""  # "" = impolite
    disclaimer: bool = False  # the banned phrase
    evasion: int = -1  # index into EVASIONS (-1 = it answers)
    fillers: tuple[str, ...] = ()  # any filler runs over the length budget


def compose(fact: int, style: Style) -> str:
    """The answer text for fact ``fact`` written in ``style``."""
    core = f"It is {FACTS[fact][1]}." if style.evasion < 0 else EVASIONS[style.evasion % len(EVASIONS)]
    if style.disclaimer:
        core = DISCLAIMER + core[0].lower() + core[1:]
    return f"{style.greeting}{core}{''.join(style.fillers)}"


def spec_of(fact: int) -> dict[str, Any]:
    """The hidden spec of a prompt about fact ``fact`` (the ``reference`` the rule reads)."""
    _, answer, wrong = FACTS[fact]
    longest = max(len(g) for g in GREETINGS) + len(f"It is {answer}.")
    return {"answer": answer, "wrong": list(wrong), "max_chars": longest + _SLACK, "banned": list(DEFAULT_BANNED),
            "greetings": list(DEFAULT_GREETINGS)}


def _draw_style(rng: random.Random, p: dict[str, float]) -> Style:
    """A style meeting each dimension ``d`` with probability ``p[d]``, independently."""
    greeting = rng.choice(GREETINGS) if rng.random() < p["polite"] else ""
    disclaimer = rng.random() >= p["clean"]
    fillers: tuple[str, ...] = ()
    if rng.random() >= p["concise"]:
        fillers = tuple(rng.sample(FILLERS, rng.choice((1, 1, 2))))
    evasion = rng.randrange(len(EVASIONS)) if rng.random() >= p["correct"] else -1
    return Style(greeting, disclaimer, evasion, fillers)


@lru_cache(maxsize=1)
def _splits() -> tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]:
    keys = [(t, f) for t in range(len(TEMPLATES)) for f in range(len(FACTS))]
    random.Random(_SPLIT_SALT).shuffle(keys)
    return tuple(keys[HELD_OUT_SIZE:]), tuple(keys[:HELD_OUT_SIZE])


def prompt_keys(split: str) -> tuple[tuple[int, int], ...]:
    """(phrasing index, fact index) of every prompt of ``split`` (train: 300, eval: 100), in a fixed order."""
    train, held_out = _splits()
    if split not in ("train", "eval"):
        raise ValueError(f"split={split!r}; choose train or eval")
    return train if split == "train" else held_out


def _question(key: tuple[int, int]) -> str:
    t, f = key
    return TEMPLATES[t][0].format(q=FACTS[f][0])


def _ranks(values: list[float]) -> list[int]:
    """Dense ranks, 0 for the largest value; equal values share a rank."""
    order = sorted(set(values), reverse=True)
    return [order.index(v) for v in values]


def _row_answers(rng: random.Random, key: tuple[int, int], k: int) -> list[str]:
    """K distinct answers, not all tied under the rule (redrawn until so)."""
    fact = key[1]
    half = {"correct": 0.5, "clean": 0.5, "polite": 0.5, "concise": 0.5}
    spec = spec_of(fact)
    for _ in range(100):
        texts: list[str] = []
        while len(texts) < k:
            text = compose(fact, _draw_style(rng, half))
            if text not in texts:
                texts.append(text)
        if len({true_score(t, spec) for t in texts}) > 1:
            return texts
    raise RuntimeError("could not draw answers that the rule tells apart")  # unreachable for k >= 2


def ranked_rows(n: int, seed: int, answers_per_prompt: int = 4, length_bias: float = 0.0,
                split: str = "train") -> list[dict[str, Any]]:
    """``n`` ranked rows over the prompts of ``split`` (cycled in a seeded order), deterministic for a seed."""
    if answers_per_prompt < 2:
        raise ValueError(f"answers_per_prompt={answers_per_prompt}; a ranking needs at least 2 answers")
    if not 0.0 <= length_bias <= 1.0:
        raise ValueError(f"length_bias={length_bias}; it is a probability in [0, 1]")
    keys = list(prompt_keys(split))
    random.Random(f"{seed}/rows/order").shuffle(keys)
    rows = []
    for i in range(n):
        rng = random.Random(f"{seed}/rows/{split}/{i}")
        key = keys[i % len(keys)]
        spec = spec_of(key[1])
        texts = _row_answers(rng, key, answers_per_prompt)
        scores = [true_score(t, spec) for t in texts]
        biased = rng.random() < length_bias
        ranks = _ranks([float(len(t)) for t in texts] if biased else scores)
        rows.append({"id": f"pref-{split}-{seed}-{i}", "messages": [{"role": "user", "content": _question(key)}],
                     "answers": [{"text": t, "rank": r, "true_score": s} for t, r, s in zip(texts, ranks, scores)],
                     "origin": "preference_task/length_biased" if biased else "preference_task",
                     "reference": spec})
    return rows


def _sft_probs(weak: Optional[str], weak_prob: float) -> dict[str, float]:
    p = {"correct": _STRONG, "clean": _STRONG, "polite": _STRONG, "concise": _STRONG}
    if weak is not None:
        p[weak] = weak_prob
    return p


class PreferenceTask:
    """Indexable prompts of one split; item ``i`` is a pure function of (seed, split, i).

    The training split is a stream of ``size`` items cycling over the 300 training prompts
    in a seeded order, each visit with its own SFT solution; the held-out split is the
    first ``size`` held-out prompts, each with a true-preferred solution.
    """

    def __init__(self, split: str, size: int, seed: int = 0, weak_prob: float = 0.3):
        self.keys = prompt_keys(split)
        if split == "eval" and size > len(self.keys):
            raise ValueError(f"data.eval_size={size} > the task's {len(self.keys)} held-out prompts; lower it")
        if not 0.0 <= weak_prob <= 1.0:
            raise ValueError(f"data.preference.weak_prob={weak_prob}; it is a probability in [0, 1]")
        self.split, self.size, self.seed, self.weak_prob = split, size, seed, weak_prob
        self.order = list(range(len(self.keys)))
        if split == "train":
            random.Random(f"{seed}/stream/order").shuffle(self.order)

    def __len__(self) -> int:
        return self.size

    def key(self, index: int) -> tuple[int, int]:
        return self.keys[self.order[index % len(self.order)]]

    def __getitem__(self, index: int) -> Prompt:
        if not 0 <= index < self.size:
            raise IndexError(f"{self.split} prompt {index} outside 0..{self.size - 1}")
        key = self.key(index)
        t, fact = key
        if self.split == "train":
            rng = random.Random(f"{self.seed}/sft/{index}")
            solution = compose(fact, _draw_style(rng, _sft_probs(TEMPLATES[t][1], self.weak_prob)))
        else:
            solution = compose(fact, Style(greeting=GREETINGS[index % len(GREETINGS)]))
        return Prompt(messages=({"role": "user", "content": _question(key)},), verifier="preference_rule",
                      reference=spec_of(fact), solution=solution, uid=f"pref-{self.split}-{index}")


def build_prompt_sets(cfg: Any) -> tuple[PreferenceTask, PreferenceTask]:
    """`data.source=preference`: (training stream, held-out prompts) from ``data.preference``."""
    p = cfg.preference
    return (PreferenceTask("train", p.num_train, p.seed, p.weak_prob),
            PreferenceTask("eval", cfg.eval_size, p.seed, p.weak_prob))


def _prompt_row(p: Prompt) -> dict[str, Any]:
    return {"id": p.uid, "messages": [dict(m) for m in p.messages], "reference": p.reference,
            "verifier": p.verifier, "solution": p.solution}


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rlvr.data.preference_task",
                                 description="Dump the built-in preference task's rows to jsonl.")
    ap.add_argument("--out", required=True, help="output .jsonl file ('-' for stdout)")
    ap.add_argument("--n", type=int, default=100, help="rows to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("train", "eval"), default="train")
    ap.add_argument("--answers", type=int, default=4, help="answers per ranked row")
    ap.add_argument("--length-bias", type=float, default=0.0, help="probability a row is ranked by length")
    ap.add_argument("--prompts", action="store_true",
                    help="write rlvr-train prompt rows (reference, verifier, SFT solution) instead of ranked rows")
    ap.add_argument("--weak-prob", type=float, default=0.3, help="--prompts: data.preference.weak_prob")
    args = ap.parse_args(argv)
    try:
        if args.prompts:
            task = PreferenceTask(args.split, args.n, args.seed, args.weak_prob)
            rows = [_prompt_row(task[i]) for i in range(len(task))]
        else:
            rows = ranked_rows(args.n, args.seed, args.answers, args.length_bias, args.split)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
