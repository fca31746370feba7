"""The ``judge_verdict`` verifier: a generative judge's chain-of-rubrics judgement checked against a preference label.

A reasoning reward model (RM-R1's chain-of-rubrics) answers "which of two answers is
better?" by writing the rubric for the task, evaluating each answer item by item, then
giving a verdict. The verdict is checkable against the preference label, so the judge
itself trains with GRPO and this verifier. The judgement must hold three blocks, in
this order (compact enough for the tiny character-level model)::

    <rubric>correct,clean,polite,concise</rubric>
    <eval>A:1011=4 B:1110=3</eval>
    <verdict>A</verdict>

``rubric``: the items for this task (non-empty); ``eval``: each answer item by item (it
must name both ``A`` and ``B``); ``verdict``: exactly ``A`` or ``B`` (surrounding spaces
ignored). The built-in task's eval writes, per answer, one mark per rubric item (1 met,
0 missed) and the weighted score; for any other task its wording is the judge's own.

The reference is the preferred letter: ``"A"`` / ``"B"``, or a dict whose ``preferred``
holds it (the `judge_pairs` data source writes ``{"preferred": "A", "order": ...}``).

Reasons: ``correct`` (reward 1.0: the verdict is the preferred letter), ``wrong_verdict``
(a well-formed judgement that prefers the other answer), ``no_verdict`` (no closed
``<verdict>`` block, or one holding anything but A or B), ``missing_blocks`` (a verdict
without the rubric or eval block before it, or an empty one, or an eval that does not
name both answers: a bare letter earns nothing), ``blocks_out_of_order`` (a block opened
before the one it follows, e.g. the verdict before the rubric: a judge may not decide
first and justify after; ``details["problem"]`` names the two blocks), ``bad_reference``,
``bad_input``. Every
reason but ``correct`` has reward 0.0; ``details["verdict"]`` is the letter read, if any.

Pure and linear in the completion's length; no torch, no trainer imports.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from verifiers.base import BaseVerifier, Verdict
from verifiers.registry import register

__all__ = ["BLOCKS", "LETTERS", "Judgement", "parse_judgement", "preferred_letter", "JudgeVerdictVerifier",
           "PARSED_REASONS", "DEFAULT_INSTRUCTION", "pair_text", "verdict_outcome", "order_problem"]

BLOCKS = ("rubric", "eval", "verdict")
LETTERS = ("A", "B")
PARSED_REASONS = ("correct", "wrong_verdict")  # a judgement that parsed: its verdict was read and compared
_NAMES_ANSWER = {letter: re.compile(rf"\b{letter}\b") for letter in LETTERS}
DEFAULT_INSTRUCTION = "Which answer is better?"  # the judge prompt's first line (data.judge_pairs.instruction)
_ROLES = {"user": "User", "assistant": "Assistant", "system": "System"}


def pair_text(instruction: str, messages: Sequence[Mapping[str, str]], first: str, second: str) -> str:
    """The judge prompt a reasoning judge is trained on and asked with: the instruction, the context (``Q:``
    for a single user turn, else one ``User:`` / ``Assistant:`` / ``System:`` line a turn), answers A and B."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        context = [f"Q: {messages[0]['content']}"]
    else:
        context = [f"{_ROLES.get(m['role'], m['role'])}: {m['content']}" for m in messages]
    return "\n".join([instruction, *context, f"A: {first}", f"B: {second}"])


@dataclass(frozen=True)
class Judgement:
    """The blocks read from a judge's completion (None: the block is absent or not closed)."""

    rubric: Optional[str]
    eval: Optional[str]
    verdict: Optional[str]  # the verdict block's stripped text, whatever it holds


def _block(text: str, tag: str, start: int) -> tuple[Optional[str], int]:
    """The first closed ``<tag>...</tag>`` at or after ``start``: (content, end), or (None, start)."""
    open_ = text.find(f"<{tag}>", start)
    if open_ < 0:
        return None, start
    close = text.find(f"</{tag}>", open_)
    if close < 0:
        return None, start
    return text[open_ + len(tag) + 2:close], close + len(tag) + 3


def parse_judgement(text: str) -> Judgement:
    """The rubric, eval and verdict blocks, each searched after the one before it; the verdict is the last
    closed verdict block (a judge that changes its mind is read at its final word)."""
    rubric, end = _block(text, "rubric", 0)
    evaluation, end = _block(text, "eval", end if rubric is not None else 0)
    close = text.rfind("</verdict>")
    open_ = text.rfind("<verdict>", 0, close) if close >= 0 else -1
    verdict = text[open_ + len("<verdict>"):close].strip() if open_ >= 0 else None
    return Judgement(rubric, evaluation, verdict)


def preferred_letter(reference: Any) -> str:
    """The preferred letter of a reference (``"A"``, ``"B"`` or ``{"preferred": ...}``); ValueError otherwise."""
    if isinstance(reference, Mapping):
        reference = reference.get("preferred")
    letter = str(reference).strip().upper() if isinstance(reference, str) else None
    if letter not in LETTERS:
        raise ValueError(f"the reference must be 'A' or 'B' (or a dict with 'preferred'), not {reference!r}")
    return letter


def order_problem(text: str) -> Optional[str]:
    """What is out of order among the blocks (each block's first opening tag must follow the earlier blocks'
    first ones, in the order of `BLOCKS`), or None; an absent block is `_blocks_problem`'s to report."""
    opened = {tag: text.find(f"<{tag}>") for tag in BLOCKS}
    for k, later in enumerate(BLOCKS):
        for earlier in BLOCKS[:k]:
            if 0 <= opened[later] < opened[earlier]:
                return (f"the {later} block comes before the {earlier} block (the order is "
                        f"{', '.join(BLOCKS)})")
    return None


def _blocks_problem(j: Judgement) -> Optional[str]:
    if not (j.rubric or "").strip():
        return "no rubric block before the verdict"
    if not (j.eval or "").strip():
        return "no eval block after the rubric"
    missing = [letter for letter, pattern in _NAMES_ANSWER.items() if not pattern.search(j.eval or "")]
    if missing:
        return f"the eval block does not evaluate answer {' or '.join(missing)}"
    return None


def verdict_outcome(text: str) -> Optional[float]:
    """Answer A's outcome in a complete judgement: 1.0 (verdict A), 0.0 (verdict B); None when it has no
    readable verdict, lacks a block or has its blocks out of order (what a judge source reading a trained
    judge counts as unparsed)."""
    j = parse_judgement(text)
    if j.verdict is None or j.verdict.upper() not in LETTERS or order_problem(text) or _blocks_problem(j):
        return None
    return 1.0 if j.verdict.upper() == "A" else 0.0


@register("judge_verdict")
class JudgeVerdictVerifier(BaseVerifier):
    """Reward 1.0 when a complete chain-of-rubrics judgement's verdict is the preferred answer, else 0.0."""

    def verify(self, *, completion: Any, reference: Any, **fields: Any) -> Verdict:
        if not isinstance(completion, str):
            return Verdict(0.0, "bad_input", {"type": type(completion).__name__})
        try:
            want = preferred_letter(reference)
        except ValueError as exc:
            return Verdict(0.0, "bad_reference", {"error": str(exc)})
        j = parse_judgement(completion)
        if j.verdict is None or j.verdict.upper() not in LETTERS:
            return Verdict(0.0, "no_verdict", {"verdict": j.verdict})
        got = j.verdict.upper()
        disorder = order_problem(completion)
        if disorder is not None:
            return Verdict(0.0, "blocks_out_of_order", {"verdict": got, "problem": disorder})
        problem = _blocks_problem(j)
        if problem is not None:
            return Verdict(0.0, "missing_blocks", {"verdict": got, "problem": problem})
        if got != want:
            return Verdict(0.0, "wrong_verdict", {"verdict": got, "preferred": want})
        return Verdict(1.0, "correct", {"verdict": got})
