"""What a judge is asked in each ``options.mode``, and how its answers become rewards (no I/O).

A mode turns one batch (``prompts[i]`` produced ``completions[i]``) into judge *requests*
(chat messages, and which parser reads the answer), and the parsed answers back into one
reward, reason and consistency count per row (`Plan.combine`). The source
(`rlvr.rewards.judge`) asks, caches and times the requests out; transports never see modes.

    pointwise   one request per answer: rubric scores, the items' weighted mean / 10
    group       the answers to one prompt form a group (the scorer receives each prompt's G
                completions consecutively: a group is a run of rows with the same prompt);
                one request shows the judge all of them and asks for a ranking, turned into
                rewards by `rlvr.rewards.judge_rank.rank_rewards`. A group larger than
                ``max_group`` answers, or whose request is longer than ``max_group_chars``,
                is judged as a tournament of pairs instead (as in ``pairwise``), and so is
                a group whose request came back ``too_long`` (longer than an in-process
                judge's context, which only its tokenizer measures): the source plans the
                batch again with those groups in ``paired`` (`too_long_groups`), so only an
                answer too long even for a pair is excluded, the rest of its group scored
    pairwise    each group's pairs are compared two answers at a time: every pair (a round
                robin, ``opponents: 0``) or a seeded ring where each answer meets
                ``opponents`` neighbours on each side; an answer's reward is its mean outcome
                (win 1, tie 0.5, loss 0), `rlvr.rewards.judge_rank.pair_rewards`

In ``group`` and ``pairwise`` a prompt with a single answer (held-out greedy evaluation) is
judged pointwise: there is nothing to compare it with.

**Positions.** A group's answers are shown in a permutation seeded by the group's content
and ``seed``; a pair's order by a seeded coin. A fraction ``recheck_fraction`` of the groups
(pairs) is asked a second time with the order reversed (swapped): the reward is the mean of
the two answers (with ``verdict: logprob``, of the two probabilities: the order-averaged
preference), and the pairs whose order flips (the favoured answer changes with the order) are
counted (``consistency``: compared, flipped per row, summed into
``judge/<label>/inconsistency``). The choice is a function of
the content, so a rerun asks the same requests and the cache answers them.

**Verdicts.** A row is ``scored`` when at least one of its requests parsed into something that
decides its reward; otherwise it takes the first failed request's reason (``parse_error``,
``timeout``, ...) and is excluded: never a reward of 0.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence

from rlvr.data.schema import Prompt
from rlvr.rewards.judge_prompt import JudgeItem, judge_messages, parse_scores, weighted_score
from rlvr.rewards.judge_rank import (RUBRICS, flipped_pairs, group_messages, group_pairs, pair_messages, pair_rewards,
                                     parse_ranking, parse_winner, rank_rewards, shown_order, stable_fraction)

__all__ = ["MODES", "Request", "Plan", "RowResults", "ModeSettings", "parse_reply", "prompt_groups", "SCORED",
           "too_long_groups"]

SCORED = "scored"
Verdict = tuple[str, Optional[dict[str, float]], str]  # (reason, parsed payload or None, the judge's answer)


@dataclass(frozen=True)
class ModeSettings:
    items: tuple[JudgeItem, ...]
    response_format: str = "text"
    seed: int = 0
    recheck_fraction: float = 0.0
    opponents: int = 0
    max_group: int = 8
    max_group_chars: int = 16000
    instruction: Optional[str] = None  # rubrics: the trained judge's first prompt line (null: the default)


@dataclass(frozen=True)
class Request:
    messages: list[dict[str, str]]  # the chat request
    kind: str  # which parser reads the answer: score | rank | pair
    n: int = 0  # rank: the answers shown


@dataclass
class RowResults:
    rewards: list[float]  # [N] in [0, 1] (0 where not scored: `applies` is False there)
    reasons: list[str]  # [N]
    consistency: list[tuple[float, float]]  # [N] (pairs re-checked with positions swapped, of them flipped)


NOT_COMPARED = "not_compared"  # a lone answer a pairwise-only (rubrics) judge cannot score: not a failure


@dataclass
class Plan:
    requests: list[Request] = field(default_factory=list)
    _steps: list[Callable[[Sequence[Verdict], RowResults], None]] = field(default_factory=list)
    n: int = 0
    ranked: dict[int, int] = field(default_factory=dict)  # a group request's index -> its group's first row

    def ask(self, request: Request) -> int:
        self.requests.append(request)
        return len(self.requests) - 1

    def then(self, step: Callable[[Sequence[Verdict], RowResults], None]) -> None:
        """Run ``step`` in `combine`, after the steps added before it."""
        self._steps.append(step)

    def combine(self, verdicts: Sequence[Verdict]) -> RowResults:
        """Rewards, reasons and consistency per row from one verdict per request."""
        rows = RowResults([0.0] * self.n, ["parse_error"] * self.n, [(0.0, 0.0)] * self.n)
        for step in self._steps:
            step(verdicts, rows)
        return rows


def parse_reply(request: Request, text: str, items: Sequence[JudgeItem]) -> Optional[dict[str, float]]:
    """The payload a request's answer decides (item scores, ranks by shown position, A's outcome), or None."""
    if request.kind == "score":
        return parse_scores(text, items)
    if request.kind == "rank":
        ranks = parse_ranking(text, request.n)
        return None if ranks is None else {str(p): r for p, r in enumerate(ranks)}
    outcome = parse_winner(text)
    return None if outcome is None else {"a": outcome}


def _prompt_key(prompt: Prompt) -> str:
    return json.dumps([prompt.uid, [dict(m) for m in prompt.messages]], sort_keys=True)


def prompt_groups(prompts: Sequence[Prompt]) -> list[list[int]]:
    """Runs of consecutive rows with the same prompt (the loop's G completions of one prompt)."""
    groups: list[list[int]] = []
    last = None
    for i, prompt in enumerate(prompts):
        key = _prompt_key(prompt)
        if groups and key == last:
            groups[-1].append(i)
        else:
            groups.append([i])
        last = key
    return groups


def _failed(verdicts: Sequence[Verdict], asked: Sequence[int]) -> str:
    return next((verdicts[a][0] for a in asked if verdicts[a][0] != SCORED), "parse_error")


def _pointwise_row(plan: Plan, s: ModeSettings, prompt: Prompt, completion: str, row: int) -> None:
    index = plan.ask(Request(judge_messages(s.items, prompt.messages, completion, s.response_format), "score"))

    def step(verdicts: Sequence[Verdict], out: RowResults) -> None:
        reason, payload, _ = verdicts[index]
        if reason == SCORED and payload is not None:
            out.rewards[row], out.reasons[row] = weighted_score(payload, s.items), SCORED
        else:
            out.reasons[row] = reason if reason != SCORED else "parse_error"
    plan.then(step)


def _group_seed(s: ModeSettings, prompt: Prompt, answers: Sequence[str]) -> str:
    return json.dumps([s.seed, _prompt_key(prompt), list(answers)])


def _ranked_group(plan: Plan, s: ModeSettings, prompt: Prompt, answers: list[str], rows: list[int],
                  seed: str) -> None:
    order = shown_order(len(answers), seed)
    orders = [order] + ([order[::-1]] if stable_fraction(seed + ":recheck") < s.recheck_fraction else [])
    asked = [plan.ask(Request(group_messages(s.items, prompt.messages, [answers[a] for a in o], s.response_format),
                              "rank", len(answers))) for o in orders]
    plan.ranked.update({index: rows[0] for index in asked})

    def step(verdicts: Sequence[Verdict], out: RowResults) -> None:
        rankings = []
        for index, o in zip(asked, orders):
            reason, payload, _ = verdicts[index]
            if reason == SCORED and payload is not None:
                by_answer = [0.0] * len(o)
                for position, answer in enumerate(o):
                    by_answer[answer] = payload[str(position)]
                rankings.append(by_answer)
        if not rankings:
            for row in rows:
                out.reasons[row] = _failed(verdicts, asked)
            return
        rewards = [sum(r) / len(rankings) for r in zip(*(rank_rewards(k) for k in rankings))]
        compared, flips = flipped_pairs(*rankings) if len(rankings) == 2 else (0, 0)
        for row, reward in zip(rows, rewards):
            out.rewards[row], out.reasons[row] = reward, SCORED
            out.consistency[row] = (compared / len(rows), flips / len(rows))
    plan.then(step)


def _paired_group(plan: Plan, s: ModeSettings, prompt: Prompt, answers: list[str], rows: list[int],
                  seed: str) -> None:
    asked: list[tuple[int, int, int]] = []  # (request, the answer shown as A, the one shown as B)
    rechecked: list[tuple[int, int]] = []
    for i, j in group_pairs(len(answers), s.opponents, seed):
        first, second = (j, i) if stable_fraction(f"{seed}:{i}:{j}") < 0.5 else (i, j)
        shown = [(first, second)]
        if stable_fraction(f"{seed}:{i}:{j}:recheck") < s.recheck_fraction:
            shown.append((second, first))
            rechecked.append((i, j))
        for a, b in shown:
            request = Request(pair_messages(s.items, prompt.messages, answers[a], answers[b], s.response_format,
                                            s.instruction), "pair")
            asked.append((plan.ask(request), a, b))

    def step(verdicts: Sequence[Verdict], out: RowResults) -> None:
        seen: dict[tuple[int, int], list[float]] = {}
        for index, a, b in asked:
            reason, payload, _ = verdicts[index]
            if reason == SCORED and payload is not None:  # the outcome of the lower index against the higher
                outcome = payload["a"] if a < b else 1.0 - payload["a"]
                seen.setdefault((min(a, b), max(a, b)), []).append(outcome)
        rewards = pair_rewards(len(answers), {pair: sum(o) / len(o) for pair, o in seen.items()})
        checks = [[0.0, 0.0] for _ in answers]
        for i, j in rechecked:
            outcomes = seen.get((i, j), [])
            if len(outcomes) == 2:
                for k in (i, j):
                    checks[k][0] += 0.5
                    checks[k][1] += 0.5 * (_side(outcomes[0]) != _side(outcomes[1]))
        for k, row in enumerate(rows):
            if rewards[k] is None:
                out.reasons[row] = _failed(verdicts, [index for index, a, b in asked if k in (a, b)])
            else:
                out.rewards[row], out.reasons[row] = float(rewards[k]), SCORED  # type: ignore[arg-type]
                out.consistency[row] = (checks[k][0], checks[k][1])
    plan.then(step)


def _side(outcome: float) -> int:
    """Which answer an outcome favours (1 the lower index, -1 the other, 0 neither): a soft outcome (``verdict:
    logprob``) flips with the order when its side does, as a letter verdict does."""
    return (outcome > 0.5) - (outcome < 0.5)


def _not_compared(row: int) -> Callable[[Sequence[Verdict], RowResults], None]:
    def step(verdicts: Sequence[Verdict], out: RowResults) -> None:
        out.reasons[row] = NOT_COMPARED
    return step


def too_long_groups(plan: Plan, reasons: Sequence[str]) -> frozenset[int]:
    """The first rows of the groups whose group request was ``too_long`` (``reasons``: one per request): the
    ``paired`` argument that plans them again as tournaments of pairs."""
    return frozenset(row for index, row in plan.ranked.items() if reasons[index] == "too_long")


class Planner(Protocol):
    def __call__(self, s: ModeSettings, prompts: Sequence[Prompt], completions: Sequence[str],
                 paired: frozenset = ...) -> Plan: ...


def _comparative(ranked: bool) -> Planner:
    def plan_batch(s: ModeSettings, prompts: Sequence[Prompt], completions: Sequence[str],
                   paired: frozenset = frozenset()) -> Plan:
        plan = Plan(n=len(completions))
        for rows in prompt_groups(prompts):
            prompt, answers = prompts[rows[0]], [completions[r] for r in rows]
            if len(rows) == 1:
                if s.response_format != RUBRICS:
                    _pointwise_row(plan, s, prompt, answers[0], rows[0])
                else:  # a pairwise-only judge has nothing to compare: unscored by design, never an excluded row
                    plan.then(_not_compared(rows[0]))
                continue
            seed = _group_seed(s, prompt, answers)
            too_large = (len(rows) > s.max_group or s.response_format == RUBRICS  # it compares pairs only
                         or rows[0] in paired or _group_chars(s, prompt, answers) > s.max_group_chars)
            (_ranked_group if ranked and not too_large else _paired_group)(plan, s, prompt, answers, rows, seed)
        return plan
    return plan_batch


def _group_chars(s: ModeSettings, prompt: Prompt, answers: list[str]) -> int:
    return sum(len(m["content"]) for m in group_messages(s.items, prompt.messages, answers, s.response_format))


def _pointwise(s: ModeSettings, prompts: Sequence[Prompt], completions: Sequence[str],
               paired: frozenset = frozenset()) -> Plan:
    plan = Plan(n=len(completions))
    for row, (prompt, completion) in enumerate(zip(prompts, completions)):
        _pointwise_row(plan, s, prompt, completion, row)
    return plan


# options.mode -> how a batch is planned (``paired``: the first rows of groups to judge as pairs whatever their size)
MODES: dict[str, Planner] = {
    "pointwise": _pointwise, "group": _comparative(ranked=True), "pairwise": _comparative(ranked=False)}
