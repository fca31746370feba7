"""The co-evolution loop: its figures on hand numbers, its arguments and a failed stage (the whole loop, every
stage's outputs and its learning: tests/rlvr/test_learning.py)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from rlvr.pipelines.coevolution import (CoevoConfig, StageError, alert_figures, bucket_accuracy, config_from_args,
                              drop_heldout_rows, headline, headline_line, heldout_questions, length_buckets,
                              mine_args, policy_figures, rm_figures, round2_rows, run_loop)
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
               "truth": {"source": "preference_rule", "name": "true_preference"},
               "dimensions": {"preference_rule": {"ci_low": -0.3, "ci_high": -0.1, "verdict": "regressed"}},
               "length": {"start": 20.0, "end": 40.0}, "report": {"html": "r.html"}}
    pol = policy_figures(summary, alerts)
    assert pol["true_preference_change_ci"] == [-0.3, -0.1] and pol["true_preference_verdict"] == "regressed"
    assert pol["true_preference_before"] == 0.3 and pol["true_preference_after"] == 0.1
    # a user's run names its own truth (reward.truth); the loop reads whatever it names, and nothing when none
    mine = policy_figures({"accuracy_before": 0.5, "accuracy_after": 0.7, "truth": {"source": "c", "name": "accuracy"},
                           "dimensions": {"c": {"ci_low": 0.1, "ci_high": 0.3, "verdict": "improved"}}}, [])
    assert (mine["accuracy_after"], mine["accuracy_verdict"]) == (0.7, "improved")
    assert not any(k.startswith("true_preference") for k in policy_figures({}, []))
    assert (pol["length_before"], pol["length_after"], pol["report"], pol["alerts"]["count"]) == (20.0, 40.0, "r.html", 3)


def test_headline_and_its_line():
    truth = {"source": "preference_rule", "name": "true_preference"}
    rounds = [{"grpo": {"true_preference_after": 0.12, "alerts": {"count": 4, "before_last_step": 3}, "truth": truth},
               "rm": {"accuracy_length_differs": 0.6}},
              {"grpo": {"true_preference_after": 0.5, "alerts": {"count": 0, "before_last_step": 0}, "truth": truth},
               "rm": {"accuracy_length_differs": 0.8}}]
    fig = headline(rounds)
    assert fig["true_preference_gain_points"] == 38.0 and fig["rm_accuracy_length_differs_gain"] == pytest.approx(0.2)
    assert headline_line(fig) == "coevolution: round 1 true preference 0.120 -> round 2 0.500 (round 1 alerts: 4)"
    for r in rounds:
        r["grpo"]["truth"] = {}
    assert headline_line(headline(rounds)) == "coevolution: no reward.truth named (round 1 alerts: 4)"


def test_mined_rows_of_held_out_prompts_are_dropped_and_round2_concatenates(tmp_path):
    from rlvr.eval.heldout import write_eval_records

    # the GRPO run's held-out records and the held-out preference rows name the held-out prompts (any task's)
    records = [{"step": 0, "index": i, "messages": [{"role": "user", "content": f"held {i}"}]} for i in range(3)]
    write_eval_records(tmp_path, 0, records)
    held = heldout_questions(tmp_path, [{"messages": [{"role": "system", "content": "s"},
                                                      {"role": "user", "content": "held row"}]}])
    assert held == {"held 0", "held 1", "held 2", "held row"}
    one = "held 1"
    rows = [{"id": "a", "messages": [{"role": "user", "content": one}], "answers": []},
            {"id": "b", "messages": [{"role": "user", "content": "not a held-out prompt"}], "answers": []}]
    kept, dropped = drop_heldout_rows(rows, held)
    assert [r["id"] for r in kept] == ["b"] and dropped == 1
    old = [{"id": "o", "answers": []}]
    assert [r["id"] for r in round2_rows(old, kept, 1)] == ["o", "b"]
    assert [r["id"] for r in round2_rows(old, kept, 3)] == ["o", "b#0", "b#1", "b#2"]


def test_the_relabeller_is_a_choice():
    demo = config_from_args([])
    assert mine_args(demo) == ["--relabel-verifier", "preference_rule", "--rank-by-detail", "true_score"]
    rule = config_from_args(["--relabel", "rule", "--relabel-name", "length_budget", "--relabel-opt", "max_chars=80"])
    assert mine_args(rule) == ["--relabel-rule", "length_budget", "--opt", "max_chars=80"]
    judge = config_from_args(["--relabel", "judge", "--relabel-opt", "base_url=http://h/v1", "--relabel-opt", "model=m"])
    assert mine_args(judge) == ["--relabel-judge", "--opt", "base_url=http://h/v1", "--opt", "model=m"]
    own = config_from_args(["--relabel", "verifier", "--relabel-name", "verifier", "--rank-by-detail", ""])
    assert mine_args(own) == ["--relabel-verifier", "verifier"]
    assert mine_args(config_from_args(["--relabel", "file", "--reviewed", "r.jsonl"])) == ["--reviewed", "r.jsonl"]
    assert config_from_args(["--resume"]).resume and not demo.resume


def test_bad_arguments_are_one_line_errors(tmp_path):
    assert config_from_args(["--out", "x", "--rm", "a=1", "--rm", "b=2"]).rm == ["a=1", "b=2"]
    assert config_from_args([]).grpo == [] and config_from_args([]).out == CoevoConfig().out
    data = tmp_path / "d.jsonl"
    data.write_text("")
    for argv in (["--length-bias", "1.5"], ["--mined-copies", "0"], ["--answers-per-prompt", "1"],
                 ["--relabel", "oracle"], ["--relabel", "file"], ["--relabel", "rule", "--relabel-name", ""],
                 ["--data", str(data)], ["--data", str(data), "--heldout-data", str(tmp_path / "missing.jsonl")]):
        with pytest.raises(DataError):
            config_from_args(argv)
    assert issubclass(StageError, DataError)  # a failed stage is a user-facing one-line error


def test_a_failed_stage_names_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("RLVR_CACHE", str(tmp_path / "cache"))
    cfg = CoevoConfig(out=str(tmp_path / "c"), train_rows=8, heldout_rows=4, rm=["trainer.no_such_knob=1"])
    with pytest.raises(StageError, match=r"stage round1-rm failed \(exit status 1\).*logs/round1-rm.log"):
        run_loop(cfg)


# ---- the mining stage on a user's own prompts, with each relabeller (rlvr-badcases runs as its own process) ------
QUESTION = [{"role": "user", "content": "Summarise the water cycle."}]
HELD = [{"role": "user", "content": "Summarise photosynthesis."}]
ANSWERS = ["Water evaporates, condenses and falls.", "Rain.", "Water evaporates, condenses into clouds, and falls."]


def _user_run(tmp_path, monkeypatch):
    """OUT/ with a user's preference files and a finished round 1 (summaries, bad cases, held-out records)."""
    from rlvr.eval.badcases import BadCaseLog
    from rlvr.eval.heldout import write_eval_records

    monkeypatch.setenv("RLVR_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    data, held = tmp_path / "mine.jsonl", tmp_path / "mine_heldout.jsonl"
    rows = [{"prompt": "Summarise tides.", "chosen": "The moon pulls the sea.", "rejected": "Water."}]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    held.write_text(json.dumps({"messages": HELD, "answers": [{"text": "Plants make sugar.", "rank": 0},
                                                              {"text": "Green.", "rank": 1}]}) + "\n")
    grpo = out / "round1-grpo"
    cases = [{"step": 3, "uid": f"u-{i}", "messages": q, "reference": None, "verifier": "none", "completion": t,
              "kinds": ["failed"]} for i, q in enumerate([QUESTION, HELD]) for t in ANSWERS]
    BadCaseLog(grpo).write(cases)
    write_eval_records(grpo, 0, [{"step": 0, "index": 0, "messages": HELD}])
    for stage in ("round1-rm", "round1-grpo"):
        (out / stage).mkdir(parents=True, exist_ok=True)
        (out / stage / "summary.json").write_text(json.dumps({"model_dir": str(out / "round1-rm" / "model"),
                                                              "steps": 1}))
    return out, data, held


def _stages(out, *argv):
    from rlvr.pipelines.coevolution import Stages

    return Stages(config_from_args(["--out", str(out), *argv]))


def test_mining_ranks_a_users_bad_cases_with_a_rule_and_drops_held_out_prompts(tmp_path, monkeypatch):
    out, data, held = _user_run(tmp_path, monkeypatch)
    stages = _stages(out, "--data", str(data), "--heldout-data", str(held), "--relabel", "rule",
                     "--relabel-name", "length_budget", "--relabel-opt", "max_chars=20", "--relabel-opt",
                     "falloff_chars=40")
    (out / "data").mkdir()
    (out / "data" / "heldout.jsonl").write_text(held.read_text())
    rows, info = stages.mine(1)
    # the held-out prompt's row is dropped; the other ranked by the rule: "Rain." within 20 characters
    assert info["heldout_prompt_rows_dropped"] == 1 and info["relabel"] == "rule" and len(rows) == 1
    assert rows[0]["messages"] == QUESTION
    assert {a["text"]: a["rank"] for a in rows[0]["answers"]} == {ANSWERS[0]: 1, ANSWERS[1]: 0, ANSWERS[2]: 2}


def test_mining_with_a_verifier_on_a_users_rows(tmp_path, monkeypatch):
    out, data, held = _user_run(tmp_path, monkeypatch)
    stages = _stages(out, "--data", str(data), "--heldout-data", str(held), "--relabel", "verifier",
                     "--relabel-name", "format", "--relabel-opt", "pattern=.*clouds.*", "--rank-by-detail", "")
    rows, info = stages.mine(1)
    assert info["heldout_prompt_rows_dropped"] == 1  # from the run's held-out records alone
    assert {a["text"]: a["rank"] for a in rows[0]["answers"]} == {ANSWERS[0]: 1, ANSWERS[1]: 1, ANSWERS[2]: 0}


def test_file_relabelling_stops_for_review_then_resumes_with_round1_reused(tmp_path, monkeypatch):
    out, data, held = _user_run(tmp_path, monkeypatch)
    review = tmp_path / "review.jsonl"
    argv = ["--out", str(out), "--data", str(data), "--heldout-data", str(held), "--relabel", "file",
            "--reviewed", str(review), "--resume"]
    monkeypatch.setattr("rlvr.pipelines.coevolution._round", lambda rnd, stages, *a: {
        "round": rnd, "rm": {}, "grpo": {}})  # round 1 itself is reused (its outputs exist); figures not needed
    result = run_loop(config_from_args(argv))
    assert result["review"] == str(review) and "fill in each answer's label" in result["line"]
    groups = [json.loads(x) for x in review.read_text().splitlines()]
    assert {g["messages"][0]["content"] for g in groups} == {QUESTION[0]["content"], HELD[0]["content"]}
    for g in groups:  # a person prefers the complete answer
        for a in g["answers"]:
            a["label"] = "good" if "clouds" in a["text"] else "bad"
    review.write_text("".join(json.dumps(g) + "\n" for g in groups))
    rows, info = _stages(*argv[1:2], *argv[2:]).mine(1)
    assert info["heldout_prompt_rows_dropped"] == 1 and len(rows) == 1
    assert {a["text"]: a["rank"] for a in rows[0]["answers"]} == {ANSWERS[0]: 1, ANSWERS[1]: 1, ANSWERS[2]: 0}
