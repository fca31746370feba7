"""`data.source=judge_pairs`: preference pairs -> judge prompts, for training a reasoning reward model with RLVR.

Each pair (a context, a chosen and a rejected answer) becomes two prompts, one per answer
order: chosen first (the preferred letter is ``A``) and chosen second (``B``). Both orders
of every pair are used, in training and in the held-out set, so a judge that favours a
position is measured (the summary's per-order agreement) and its bias earns no reward.
The prompt (one user message; ``data.judge_pairs.instruction`` is its first line)::

    Which answer is better?
    Q: Quick one: What color is the sky?
    A: Hi! It is blue.
    B: Hello! As an AI, not sure. Glad I could help!

(a context of several turns is written one ``User:`` / ``Assistant:`` / ``System:`` line
a turn instead of ``Q:``). The judge answers in the chain-of-rubrics format the
``judge_verdict`` verifier checks (`verifiers.judge`); the reference is
``{"preferred": "A" | "B", "order": "chosen_first" | "chosen_second"}`` and each uid ends
with the order, so the held-out records (RUN_DIR/eval/step_N.jsonl) can be split by it.

Where the pairs come from:

* ``data.path`` set: any preference file `rlvr.preference.load_preferences` reads (the
  ranked schema, chosen/rejected shapes, HH transcripts). Ties make no pair (the loader's
  rule). The held-out set is ``data.eval_size`` prompts (two per pair) from pairs whose
  context no training pair shares: contexts are ordered by a fixed hash and taken whole.
  There are no judge traces, so no supervised warm-up (``model.sft.steps=0``).
* no path: the built-in preference task (`rlvr.data.preference_task`). Each pair is two
  answers to one of its prompts, drawn as its ranked rows draw them; pairs the four
  rubric items do not separate (equal weighted marks: true ties, and answers that differ
  only by how far over the length budget they run), or separate against the true score
  (its per-character overrun penalty can outweigh one item), are redrawn, so the verdict
  always follows from the rubric. Training pairs use the task's training prompts, held-out pairs
  its held-out prompts (disjoint). Every training prompt carries a judge trace as its
  ``solution`` (the supervised warm-up's target): the true marks, weighted scores and
  verdict of the rule (`verifiers.preference`), made imperfect on purpose as the task's
  own SFT solutions are: a trace checks ``weak_item`` only when a draw falls below
  ``weak_prob``, and otherwise marks it met on both answers, and its verdict follows its
  own marks. The draw is one per trace, not one per answer: a judge that checks the item
  on one answer and not on the other scores two evasions apart, so sampled judgements that
  begin to check it would lose reward on pairs where both answers miss it and GRPO's
  group-scaled advantages (a rare miss in an easy group weighs most) push the item's
  checking down, not up (measured: P(mark 0 | evasion) 0.16 -> 0.07 in 6 steps). Marks
  that tie (the sloppy item hid the difference) go to the shorter answer, a content rule
  blind to position (a seeded coin there teaches a 50/50 verdict that any
  small update flips to one position for every tie). The warm-up judge so learns the format
  and most of the rule, and leaves GRPO a verdict to fix: evasions are short.

`judge_summary` (registered for the ``judge_verdict`` verifier in `rlvr.eval.summaries`) turns
the first and last held-out evaluations into summary.json's ``judge_*`` keys.
"""
from __future__ import annotations

import hashlib
import random
from typing import Any, Optional, Sequence

from rlvr.config import DataConfig, JudgePairsConfig
from rlvr.data.preference_task import _draw_style, _question, compose, prompt_keys, spec_of
from rlvr.data.schema import Prompt
from verifiers.judge import PARSED_REASONS, pair_text
from verifiers.preference import DIMENSIONS, WEIGHTS, failed_dimensions, true_score

__all__ = ["ORDERS", "judge_trace", "BuiltinJudgePairs", "FileJudgePairs", "build_prompt_sets",
           "judge_summary"]

ORDERS = ("chosen_first", "chosen_second")
ITEMS = tuple(DIMENSIONS)  # the built-in task's rubric items, in the rule's order
_EVAL_SALT = "judge-pairs/held-out/v1"  # held-out draws: fixed by the task, not by any seed


def _marks(text: str, spec: dict[str, Any]) -> list[int]:
    failed = set(failed_dimensions(text, spec))
    return [0 if item in failed else 1 for item in ITEMS]


def _score(marks: Sequence[int]) -> int:
    return int(sum(WEIGHTS[item] * m for item, m in zip(ITEMS, marks)))


def judge_trace(first: str, second: str, spec: dict[str, Any], rng: Optional[random.Random] = None,
                weak_item: Optional[str] = None, weak_prob: float = 1.0) -> str:
    """A chain-of-rubrics judgement of answers A=first and B=second under the built-in rule; with ``rng``
    and ``weak_item``, the sloppy trace the module docstring describes (else the true one)."""
    marks = [_marks(first, spec), _marks(second, spec)]
    if rng is not None and weak_item is not None and rng.random() >= weak_prob:
        i = ITEMS.index(weak_item)  # a sloppy trace does not check the item at all: both answers meet it
        for m in marks:
            m[i] = 1
    scores = [_score(m) for m in marks]
    if scores[0] != scores[1]:
        verdict = "A" if scores[0] > scores[1] else "B"
    else:  # tied marks: the shorter answer (then the first in text order), whatever its position
        verdict = "A" if (len(first), first) <= (len(second), second) else "B"
    evals = " ".join(f"{letter}:{''.join(map(str, m))}={s}" for letter, m, s in zip("AB", marks, scores))
    return f"<rubric>{','.join(ITEMS)}</rubric><eval>{evals}</eval><verdict>{verdict}</verdict>"


def _prompt(instruction: str, messages: Sequence[dict], chosen: str, rejected: str, order: int, uid: str,
            solution: Optional[str]) -> Prompt:
    first, second = (chosen, rejected) if order == 0 else (rejected, chosen)
    return Prompt(messages=({"role": "user", "content": pair_text(instruction, messages, first, second)},),
                  verifier="judge_verdict", reference={"preferred": "AB"[order], "order": ORDERS[order]},
                  solution=solution, uid=f"{uid}-{ORDERS[order]}")


class BuiltinJudgePairs:
    """Judge prompts over the built-in preference task: item ``i`` is pair ``i // 2`` in order ``i % 2``."""

    # the judge traces' version, part of the cached warm-up's key: bump it when `judge_trace` or the pair draws
    # change, or a warm-up trained on the old traces is silently reused
    trace_version = "sloppy-per-trace/1"

    def __init__(self, split: str, size: int, cfg: JudgePairsConfig):
        if cfg.weak_item is not None and cfg.weak_item not in ITEMS:
            raise ValueError(f"data.judge_pairs.weak_item={cfg.weak_item!r}; choose one of {', '.join(ITEMS)} or null")
        if not 0.0 <= cfg.weak_prob <= 1.0:
            raise ValueError(f"data.judge_pairs.weak_prob={cfg.weak_prob}; it is a probability in [0, 1]")
        self.split, self.size, self.cfg = split, size, cfg
        self.keys = list(prompt_keys(split))
        self.salt = f"{cfg.seed}/judge-pairs/train" if split == "train" else _EVAL_SALT
        if split == "train":
            random.Random(self.salt).shuffle(self.keys)

    def __len__(self) -> int:
        return self.size

    def pair(self, j: int) -> tuple[tuple[int, int], str, str]:
        """Pair ``j``: (prompt key, chosen, rejected), two answers the rubric tells apart."""
        key = self.keys[j % len(self.keys)]
        fact, spec = key[1], spec_of(key[1])
        rng = random.Random(f"{self.salt}/{j}")
        half = {item: 0.5 for item in ITEMS}
        while True:  # most draws are separated: this ends after a few
            a, b = (compose(fact, _draw_style(rng, half)) for _ in range(2))
            marks, truth = _score(_marks(a, spec)) - _score(_marks(b, spec)), true_score(a, spec) - true_score(b, spec)
            if marks * truth > 0:  # the marks separate them, the same way as the rule's true score
                return (key, a, b) if truth > 0 else (key, b, a)

    def __getitem__(self, index: int) -> Prompt:
        if not 0 <= index < self.size:
            raise IndexError(f"{self.split} judge prompt {index} outside 0..{self.size - 1}")
        j, order = divmod(index, 2)
        key, chosen, rejected = self.pair(j)
        first, second = (chosen, rejected) if order == 0 else (rejected, chosen)
        spec = spec_of(key[1])
        if self.split == "train":
            rng = random.Random(f"{self.salt}/trace/{index}")
            solution = judge_trace(first, second, spec, rng, self.cfg.weak_item, self.cfg.weak_prob)
        else:
            solution = judge_trace(first, second, spec)
        messages = [{"role": "user", "content": _question(key)}]
        return _prompt(self.cfg.instruction, messages, chosen, rejected, order, f"judge-{self.split}-{j}", solution)


class FileJudgePairs:
    """Judge prompts over a list of `Pair`s: item ``i`` is pair ``i // 2`` in order ``i % 2``; no traces."""

    def __init__(self, pairs: list, name: str, instruction: str):
        self.pairs, self.name, self.instruction = pairs, name, instruction

    def __len__(self) -> int:
        return 2 * len(self.pairs)

    def __getitem__(self, index: int) -> Prompt:
        j, order = divmod(int(index), 2)
        p = self.pairs[j]
        return _prompt(self.instruction, p.messages, p.chosen, p.rejected, order, f"judge-{self.name}-{j}", None)


def _file_pairs(cfg: DataConfig) -> tuple[FileJudgePairs, FileJudgePairs]:
    from rlvr.preference import load_preferences, prompt_key

    loaded = load_preferences(cfg.path)  # a file with no usable pair is a DataError naming what it found
    print(f"data: {cfg.path}: {len(loaded.pairs)} preference pairs -> judge prompts in both answer orders "
          f"({loaded.describe()})", flush=True)
    by_context: dict[str, list] = {}
    for pair in loaded.pairs:
        by_context.setdefault(prompt_key(pair), []).append(pair)
    contexts = sorted(by_context, key=lambda k: hashlib.sha256(f"{_EVAL_SALT}/{k}".encode()).hexdigest())
    held: list = []
    want = (cfg.eval_size + 1) // 2
    while contexts and len(held) < want:
        held.extend(by_context[contexts.pop(0)])
    train = [pair for k in contexts for pair in by_context[k]]
    if not train:
        raise ValueError(f"{cfg.path}: {len(loaded.pairs)} preference pairs over {len(by_context)} prompts leave "
                         f"none for training after the held-out {cfg.eval_size} judge prompts (two a pair); lower "
                         f"data.eval_size")
    instruction = cfg.judge_pairs.instruction
    return FileJudgePairs(train, "train", instruction), FileJudgePairs(held[:want], "eval", instruction)


def build_prompt_sets(cfg: DataConfig) -> tuple[Any, Any]:
    """`data.source=judge_pairs`: (training prompts, held-out prompts), from ``data.path`` or the built-in task."""
    if cfg.eval_size % 2:
        raise ValueError(f"data.eval_size={cfg.eval_size}: judge prompts come two a pair (both answer orders); "
                         f"use an even number")
    if cfg.path:
        return _file_pairs(cfg)
    return BuiltinJudgePairs("train", cfg.judge_pairs.num_train, cfg.judge_pairs), \
        BuiltinJudgePairs("eval", cfg.eval_size, cfg.judge_pairs)


def _order(row: dict[str, Any]) -> Optional[str]:
    ref = row.get("reference")
    return ref.get("order") if isinstance(ref, dict) else None


def _rates(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(agreement: the verdict is the preferred answer, parse rate: a verdict was read from complete blocks)."""
    agree = sum(1 for r in rows if r.get("passed")) / len(rows)
    parsed = sum(1 for r in rows if any(v in PARSED_REASONS for v in (r.get("verdicts") or {}).values()))
    return agree, parsed / len(rows)


def judge_summary(first: list[dict[str, Any]], last: list[dict[str, Any]]) -> dict[str, Any]:
    """``judge_agreement_before|after``, per answer order (``..._chosen_first|second``) and their gap
    (``judge_order_gap_before|after``), ``judge_parse_rate_before|after``; before = the first held-out
    evaluation (the start of GRPO, after any warm-up), after = the last."""
    out: dict[str, Any] = {}
    for when, rows in (("before", first), ("after", last)):
        rows = [r for r in rows if _order(r) in ORDERS]
        if not rows:
            continue
        out[f"judge_agreement_{when}"], out[f"judge_parse_rate_{when}"] = _rates(rows)
        per = {o: [r for r in rows if _order(r) == o] for o in ORDERS}
        for o in ORDERS:
            if per[o]:
                out[f"judge_agreement_{when}_{o}"] = _rates(per[o])[0]
        if all(per.values()):
            out[f"judge_order_gap_{when}"] = abs(out[f"judge_agreement_{when}_{ORDERS[0]}"]
                                                 - out[f"judge_agreement_{when}_{ORDERS[1]}"])
    return out

