"""Comparative judging: the group and pairwise prompts, their parsers, and rankings -> rewards (pure functions).

**Group** (``mode: group``): the judge sees every answer to one prompt, labelled ``[1]`` ..
``[G]`` in a shown order, evaluates each against the rubric items, then writes one ranking
line, best first, ``>`` between ranks and ``=`` between tied answers::

    RANKING: 3 > 1 = 4 > 2

(``json`` format: ``{"evaluation": "...", "ranking": "3 > 1 = 4 > 2"}``). `parse_ranking`
accepts ``,`` for ``>``, brackets, ``#`` and markdown around the numbers, and the last
ranking line wins; a ranking with an index missing, repeated or out of range, or no
ranking at all, is None (a ``parse_error``, never a reward of 0).

**Pairwise** (``mode: pairwise``): two answers labelled A and B, then ``WINNER: A``,
``WINNER: B`` or ``WINNER: TIE`` (``json``: ``{"evaluation": ..., "winner": "A"}``);
`parse_winner` gives A's outcome, 1 / 0.5 / 0, or None. ``verdict: logprob`` (an in-process
judge) reads it from the judge's next-token probabilities instead: the reply is cut before
its last verdict line and continued with ``WINNER:`` (`verdict_prefix`), and A's outcome is
P(A) / (P(A) + P(B)) over the letters' tokens (`verdict_share`; None when the two letters hold
under `MIN_VERDICT_MASS` of the next token's probability). ``rubrics`` format: the prompt a
reasoning judge trained with ``data.source=judge_pairs`` was trained on (`verifiers.judge.pair_text`, its first
line the source's ``instruction`` option: the training's ``data.judge_pairs.instruction``),
and its answer read as that training's verifier reads it: complete ``<rubric>`` / ``<eval>``
blocks and a ``<verdict>A</verdict>`` or ``B`` (no tie), else None.

**Ranks -> rewards** (`rank_rewards`): answer positions 0 (best) .. G-1; tied answers share
the mean of the positions they occupy; ``reward = (G - 1 - rank) / (G - 1)`` in [0, 1]. So
``3 > 1 = 4 > 2`` gives answer 3 reward 1, answers 1 and 4 rank (1 + 2) / 2 = 1.5 and
reward 0.5, answer 2 reward 0; the rewards of a group always sum to G / 2.

**Pairs -> rewards** (`pair_rewards`): an answer's reward is its mean outcome (win 1, tie
0.5, loss 0) over the comparisons it took part in. With every pair compared (a round robin,
`group_pairs` with ``opponents=0``) and a judge consistent with a total order, this equals
the rank mapping above exactly, so the two modes are on one scale.

**Positions.** `shown_order` is a permutation seeded by a string (the group's content and
the source's seed), so each group is shown in its own order and a rerun shows the same
order (the cache stays valid). `flipped_pairs` counts the pairs two rankings of the same
answers order differently: the position-inconsistency metric.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from typing import Any, Mapping, Optional, Sequence

from rlvr.rewards.judge_prompt import JudgeItem, conversation_text
from verifiers.judge import DEFAULT_INSTRUCTION, pair_text, verdict_outcome

__all__ = ["RANK_PROMPT_VERSION", "group_messages", "pair_messages", "parse_ranking", "parse_winner", "rank_rewards",
           "pair_rewards", "group_pairs", "shown_order", "flipped_pairs", "ranking_schema", "winner_schema",
           "stable_fraction", "verdict_prefix", "verdict_share", "MIN_VERDICT_MASS"]

RANK_PROMPT_VERSION = "rank-1"  # bump when the group or pairwise wording changes (part of the cache key)
_SYSTEM = ("You are a careful, strict grader. You compare answers against a rubric and always finish with "
           "the verdict line in exactly the requested format.")
_RANK_LINE = re.compile(r"\branking\b\s*[:=]?(.*)", re.IGNORECASE)
RUBRICS = "rubrics"  # response_format of a reasoning judge trained by RLVR (pairwise only)
_WINNER_LINE = re.compile(r"\bwinner\b\s*[:=]?\s*[\[(\"']*\s*(tie|a|b)\b", re.IGNORECASE)
_TOKEN = re.compile(r"\d+|[>=,]")
_WINNER_WORD = re.compile(r"\bwinner\b", re.IGNORECASE)
MIN_VERDICT_MASS = 0.1  # verdict: logprob: below this P(A) + P(B) after the cue, the judge gave no verdict


def _criteria(items: Sequence[JudgeItem]) -> str:
    return "\n".join(f"{n}. {i.name}: {i.description}" for n, i in enumerate(items, 1))


def group_messages(items: Sequence[JudgeItem], messages: Sequence[Mapping[str, str]], answers: Sequence[str],
                   response_format: str = "text") -> list[dict[str, str]]:
    """The group request: criteria, the conversation, answers [1]..[G] (in the order given), evaluate, rank."""
    shown = "\n\n".join(f"[{n}]\n<answer>\n{a}\n</answer>" for n, a in enumerate(answers, 1))
    example = " > ".join(str(n) for n in range(1, min(len(answers), 3) + 1))
    close = (f"Answer with one JSON object: first \"evaluation\", a short comparison of the answers against the "
             f"rubric, then \"ranking\", every answer number once, best first, '>' between ranks and '=' between "
             f"equally good answers (e.g. \"{example}\")." if response_format == "json" else
             f"First evaluate each answer against each rubric item in turn, briefly. Then write the ranking, "
             f"alone on the last line: every answer number exactly once, best first, '>' between ranks and '=' "
             f"between equally good answers, e.g.\nRANKING: {example}")
    user = (f"Rank the {len(answers)} answers below against this rubric.\n\nRubric:\n{_criteria(items)}\n\n"
            f"Conversation:\n{conversation_text(messages)}\n\nAnswers:\n{shown}\n\n{close}")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def pair_messages(items: Sequence[JudgeItem], messages: Sequence[Mapping[str, str]], first: str, second: str,
                  response_format: str = "text", instruction: Optional[str] = None) -> list[dict[str, str]]:
    """The pairwise request: criteria, the conversation, answers A and B, evaluate, then the winner (``rubrics``:
    the trained reasoning judge's own prompt, one user turn, no criteria: its rubric is its own to write; its
    first line is ``instruction``, the ``data.judge_pairs.instruction`` it was trained with, null = the
    default)."""
    if response_format == RUBRICS:
        return [{"role": "user", "content": pair_text(instruction or DEFAULT_INSTRUCTION, messages, first, second)}]
    close = ("Answer with one JSON object: first \"evaluation\", a short comparison against the rubric, then "
             "\"winner\": \"A\", \"B\" or \"TIE\"." if response_format == "json" else
             "First evaluate both answers against each rubric item in turn, briefly. Then write the verdict, alone "
             "on the last line: WINNER: A, WINNER: B or WINNER: TIE")
    user = (f"Which answer is better against this rubric?\n\nRubric:\n{_criteria(items)}\n\n"
            f"Conversation:\n{conversation_text(messages)}\n\nAnswer A:\n<answer>\n{first}\n</answer>\n\n"
            f"Answer B:\n<answer>\n{second}\n</answer>\n\n{close}")
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def ranking_schema(max_reason_chars: int = 300) -> dict[str, Any]:
    return {"type": "object", "required": ["evaluation", "ranking"], "additionalProperties": False,
            "properties": {"evaluation": {"type": "string", "maxLength": max_reason_chars},
                           "ranking": {"type": "string", "maxLength": 200}}}


def winner_schema(max_reason_chars: int = 300) -> dict[str, Any]:
    return {"type": "object", "required": ["evaluation", "winner"], "additionalProperties": False,
            "properties": {"evaluation": {"type": "string", "maxLength": max_reason_chars},
                           "winner": {"type": "string", "enum": ["A", "B", "TIE"]}}}


def _json_field(text: str, name: str) -> Optional[str]:
    body = re.sub(r"^\s*```(?:json)?|```\s*$", "", text.strip()).strip()
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    value = obj.get(name) if isinstance(obj, dict) else None
    if isinstance(value, list):
        return " > ".join(str(v) for v in value)
    return value if isinstance(value, str) else None


def _ranks_of(line: str, n: int) -> Optional[list[float]]:
    """Shown position -> rank (0 = best; ties share their mean) from one ranking line, or None."""
    tokens = _TOKEN.findall(line.replace("*", "").replace("`", ""))
    tiers: list[list[int]] = [[]]
    expect_number = True
    for tok in tokens:
        if tok.isdigit():
            if not expect_number:  # "1 2": two numbers without a separator
                return None
            tiers[-1].append(int(tok))
            expect_number = False
        elif expect_number:  # a separator where a number belongs
            return None
        else:
            if tok != "=":
                tiers.append([])
            expect_number = True
    seen = [i for tier in tiers for i in tier]
    if expect_number or sorted(seen) != list(range(1, n + 1)):
        return None
    ranks = [0.0] * n
    start = 0
    for tier in tiers:
        for i in tier:
            ranks[i - 1] = start + (len(tier) - 1) / 2
        start += len(tier)
    return ranks


def parse_ranking(text: str, n: int) -> Optional[list[float]]:
    """Shown position (0-based) -> rank from the judge's answer: the last complete ranking of all ``n``."""
    if not isinstance(text, str) or not text.strip() or n < 1:
        return None
    field = _json_field(text, "ranking")
    if field is not None:
        return _ranks_of(field, n)
    for line in reversed(text.splitlines()):
        match = _RANK_LINE.search(line)
        if match:
            ranks = _ranks_of(match.group(1), n)
            if ranks is not None:
                return ranks
    return None


def parse_winner(text: str) -> Optional[float]:
    """Answer A's outcome, 1 (A wins), 0.5 (a tie) or 0 (B wins), from the last verdict; None without one.
    An answer holding a ``<verdict>`` block is a chain-of-rubrics judgement, read by `verdict_outcome`."""
    if not isinstance(text, str) or not text.strip():
        return None
    if "<verdict>" in text:
        return verdict_outcome(text)
    field = _json_field(text, "winner")
    if field is not None:
        text = f"WINNER: {field}"
    found = _WINNER_LINE.findall(text.replace("*", "").replace("`", ""))
    if not found:
        return None
    return {"a": 1.0, "b": 0.0, "tie": 0.5}[found[-1].lower()]


def verdict_prefix(text: str) -> str:
    """A pairwise reply up to its verdict cue: the text before its last ``WINNER`` word (all of it without one),
    then ``WINNER:``. The judge's reasoning is kept; its own verdict letter is what the probabilities replace."""
    found = list(_WINNER_WORD.finditer(text or ""))
    head = text[:found[-1].start()] if found else (text or "")
    return head.rstrip() + "\nWINNER:"


def verdict_share(probs: Sequence[float], a_ids: Sequence[int], b_ids: Sequence[int],
                  min_mass: float = MIN_VERDICT_MASS) -> Optional[float]:
    """Answer A's outcome from the next token's probabilities after ``WINNER:``: P(A) / (P(A) + P(B)), each the
    sum over the letter's tokens (``A`` and `` A``); None (no verdict) when P(A) + P(B) < ``min_mass``."""
    pa, pb = sum(float(probs[i]) for i in set(a_ids)), sum(float(probs[i]) for i in set(b_ids))
    if pa + pb < min_mass or pa + pb <= 0:
        return None
    return pa / (pa + pb)


def rank_rewards(ranks: Sequence[float]) -> list[float]:
    """``(G - 1 - rank) / (G - 1)`` per answer (ties already share the mean of their positions); G = 1 gives 0.5."""
    g = len(ranks)
    return [0.5] * g if g == 1 else [(g - 1 - r) / (g - 1) for r in ranks]


def pair_rewards(n: int, outcomes: Mapping[tuple[int, int], float]) -> list[Optional[float]]:
    """Each answer's mean outcome over the pairs it took part in; ``outcomes[(i, j)]`` is i's outcome against j
    (1, 0.5, 0). None for an answer no comparison decided."""
    total, count = [0.0] * n, [0] * n
    for (i, j), outcome in outcomes.items():
        total[i] += outcome
        total[j] += 1.0 - outcome
        count[i] += 1
        count[j] += 1
    return [t / c if c else None for t, c in zip(total, count)]


def _rng(seed: str) -> random.Random:
    return random.Random(int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16))


def stable_fraction(seed: str) -> float:
    """A number in [0, 1) fixed by ``seed`` (which comparisons are re-checked: the same ones on every rerun)."""
    return _rng(seed).random()


def shown_order(n: int, seed: str) -> list[int]:
    """A permutation of range(n) fixed by ``seed``: ``order[p]`` is the answer shown at position p."""
    order = list(range(n))
    _rng(seed).shuffle(order)
    return order


def group_pairs(n: int, opponents: int, seed: str) -> list[tuple[int, int]]:
    """The comparisons of a group of ``n``: every pair (``opponents`` 0, or as many as n - 1 allows), else a
    seeded ring where each answer meets its ``opponents`` next neighbours (2 x opponents comparisons each)."""
    if opponents <= 0 or 2 * opponents >= n - 1:
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    ring = shown_order(n, seed + ":ring")
    pairs = {tuple(sorted((ring[p], ring[(p + d) % n]))) for p in range(n) for d in range(1, opponents + 1)}
    return sorted(pairs)  # type: ignore[arg-type]


def flipped_pairs(first: Sequence[float], second: Sequence[float]) -> tuple[int, int]:
    """(pairs compared, pairs the two rankings of the same answers order differently, ties included)."""
    n, flips = len(first), 0
    for i in range(n):
        for j in range(i + 1, n):
            a, b = first[i] - first[j], second[i] - second[j]
            flips += (a > 0) - (a < 0) != (b > 0) - (b < 0)
    return n * (n - 1) // 2, flips
