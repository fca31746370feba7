"""The reward-hacking watch: its statistics on hand-computed numbers, each check on hand-made steps,
alert semantics (patience, one raise per crossing, requests), replay on resume, and the loop hook."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Optional

import pytest
import torch

from rlvr.config import ConfigError, RewardSource, TrainConfig
from rlvr.data.schema import Prompt
from rlvr.eval.stats import distinct_n, group_distinct2, group_unique_fraction, mann_kendall_z, pearson
from rlvr.registry import RegistryError
from rlvr.rewards import RewardResult
from rlvr.rollout.base import RolloutBatch
from rlvr.eval.watch import StepView, Watch
from rlvr.eval.config import WatchConfig


# ---- statistics ------------------------------------------------------------------------
def test_pearson_on_hand_numbers():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # x = [1, 2, 3, 4], y = [1, 3, 2, 4]: cov 0.5*... -> r = 4 / sqrt(5 * 5) = 0.8
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert math.isnan(pearson([1, 1, 1], [1, 2, 3])) and math.isnan(pearson([1], [2]))


def test_mann_kendall_on_hand_numbers():
    # [1, 2, 3, 4]: S = 6, var = 4*3*13/18 = 8.667, z = (6 - 1) / sqrt(8.667)
    assert mann_kendall_z([1, 2, 3, 4]) == pytest.approx(5 / math.sqrt(4 * 3 * 13 / 18))
    assert mann_kendall_z([4, 3, 2, 1]) == pytest.approx(-5 / math.sqrt(4 * 3 * 13 / 18))
    # ties: [1, 1, 2]: S = 0 + 1 + 1 = 2, var = (3*2*11 - 2*1*9) / 18 = 8/3, z = 1 / sqrt(8/3)
    assert mann_kendall_z([1, 1, 2]) == pytest.approx(1 / math.sqrt(8 / 3))
    assert mann_kendall_z([5, 5, 5, 5]) == 0.0 and mann_kendall_z([1, 2]) == 0.0


def test_distinct2_pooled_and_vectorized_agree():
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 2) == pytest.approx(3 / 4)  # (1,2) twice, (2,3), (2,4)
    assert distinct_n([[7, 7, 7, 7]], 2) == pytest.approx(1 / 3)
    assert math.isnan(distinct_n([[1]], 2))
    # two groups of 2, right-padded with 0 (mask 0 there)
    ids = torch.tensor([[1, 2, 3, 0], [1, 2, 4, 0], [5, 5, 5, 5], [5, 5, 0, 0]])
    mask = (torch.arange(4) < torch.tensor([[3], [3], [4], [2]])).float()
    got = group_distinct2(ids, mask, 2)
    assert got.tolist() == pytest.approx([3 / 4, distinct_n([[5, 5, 5, 5], [5, 5]], 2)])  # 1 unique of 4
    assert group_unique_fraction(["a", "a", "b", "c"], 2) == [0.5, 1.0]


# ---- hand-made steps ---------------------------------------------------------------------
def result(scores: dict[str, list[float]], learned=(), gate: Optional[str] = None, raw=None) -> RewardResult:
    per = {k: torch.tensor(v, dtype=torch.float32) for k, v in scores.items()}
    reasons = {k: (["correct" if x > 0 else "wrong_answer" for x in v] if k not in learned else ["scored"] * len(v))
               for k, v in scores.items()}
    total = sum(per.values())
    passed = per[gate] > 0 if gate else None
    return RewardResult(total, per, reasons, passed, gate, raw={k: torch.tensor(v) for k, v in (raw or {}).items()},
                        learned=frozenset(learned))


def view(step, lengths, res, group_size=2, texts=None, truncated=None, **kw) -> StepView:
    n = len(lengths)
    texts = texts or [f"t{step}-{i}" for i in range(n)]
    trunc = torch.tensor(truncated if truncated is not None else [False] * n)
    return StepView(step, group_size, texts, torch.tensor(lengths, dtype=torch.float32), trunc, res, **kw)


def verifier_step(step, lengths, rewards=None, **kw):
    return view(step, lengths, result({"verifier": rewards or [1, 0] * (len(lengths) // 2)}, gate="verifier"), **kw)


def test_length_ratio_needs_patience_and_is_raised_once(capsys):
    w = Watch(WatchConfig(patience=2))
    raised = []
    for step, length in enumerate([10, 10, 10, 25, 25, 25, 10], start=1):
        out = w.observe(verifier_step(step, [length - 1, length + 1]))
        raised.append([a.name for a in out.raised])
        assert out.metrics.get("watch/length_ratio") == (pytest.approx(length / 10) if step >= 3 else None)
        assert ("alert/length_ratio" in out.metrics) == (step in (5, 6))
        if step == 5:
            assert out.raised[0].samples == [1, 0]  # longest first
    assert raised == [[], [], [], [], ["length_ratio"], [], []]


def test_truncation_zero_spread_and_kl():
    cfg = WatchConfig(patience=1, truncation_max=0.3, zero_spread_max=0.4, kl_per_sequence_max=5.0)
    out = Watch(cfg).observe(verifier_step(1, [4, 8, 8, 8], rewards=[1, 1, 0, 1], truncated=[False, True, True, False],
                                           kl=1.0))
    m = out.metrics
    assert m["watch/truncated_frac"] == 0.5 and m["watch/zero_spread_frac"] == 0.5 and m["watch/kl_per_sequence"] == 7.0
    names = {a.name: a for a in out.raised}
    assert set(names) == {"truncation", "zero_spread", "kl_per_sequence"}
    assert names["truncation"].samples == [1, 2] and names["zero_spread"].samples == [0]
    per_seq = verifier_step(1, [4, 8], kl_per_sequence=torch.tensor([1.0, 3.0]))
    assert Watch(cfg).observe(per_seq).metrics["watch/kl_per_sequence"] == 2.0  # measured per completion wins


def test_reward_length_correlation_only_for_learned_sources():
    cfg = WatchConfig(patience=1)
    lengths = [5, 10, 15, 20]
    rm_tracks_length = result({"verifier": [1, 0, 1, 0], "rm": lengths}, learned=["rm"], gate="verifier")
    out = Watch(cfg, learned=["rm"]).observe(view(1, lengths, rm_tracks_length))
    assert out.metrics["watch/reward_length_corr/rm"] == pytest.approx(1.0)
    alert = next(a for a in out.raised if a.name == "reward_length_corr/rm")
    assert alert.samples == [3, 2]  # the longest of those above the median score
    assert "watch/reward_length_corr/verifier" not in out.metrics


def test_diversity_alerts_need_a_learned_reward_by_default():
    ids = torch.tensor([[3, 4, 5], [3, 4, 5], [3, 4, 5], [3, 4, 5]])
    kw = dict(texts=["same"] * 4, completion_ids=ids, completion_mask=torch.ones(4, 3))
    res = result({"verifier": [1, 0, 1, 0]}, gate="verifier")
    quiet = Watch(WatchConfig(patience=1)).observe(view(1, [3] * 4, res, **kw))
    assert quiet.metrics["watch/unique_frac"] == 0.5 and quiet.metrics["watch/distinct2"] == 0.5 and not quiet.raised
    res = result({"verifier": [1, 0, 1, 0], "rm": [1, 2, 3, 4]}, learned=["rm"], gate="verifier")
    loud = Watch(WatchConfig(patience=1, unique_frac_min=0.6, distinct2_min=0.6), learned=["rm"]).observe(
        view(1, [3] * 4, res, **kw))
    assert {"unique_frac", "distinct2"} <= {a.name for a in loud.raised}


def test_entropy_collapse_against_the_start():
    w = Watch(WatchConfig(patience=1, baseline_steps=2, entropy_ratio_min=0.5))
    figures = [w.observe(verifier_step(s, [4, 4], entropy=e)) for s, e in enumerate([1.0, 1.0, 0.6, 0.4], 1)]
    assert [f.metrics.get("watch/entropy_ratio") for f in figures] == [None, 1.0, 0.6, 0.4]
    assert [a.name for a in figures[3].raised] == ["entropy_collapse"]


def test_learned_reward_rising_while_the_check_stays_flat():
    cfg = WatchConfig(patience=3, trend_window=8)
    w = Watch(cfg, learned=["rm"])
    flat = [0.5, 0.4, 0.5, 0.6, 0.5, 0.4, 0.5, 0.5, 0.6]
    raised = {}
    for step in range(1, 10):
        q = flat[step - 1]
        res = result({"verifier": [1, 0] * 5 if q == 0.5 else ([1] * int(q * 10) + [0] * (10 - int(q * 10))),
                      "rm": [float(step)] * 10}, learned=["rm"], gate="verifier")
        out = w.observe(view(step, [4] * 10, res))
        raised[step] = [a.name for a in out.raised]
    assert raised[7] == [] and "learned_vs_checkable/rm" in raised[8]  # fires as soon as the window is full
    assert out.metrics["watch/trend_z/rm"] >= 2.0 and abs(out.metrics["watch/trend_z/quality"]) < 1.0


def test_no_trend_alert_when_the_check_rises_too():
    w = Watch(WatchConfig(trend_window=6), learned=["rm"])
    for step in range(1, 8):
        passed = [1] * step + [0] * (10 - step)
        out = w.observe(view(step, [4] * 10, result({"verifier": passed, "rm": [float(step)] * 10}, learned=["rm"],
                                                    gate="verifier")))
        assert not [a for a in out.raised if a.name.startswith("learned_vs")]
    assert out.metrics["watch/trend_z/quality"] >= 2.0


def test_rm_scores_outside_their_saved_statistics():
    stats = {"rm": {"mean": 0.0, "std": 1.0, "min": -2.0, "max": 2.0, "p99": 1.5}}
    res = result({"rm": [0.0, 0.0, 0.0, 0.0]}, learned=["rm"], raw={"rm": [0.5, 9.0, -1.0, 12.0]})
    out = Watch(WatchConfig(patience=1), learned=["rm"], rm_stats=stats).observe(view(1, [4] * 4, res))
    assert out.metrics["watch/rm_outside_frac/rm"] == 0.5  # outside [-3, 3] (min/max widened by 1 std)
    assert out.metrics["watch/rm_mean_z/rm"] == pytest.approx(5.125) and out.metrics["watch/rm_above_p99/rm"] == 0.5
    assert next(a for a in out.raised if a.name == "rm_outside_stats/rm").samples == [3, 1]


def test_requests_follow_the_config():
    cfg = WatchConfig(patience=1, truncation_max=0.1, stop_on=["truncation"], raise_kl_on=["reward_length_corr"],
                      kl_factor=3.0)
    out = Watch(cfg).observe(verifier_step(1, [4, 4], truncated=[True, True]))
    assert out.stop and out.kl_factor == 1.0
    res = result({"rm": [1, 2, 3, 4]}, learned=["rm"])
    out = Watch(WatchConfig(patience=1, raise_kl_on=["reward_length_corr"], kl_factor=3.0), learned=["rm"]).observe(
        view(1, [1, 2, 3, 4], res))
    assert not out.stop and out.kl_factor == 3.0  # matched by the part before '/<label>'


def test_disabled_checks_and_unknown_names():
    out = Watch(WatchConfig(patience=1, disabled=["truncation"])).observe(verifier_step(1, [4, 4], truncated=[1, 1]))
    assert "watch/truncated_frac" not in out.metrics
    with pytest.raises(RegistryError, match="truncation"):
        Watch(WatchConfig(disabled=["trunc"]))


def test_replay_rebuilds_what_an_uninterrupted_watch_knows():
    cfg = WatchConfig(patience=2)
    steps = [verifier_step(s, [n - 1, n + 1], entropy=1.0 / s) for s, n in enumerate([10, 10, 10, 30, 30, 30], 1)]
    whole, rows, streaks = Watch(cfg), [], {}
    for v in steps:
        out = whole.observe(v)
        rows.append({"step": v.step, "reward/mean": 0.5, "entropy": v.entropy, **out.metrics})
        streaks[v.step] = (whole.streaks_now(), [a.name for a in out.raised])
    assert streaks[4][0] == {"length_ratio": 1} and streaks[5][1] == ["length_ratio"]
    resumed = Watch(cfg)
    resumed.replay(rows[:4] + [{"step": 4, "eval/reward/mean": 1.0}], streaks[4][0])  # resumed after step 4
    again = [resumed.observe(v) for v in steps[4:]]
    assert [a.metrics for a in again] == [{k: v for k, v in row.items() if k.startswith(("watch/", "alert/"))}
                                          for row in rows[4:]]
    assert [[a.name for a in out.raised] for out in again] == [["length_ratio"], []]


# ---- the loop's hook -------------------------------------------------------------------
@dataclass
class FakeSampled:
    prompts: list
    rollouts: RolloutBatch
    first: RewardResult
    refill_rounds: int = 0


class FakeSource:
    def __init__(self, label, learned=False, stats=None):
        self.label, self.learned, self.stats = label, learned, stats


class FakeScorer:
    def __init__(self, learned=()):
        self.sources = [FakeSource("verifier")] + [FakeSource(k, True, {"mean": 0.0, "std": 1.0}) for k in learned]
        self.learned = frozenset(learned)


def rollouts(lengths, texts=None, width=8) -> RolloutBatch:
    n = len(lengths)
    mask = (torch.arange(width) < torch.tensor(lengths).unsqueeze(1)).float()
    ids = (torch.arange(n * width).view(n, width) % 7 + 2) * mask.long()
    return RolloutBatch(torch.ones(n, 2, dtype=torch.long), torch.ones(n, 2, dtype=torch.long), ids, mask,
                        -0.5 * mask, torch.tensor([x >= width for x in lengths]), texts or [f"c{i}" for i in range(n)])


def prompts(n, group_size=2):
    return [Prompt(({"role": "user", "content": f"q{i // group_size}"},), "math", str(i // group_size),
                   uid=f"train-{i // group_size}") for i in range(n)]


def hook_config(**watch) -> TrainConfig:
    cfg = TrainConfig()
    cfg.algorithm.group_size = 2
    cfg.reward.sources = [RewardSource("verifier"), RewardSource("rm", kind="model", path="x")]
    for k, v in watch.items():
        setattr(cfg.watch, k, v)
    return cfg


def test_hook_adds_figures_writes_bad_cases_and_warns(tmp_path, capsys):
    from rlvr.eval.watch_hook import RunWatch

    hook = RunWatch(hook_config(patience=1, truncation_max=0.4, reward_length_corr_max=0), FakeScorer(["rm"]), tmp_path)
    res = result({"verifier": [1, 0, 0, 1], "rm": [0.1, 0.9, 0.2, 0.3]}, learned=["rm"], gate="verifier")
    metrics = {"entropy": 0.5}
    out = hook.on_step(1, FakeSampled(prompts(4), rollouts([3, 8, 8, 2]), res), metrics)
    assert [a.name for a in out.raised] == ["truncation"]
    assert metrics["alert/truncation"] == 1.0 and metrics["watch/truncated_frac"] == 0.5 and "time/watch" in metrics
    assert "warning: step 1: watch alert truncation" in capsys.readouterr().out
    cases = [json.loads(x) for x in (tmp_path / "badcases.jsonl").read_text().splitlines()]
    by_completion = {c["completion"]: c for c in cases}
    # c1: rm 0.9 (top quarter) but failed, and truncated; c0: rm 0.1 (bottom quarter) but passed; each is the
    # other's counterpart (same group, opposite verdict)
    assert by_completion["c1"]["kinds"] == ["failed", "disagreement", "counterpart", "alert"]
    assert by_completion["c0"]["kinds"] == ["counterpart", "disagreement"]
    assert by_completion["c2"]["kinds"] == ["failed", "alert"] and "c3" not in by_completion
    assert by_completion["c1"]["scores"] == {"verifier": 0.0, "rm": pytest.approx(0.9)}
    assert by_completion["c1"]["messages"] == [{"role": "user", "content": "q0"}] and by_completion["c1"]["step"] == 1
    assert json.loads((tmp_path / "alerts.jsonl").read_text())["name"] == "truncation"
    assert json.loads((tmp_path / "eval" / "sources.json").read_text())["rm"] == {"kind": "model", "weight": 1.0,
                                                                                  "learned": True}


def test_hook_does_not_guess_when_refilled_rounds_were_not_kept(tmp_path):
    from rlvr.eval.watch_hook import RunWatch

    hook = RunWatch(hook_config(), FakeScorer(), tmp_path)
    res = result({"verifier": [1, 0, 0, 1]}, gate="verifier")
    metrics = {}
    hook.on_step(1, FakeSampled(prompts(4), rollouts([3, 3, 3, 3]), res, refill_rounds=1), metrics)
    assert metrics == {"watch/unseen": 1.0}
    first = FakeSampled(prompts(2), rollouts([3, 3]), result({"verifier": [0, 0]}, gate="verifier"), refill_rounds=1)
    first.first_rollouts, first.first_prompts, first.first_result = rollouts([3, 3, 3, 3]), prompts(4), res
    hook.on_step(2, first, metrics)
    assert metrics["watch/length_mean"] == 3.0 and "watch/unseen" in metrics


def test_hook_refuses_requests_it_cannot_honour(tmp_path):
    from rlvr.eval.watch_hook import RunWatch

    with pytest.raises(ConfigError, match="algorithm.beta"):
        RunWatch(hook_config(raise_kl_on=["length_ratio"]), FakeScorer(), tmp_path)
    with pytest.raises(ConfigError, match="unknown alert"):
        RunWatch(hook_config(stop_on=["lenght_ratio"]), FakeScorer(), tmp_path)
    with pytest.raises(ConfigError, match="unknown check"):
        RunWatch(hook_config(disabled=["nope"]), FakeScorer(), tmp_path)
    disabled = RunWatch(hook_config(enabled=False), FakeScorer(), tmp_path / "off")
    assert disabled.on_step(1, None, {}).metrics == {} and not (tmp_path / "off" / "badcases.jsonl").exists()


def test_hook_resume_truncates_and_replays(tmp_path):
    from rlvr.run_dir import RunDir
    from rlvr.eval.watch_hook import RunWatch

    cfg = hook_config(patience=2, truncation_max=0.4)
    run_dir = RunDir(tmp_path, cfg.logger)

    def step(hook, n):
        metrics = {"step": n, "reward/mean": 0.5}
        hook.on_step(n, FakeSampled(prompts(4), rollouts([8, 8, 8, 8 if n >= 2 else 1]),
                                    result({"verifier": [1, 0, 1, 0]}, gate="verifier")), metrics)
        return metrics

    whole = RunWatch(cfg, FakeScorer(), run_dir)
    rows = [step(whole, n) for n in range(1, 5)]
    for row in rows:
        run_dir.log(row)
    run_dir.truncate_metrics(2)
    for n in (2, 4):
        (tmp_path / "eval" / f"step_{n:06d}.jsonl").write_text("")
    resumed = RunWatch(cfg, FakeScorer(), run_dir)
    resumed.on_resume(2)
    assert {json.loads(x)["step"] for x in (tmp_path / "badcases.jsonl").read_text().splitlines()} <= {1, 2}
    assert sorted(p.name for p in (tmp_path / "eval").glob("step_*")) == ["step_000002.jsonl"]
    again = [step(resumed, n) for n in (3, 4)]
    strip = lambda m: {k: v for k, v in m.items() if not k.startswith("time/")}  # noqa: E731
    assert [strip(m) for m in again] == [strip(m) for m in rows[2:]]
    assert [json.loads(x)["step"] for x in (tmp_path / "alerts.jsonl").read_text().splitlines()] == [2]


def test_hook_wired_into_the_loop_end_to_end(tiny_model_dir, tmp_path):
    """The calls docs/evaluation.md asks the loop to make: figures in metrics.jsonl, per-prompt held-out
    records, badcases.jsonl, and the report at the end (the loop runs the evaluation and its own RunWatch)."""
    from rlvr.rl.loop import Loop
    from rlvr.rl.run import prepare
    from rlvr.run_dir import RunDir

    cfg = TrainConfig()
    cfg.model.path, cfg.model.cache_dir, cfg.model.device = str(tiny_model_dir), str(tmp_path / "cache"), "cpu"
    cfg.data.eval_size, cfg.data.arithmetic.difficulty = 8, 1
    cfg.algorithm.group_size, cfg.algorithm.beta = 4, 0.04
    t = cfg.trainer
    t.prompts_per_step, t.micro_batch_size, t.total_steps, t.sample_every, t.save_every = 4, 16, 3, 0, 0
    t.eval.num_samples, t.eval.k, t.optim.lr, t.threads = 2, 2, 1e-3, 1
    cfg.rollout.max_new_tokens, cfg.reward.workers = 8, 1
    parts = prepare(cfg)
    run_dir = RunDir(tmp_path / "run", cfg.logger)
    try:
        Loop(cfg, parts, run_dir).run()
    finally:
        parts.close()
    steps = [r for r in run_dir.read_metrics() if "reward/mean" in r]
    assert all(r["watch/zero_spread_frac"] is not None and "watch/kl_per_sequence" in r for r in steps)
    assert steps[-1]["watch/length_ratio"] > 0 and "watch/truncated_frac" in steps[0]
    assert sorted(p.name for p in (run_dir.path / "eval").glob("step_*.jsonl")) == ["step_000000.jsonl",
                                                                                  "step_000003.jsonl"]
    assert (run_dir.path / "badcases.jsonl").exists()
    summary = json.loads((run_dir.path / "summary.json").read_text())
    assert "accuracy_before" in summary and summary["dimensions"]["verifier"]["n"] == 8
    assert (run_dir.path / "report.html").exists() and (run_dir.path / "report.png").exists()


def test_checked_pass_reads_verdicts_and_full_marks():
    from rlvr.eval.watch import checked_pass

    r = RewardResult(torch.zeros(4), {"rule": torch.tensor([1.0, 0.7, 0.0, 1.0])},
                     {"rule": ["met", "too_long", "too_long", "correct"]}, None, None)
    assert checked_pass(r, "rule").tolist() == [True, False, False, True]
    v = view(1, [2, 2, 2, 2], r, group_size=2)
    assert v.passes().tolist() == [1.0, 0.0, 0.0, 1.0] and v.quality() == pytest.approx(0.675)
