"""Group and pairwise judging: the ranking and winner parsers on hand-written judge replies, ranks -> rewards
on hand-computed numbers, the seeded positions, and the modes end to end through a scripted stdlib HTTP
server (the same `Scripted` server as tests/rlvr/test_judge.py)."""
from __future__ import annotations

import json
import re

import pytest
import torch

from rlvr.config import ConfigError, RewardConfig, RewardSource
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardScorer, reward_metrics
from rlvr.rewards.base import SourceContext
from rlvr.rewards.judge import JudgeSource, judge_options
from rlvr.rewards.judge_modes import ModeSettings, MODES, prompt_groups, too_long_groups
from rlvr.rewards.judge_prompt import JudgeItem
from rlvr.rewards.judge_rank import (flipped_pairs, group_messages, group_pairs, pair_messages, pair_rewards,
                                     parse_ranking, parse_winner, rank_rewards, shown_order, verdict_prefix,
                                     verdict_share)
from tests.rlvr.test_judge import Scripted, _completion

ITEMS = (JudgeItem("correct", "Right sum."),)


# ---- parsers -----------------------------------------------------------------------------
@pytest.mark.parametrize("text, n, ranks", [
    ("Answer 3 is right.\nRANKING: 3 > 1 > 2", 3, [1.0, 2.0, 0.0]),
    ("RANKING: 3 > 1 = 4 > 2", 4, [1.5, 3.0, 0.0, 1.5]),
    ("**Ranking:** [2], [1]", 2, [1.0, 0.0]),
    ("ranking = #1 = #2 = #3", 3, [1.0, 1.0, 1.0]),
    ("RANKING: 1 > 2\nOn reflection:\nRANKING: 2 > 1", 2, [1.0, 0.0]),
    ("RANKING: 2 > 1\nThat is final.", 2, [1.0, 0.0]),
    ('{"evaluation": "2 is right", "ranking": "2 > 1 > 3"}', 3, [1.0, 0.0, 2.0]),
    ('```json\n{"evaluation": "", "ranking": [3, 2, 1]}\n```', 3, [2.0, 1.0, 0.0]),
])
def test_ranking_parser_reads_what_judges_write(text, n, ranks):
    assert parse_ranking(text, n) == ranks


@pytest.mark.parametrize("text", [
    "", "They are all fine.", "RANKING: 1 > 2", "RANKING: 1 > 2 > 2", "RANKING: 1 > 2 > 4", "RANKING: 1 2 3",
    "RANKING: > 1 > 2 > 3", "RANKING: 1 > 2 > 3 >", "RANKING: 0 > 1 > 2", '{"ranking": "1 > 1 > 3"}',
])
def test_ranking_parser_refuses_missing_repeated_or_stray_indices(text):
    assert parse_ranking(text, 3) is None


@pytest.mark.parametrize("text, outcome", [
    ("A is better.\nWINNER: A", 1.0), ("winner: b", 0.0), ("**Winner:** [[TIE]]", 0.5),
    ("WINNER: A\nWait, no.\nWINNER: B", 0.0), ('{"evaluation": "x", "winner": "TIE"}', 0.5),
])
def test_winner_parser(text, outcome):
    assert parse_winner(text) == outcome


@pytest.mark.parametrize("text", ["", "A is better.", "WINNER: C", "WINNER: both", '{"winner": "neither"}'])
def test_winner_parser_refuses_answers_without_a_verdict(text):
    assert parse_winner(text) is None


@pytest.mark.parametrize("text, prefix", [
    ("A is better.", "A is better.\nWINNER:"), ("A is better.\nWINNER: B", "A is better.\nWINNER:"),
    ("Winner: A\nwait\n**WINNER**: B", "Winner: A\nwait\n**\nWINNER:"), ("", "\nWINNER:")])
def test_verdict_prefix_cuts_before_the_last_verdict_line(text, prefix):
    assert verdict_prefix(text) == prefix


def test_verdict_share_by_hand():
    probs = [0.5, 0.1, 0.2, 0.05, 0.15]  # tokens: 1 = "A", 3 = " A", 2 = "B", 0 and 4 neither
    assert verdict_share(probs, [1, 3], [2]) == pytest.approx(0.15 / 0.35)
    assert verdict_share(probs, [1, 1], [2]) == pytest.approx(0.1 / 0.3)  # a token listed twice counts once
    assert verdict_share(probs, [1], [2], min_mass=0.31) is None  # the letters hold 0.3: no verdict
    assert verdict_share([1.0, 0.0, 0.0], [1], [2], min_mass=0.0) is None  # nothing on either letter


# ---- the mapping -------------------------------------------------------------------------
def test_ranks_to_rewards_by_hand():
    assert rank_rewards([0.0, 1.0, 2.0, 3.0]) == [1.0, 2 / 3, 1 / 3, 0.0]
    assert rank_rewards([1.5, 3.0, 0.0, 1.5]) == [0.5, 0.0, 1.0, 0.5]  # ties share (1 + 2) / 2
    assert rank_rewards([1.0, 1.0, 1.0]) == [0.5, 0.5, 0.5]  # all tied: no preference
    assert sum(rank_rewards(parse_ranking("RANKING: 2 = 3 > 1 = 4 > 5", 5))) == pytest.approx(5 / 2)  # a group's rewards sum to G / 2


def test_a_consistent_round_robin_equals_the_rank_mapping():
    order = [2, 0, 3, 1]  # best first
    outcomes = {(i, j): 1.0 if order.index(i) < order.index(j) else 0.0 for i, j in group_pairs(4, 0, "s")}
    ranks = [float(order.index(i)) for i in range(4)]
    assert pair_rewards(4, outcomes) == pytest.approx(rank_rewards(ranks))
    assert pair_rewards(3, {(0, 1): 0.5}) == [0.5, 0.5, None]  # no comparison decided answer 2


def test_pairs_and_positions_are_seeded_and_balanced():
    assert len(group_pairs(5, 0, "x")) == 10 and group_pairs(5, 2, "x") == group_pairs(5, 0, "x")  # 2k >= n - 1
    ring = group_pairs(8, 1, "x")
    assert len(ring) == 8 and all(sum(k in p for p in ring) == 2 for k in range(8))  # each meets 2 opponents
    assert group_pairs(8, 1, "x") == ring and shown_order(6, "a") == shown_order(6, "a")
    assert sorted(shown_order(6, "a")) == list(range(6))
    assert len({tuple(shown_order(6, str(s))) for s in range(20)}) > 10  # groups are shown in their own orders


def test_flipped_pairs_counts_order_changes_ties_included():
    assert flipped_pairs([0, 1, 2], [0, 1, 2]) == (3, 0)
    assert flipped_pairs([0, 1, 2], [2, 1, 0]) == (3, 3)
    assert flipped_pairs([0, 1, 2], [0.5, 0.5, 2]) == (3, 1)


def test_prompts_show_every_answer_and_ask_for_the_line():
    (_, user) = group_messages(ITEMS, [{"role": "user", "content": "Add 3 and 4"}], ["7", "8", "9"])
    text = user["content"]
    order = [text.index(s) for s in ("1. correct", "[user]: Add 3 and 4", "[1]\n<answer>\n7", "[3]\n<answer>\n9",
                                     "RANKING: 1 > 2 > 3")]
    assert order == sorted(order)
    (_, user) = pair_messages(ITEMS, [{"role": "user", "content": "q"}], "first", "second")
    assert user["content"].index("Answer A:\n<answer>\nfirst") < user["content"].index("Answer B:") < \
        user["content"].index("WINNER: A, WINNER: B or WINNER: TIE")


# ---- modes -------------------------------------------------------------------------------
def _group_batch(groups=2, size=3):
    prompts, completions = [], []
    for g in range(groups):
        prompt = Prompt(({"role": "user", "content": f"Add {g} and 4"},), "none", None, uid=str(g))
        for j in range(size):
            prompts.append(prompt)
            completions.append(f"answer {g}-{j}")
    return prompts, completions


def test_groups_are_runs_of_the_same_prompt():
    prompts, _ = _group_batch(3, 2)
    assert prompt_groups(prompts) == [[0, 1], [2, 3], [4, 5]]
    assert prompt_groups(prompts[:1] + prompts[2:3] + prompts[:1]) == [[0], [1], [2]]


def test_plans_ask_what_each_mode_needs():
    prompts, completions = _group_batch(2, 4)
    s = ModeSettings(ITEMS, recheck_fraction=0.0)
    assert [r.kind for r in MODES["pointwise"](s, prompts, completions).requests] == ["score"] * 8
    assert [(r.kind, r.n) for r in MODES["group"](s, prompts, completions).requests] == [("rank", 4)] * 2
    assert [r.kind for r in MODES["pairwise"](s, prompts, completions).requests] == ["pair"] * 12  # 2 x C(4, 2)
    both = MODES["group"](ModeSettings(ITEMS, recheck_fraction=1.0), prompts, completions)
    assert len(both.requests) == 4  # every group asked twice, the order reversed
    big = MODES["group"](ModeSettings(ITEMS, max_group=3, opponents=1, recheck_fraction=0.0), prompts, completions)
    assert [r.kind for r in big.requests] == ["pair"] * 8  # groups of 4 > max_group: a ring tournament
    long = MODES["group"](ModeSettings(ITEMS, max_group_chars=100, recheck_fraction=0.0), prompts, completions)
    assert {r.kind for r in long.requests} == {"pair"}
    single = MODES["group"](s, prompts[:1], completions[:1])
    assert [r.kind for r in single.requests] == ["score"]  # one answer: nothing to compare, scored pointwise


def test_a_group_request_too_long_for_the_judge_is_planned_again_as_pairs():
    prompts, completions = _group_batch(2, 4)
    plan = MODES["group"](ModeSettings(ITEMS, recheck_fraction=1.0), prompts, completions)
    reasons = ["scored", "scored", "too_long", "too_long"]  # the second group (rows 4..7), in both orders
    assert too_long_groups(plan, reasons) == {4} and too_long_groups(plan, ["scored"] * 4) == set()
    again = MODES["group"](ModeSettings(ITEMS, recheck_fraction=0.0), prompts, completions, frozenset({4}))
    assert [r.kind for r in again.requests] == ["rank"] + ["pair"] * 6  # the first group ranked, C(4, 2) pairs


def _shown(messages):
    """The answers as shown to the judge, in order (group and pairwise prompts)."""
    return re.findall(r"<answer>\n(.*?)\n</answer>", messages[1]["content"], re.DOTALL)


def _quality(answer):
    return int(answer.rsplit("-", 1)[1])  # a higher suffix is a better answer


def honest(n, path, request):
    """A judge that ranks by the answers' true quality, whatever order they are shown in."""
    shown, text = _shown(request["messages"]), request["messages"][1]["content"]
    if "Answer A:" in text:
        a, b = (_quality(x) for x in shown)
        return 200, _completion("WINNER: " + ("A" if a > b else "B" if b > a else "TIE"))
    best_first = sorted(range(len(shown)), key=lambda p: -_quality(shown[p]))
    return 200, _completion("Thinking.\nRANKING: " + " > ".join(str(p + 1) for p in best_first))


def first_wins(n, path, request):
    """A position-biased judge: whatever is shown first wins."""
    shown, text = _shown(request["messages"]), request["messages"][1]["content"]
    if "Answer A:" in text:
        return 200, _completion("WINNER: A")
    return 200, _completion("RANKING: " + " > ".join(str(p + 1) for p in range(len(shown))))


@pytest.fixture
def server():
    servers = []

    def make(respond):
        servers.append(Scripted(respond))
        return servers[-1]
    yield make
    for s in servers:
        s.close()


def _source(url, tmp_path, **options):
    opts = {"base_url": url, "model": "judge", "items": ["correct"], "cache_path": str(tmp_path / "c.sqlite"),
            "backoff_s": 0.01, "max_concurrency": 2, **options}
    return JudgeSource(RewardSource("judge", 1.0, opts, kind="judge"), "judge", SourceContext(1, 5.0, torch.device("cpu")))


@pytest.mark.parametrize("mode", ["group", "pairwise"])
def test_an_honest_judge_ranks_each_group_whatever_the_positions(server, tmp_path, mode):
    srv = server(honest)
    src = _source(srv.url, tmp_path, mode=mode, recheck_fraction=1.0)
    out = src.score(*_group_batch(2, 3))
    expected = torch.tensor([0.0, 0.5, 1.0] * 2)
    assert out.reasons == ["scored"] * 6 and torch.allclose(out.rewards, expected) and out.applies.all()
    assert out.consistency[:, 1].sum() == 0 and out.consistency[:, 0].sum() == 6  # 3 pairs x 2 groups, none flipped
    asked = len(srv.calls)
    again = _source(srv.url, tmp_path, mode=mode, recheck_fraction=1.0).score(*_group_batch(2, 3))
    assert len(srv.calls) == asked and torch.equal(again.rewards, out.rewards)  # the same requests: cached
    src.close()


@pytest.mark.parametrize("mode", ["group", "pairwise"])
def test_a_position_biased_judge_shows_as_inconsistency(server, tmp_path, mode):
    srv = server(first_wins)
    cfg = RewardConfig(sources=[RewardSource("judge", 1.0, {
        "base_url": srv.url, "model": "judge", "items": ["correct"], "mode": mode, "recheck_fraction": 1.0,
        "cache_path": str(tmp_path / "c.sqlite")}, kind="judge")])
    with RewardScorer(cfg) as scorer:
        metrics = reward_metrics(scorer.score(*_group_batch(2, 3)))
    assert metrics["judge/judge/rechecked_pairs"] == 6.0 and metrics["judge/judge/inconsistency"] == 1.0
    assert metrics["reward/judge/mean"] == pytest.approx(0.5)  # both orders averaged: every answer ties


def test_a_ranking_with_repeated_indices_is_a_counted_parse_error_not_zero(server, tmp_path):
    srv = server(lambda n, path, req: (200, _completion("RANKING: 1 > 1 > 2")))
    cfg = RewardConfig(sources=[
        RewardSource("len", 1.0, {"max_chars": 100}, kind="rule", check="length_budget"),
        RewardSource("judge", 1.0, {"base_url": srv.url, "model": "judge", "mode": "group", "recheck_fraction": 0.0,
                                    "cache_path": str(tmp_path / "c.sqlite")}, kind="judge")])
    with RewardScorer(cfg) as scorer:
        result = scorer.score(*_group_batch(1, 3))
    assert result.reasons["judge"] == ["parse_error"] * 3 and not result.applies["judge"].any()
    assert torch.equal(result.rewards, torch.ones(3))  # only the rule: the judge adds nothing, not a 0
    assert reward_metrics(result)["verdict/judge/parse_error"] == 3.0
    assert "judge/judge/inconsistency" not in reward_metrics(result)


def test_pairwise_answer_without_a_verdict_leaves_only_that_pair_out(server, tmp_path):
    def answer(n, path, request):
        shown = _shown(request["messages"])
        if {_quality(x) for x in shown} == {0, 1}:
            return 200, _completion("Both have merit.")  # no verdict for the pair (0, 1)
        return honest(n, path, request)
    srv = server(answer)
    out = _source(srv.url, tmp_path, mode="pairwise", recheck_fraction=0.0).score(*_group_batch(1, 3))
    assert out.reasons == ["scored"] * 3  # every answer still met one opponent
    assert torch.allclose(out.rewards, torch.tensor([0.0, 0.0, 1.0]))  # 0 lost to 2; 1 lost to 2; 2 won both

    srv2 = server(lambda n, path, req: (200, _completion("no idea")))
    out = _source(srv2.url, tmp_path / "other", mode="pairwise").score(*_group_batch(1, 2))
    assert out.reasons == ["parse_error"] * 2 and not out.applies.any()


def test_mode_options_are_checked():
    base = {"base_url": "http://127.0.0.1:1/v1", "model": "judge"}
    for options, match in [({"mode": "listwise"}, "mode must be one of pointwise, group, pairwise"),
                           ({"recheck_fraction": 2}, "recheck_fraction"), ({"max_group": 1}, "max_group"),
                           ({"opponents": -1}, "opponents")]:
        with pytest.raises(ConfigError, match=match):
            judge_options("x", {**base, **options})
    assert json.dumps(judge_options("x", {**base, "mode": "group"}).mode) == '"group"'


def test_json_format_sends_the_schema_of_each_request_kind(server, tmp_path):
    def answer(n, path, request):
        schema = request["response_format"]["json_schema"]
        if schema["name"] == "winner":
            return 200, _completion(json.dumps({"evaluation": "x", "winner": "TIE"}))
        return 200, _completion(json.dumps({"evaluation": "x", "ranking": "1 = 2"}))
    srv = server(answer)
    for mode, name in (("group", "ranking"), ("pairwise", "winner")):
        out = _source(srv.url, tmp_path, mode=mode, response_format="json", recheck_fraction=0.0).score(
            *_group_batch(1, 2))
        assert out.reasons == ["scored"] * 2 and torch.allclose(out.rewards, torch.tensor([0.5, 0.5]))
        assert srv.calls[-1]["response_format"]["json_schema"]["name"] == name


# ---- a reasoning judge trained by rlvr (response_format: rubrics) ---------------------------
def test_a_chain_of_rubrics_verdict_is_read_as_the_winner():
    good = "<rubric>right</rubric><eval>A:0 B:1</eval><verdict>B</verdict>"
    assert parse_winner(good) == 0.0 and parse_winner(good.replace(">B<", ">A<")) == 1.0
    assert parse_winner("<verdict>A</verdict>") is None  # no rubric or eval: unparsed, as its training's verifier
    assert parse_winner("<rubric>x</rubric><eval>A B</eval><verdict>tie</verdict>") is None


def rubrics_judge(n, path, request):
    """A trained reasoning judge: its own prompt (one user turn, answers after A: and B:), a verdict block."""
    (message,) = request["messages"]
    a, b = (_quality(line[3:]) for line in message["content"].split("\n") if line[:3] in ("A: ", "B: "))
    return 200, _completion(f"<rubric>q</rubric><eval>A:{a} B:{b}</eval><verdict>{'A' if a > b else 'B'}</verdict>")


def test_a_rubrics_judge_ranks_a_group_as_pairs_in_its_own_prompt(server, tmp_path):
    srv = server(rubrics_judge)
    src = _source(srv.url, tmp_path, mode="group", response_format="rubrics", recheck_fraction=1.0)
    prompts, completions = _group_batch(2, 3)
    out = src.score(prompts, completions)
    assert out.reasons == ["scored"] * 6 and torch.allclose(out.rewards, torch.tensor([0.0, 0.5, 1.0] * 2))
    first = srv.calls[0]["messages"][0]["content"]
    assert first.startswith("Which answer is better?\nQ: ") and "\nA: " in first and "\nB: " in first
    alone = src.score(prompts[:1], completions[:1])  # one answer: nothing to compare, and no failure either
    assert alone.reasons == ["not_compared"] and not bool(alone.applies[0])
    from rlvr.rewards.base import EXCLUDED_REASONS

    assert "not_compared" not in EXCLUDED_REASONS
    src.close()
    with pytest.raises(ConfigError, match="set options.mode to pairwise or group"):
        judge_options("x", {"base_url": "http://127.0.0.1:1/v1", "model": "judge", "response_format": "rubrics"})
