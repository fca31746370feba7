"""The co-evolution loop: its figures on hand numbers, its arguments and a failed stage (the whole loop, every
stage's outputs and its learning: tests/rlvr/test_learning.py)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from rlvr.pipelines.coevolution import (CoevoConfig, StageError, alert_figures, bucket_accuracy, config_from_args,
                              drop_heldout_rows, headline, headline_line, heldout_questions, length_buckets,
                              policy_figures, rm_figures, round2_rows, run_loop)
from rlvr.data.chat import DataError


def _pair(chosen: str, rejected: str):
    return SimpleNamespace(chosen=chosen, rejected=rejected)


def test_length_buckets_and_their_accuracy():
    pairs = [_pair("ab", "abc"), _pair("abcd", "a"), _pair("xy", "zw"), _pair("a", "bb")]
    buckets = length_buckets(pairs)
    assert buckets == {"chosen_shorter": 2, "chosen_longer": 1, "same_length": 1}
    assert bucket_accuracy(1.0, 0.4, buckets) == pytest.approx((2 * 1.0 + 0.4) / 3)
    assert bucket_accuracy(None, 0.4, buckets) == pytest.approx(0.4)  # a bucket without a figure adds nothing
    assert bucket_accuracy(float("nan"), None, buckets) is None
    assert bucket_accuracy(0.9, 0.1, {"chosen_shorter": 0, "chosen_longer": 0, "same_length": 5}) is None


def test_rm_figures_read_the_held_out_set():
    summary = {"pairwise_accuracy": 0.7, "length_bias_gap": 0.5, "pairs": {"train": 10, "heldout": 4},
               "eval": {"heldout": {"acc_chosen_shorter": 0.9, "acc_chosen_longer": 0.4, "reward_length_corr": 0.3}},
               "model_dir": "m", "run_dir": "r"}
    fig = rm_figures(summary, {"chosen_shorter": 3, "chosen_longer": 1, "same_length": 0})
    assert fig["accuracy_length_differs"] == pytest.approx((3 * 0.9 + 0.4) / 4)
    assert (fig["train_pairs"], fig["heldout_pairs"], fig["model_dir"]) == (10, 4, "m")


def test_alert_and_policy_figures():
    alerts = [{"step": 3, "name": "reward_length_corr/rm"}, {"step": 17, "name": "learned_vs_checkable/rm"},
              {"step": 20, "name": "reward_length_corr/rm"}]
    fig = alert_figures(alerts, last_step=20)
    assert fig == {"count": 3, "names": ["reward_length_corr/rm", "learned_vs_checkable/rm"], "before_last_step": 2,
                   "first_step": 3, "per_name": {"reward_length_corr/rm": 2, "learned_vs_checkable/rm": 1}}
    assert alert_figures([], 5)["first_step"] is None
    summary = {"true_preference_before": 0.3, "true_preference_after": 0.1, "kl": 0.02, "steps": 20,
               "dimensions": {"preference_rule": {"ci_low": -0.3, "ci_high": -0.1, "verdict": "regressed"}},
               "length": {"start": 20.0, "end": 40.0}, "report": {"html": "r.html"}}
    pol = policy_figures(summary, alerts)
    assert pol["true_preference_change_ci"] == [-0.3, -0.1] and pol["true_preference_verdict"] == "regressed"
    assert (pol["length_before"], pol["length_after"], pol["report"], pol["alerts"]["count"]) == (20.0, 40.0, "r.html", 3)


def test_headline_and_its_line():
    rounds = [{"grpo": {"true_preference_after": 0.12, "alerts": {"count": 4, "before_last_step": 3}},
               "rm": {"accuracy_length_differs": 0.6}},
              {"grpo": {"true_preference_after": 0.5, "alerts": {"count": 0, "before_last_step": 0}},
               "rm": {"accuracy_length_differs": 0.8}}]
    fig = headline(rounds)
    assert fig["true_preference_gain_points"] == 38.0 and fig["rm_accuracy_length_differs_gain"] == pytest.approx(0.2)
    assert headline_line(fig) == "coevolution: round 1 true preference 0.120 -> round 2 0.500 (round 1 alerts: 4)"


def test_mined_rows_of_held_out_prompts_are_dropped_and_round2_concatenates():
    held = heldout_questions()
    assert len(held) == 100
    one = sorted(held)[0]
    rows = [{"id": "a", "messages": [{"role": "user", "content": one}], "answers": []},
            {"id": "b", "messages": [{"role": "user", "content": "not a held-out prompt"}], "answers": []}]
    kept, dropped = drop_heldout_rows(rows, held)
    assert [r["id"] for r in kept] == ["b"] and dropped == 1
    old = [{"id": "o", "answers": []}]
    assert [r["id"] for r in round2_rows(old, kept, 1)] == ["o", "b"]
    assert [r["id"] for r in round2_rows(old, kept, 3)] == ["o", "b#0", "b#1", "b#2"]


def test_bad_arguments_are_one_line_errors():
    assert config_from_args(["--out", "x", "--rm", "a=1", "--rm", "b=2"]).rm == ["a=1", "b=2"]
    assert config_from_args([]).grpo == [] and config_from_args([]).out == CoevoConfig().out
    for argv in (["--length-bias", "1.5"], ["--mined-copies", "0"], ["--answers-per-prompt", "1"]):
        with pytest.raises(DataError):
            config_from_args(argv)
    assert issubclass(StageError, DataError)  # a failed stage is a user-facing one-line error


def test_a_failed_stage_names_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("RLVR_CACHE", str(tmp_path / "cache"))
    cfg = CoevoConfig(out=str(tmp_path / "c"), train_rows=8, heldout_rows=4, rm=["trainer.no_such_knob=1"])
    with pytest.raises(StageError, match=r"stage round1-rm failed \(exit status 1\).*logs/round1-rm.log"):
        run_loop(cfg)
