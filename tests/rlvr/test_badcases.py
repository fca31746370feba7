"""Bad cases: mining (failed, disagreements with counterparts), the log, the review file, and
`rlvr-badcases` turning reviewed or relabelled cases into rlvr-rm preference rows."""
from __future__ import annotations

import json
import math

import pytest
import torch

from rlvr.eval.badcases import BadCaseLog, case_rows, counterpart, disagreements, failed_rows, mine, read_badcases
from rlvr.eval.badcases_review import label_rank, main, ranked_rows, review_groups
from rlvr.data.chat import DataError
from rlvr.data.schema import Prompt
from rlvr.rewards import RewardResult
from rlvr.eval.watch import StepView
from rlvr.eval.config import WatchConfig

NAN = math.nan


def test_failed_rows_round_robin_over_groups():
    passes = torch.tensor([0, 0, 1, 0, 1, 0, 0, 0.0])
    assert failed_rows(passes, 4, 3) == [0, 5, 1]
    assert failed_rows(passes, 4, 100) == [0, 5, 1, 6, 3, 7] and failed_rows(passes, 4, 0) == []
    assert failed_rows(torch.tensor([NAN, 1.0]), 2, 4) == []  # unscored rows never count as failed


def test_disagreements_and_counterparts_on_hand_numbers():
    learned = torch.tensor([0.9, 0.1, 0.5, 0.8, 0.2, 0.3, 0.7, 0.0])
    passes = torch.tensor([0, 1, 1, 0, 1, 0, 1, NAN])
    # over the 7 scored rows: top quarter >= 0.75, bottom quarter <= 0.25
    assert disagreements(learned, passes, 0.25) == ([0, 3], [1, 4])
    assert counterpart(0, learned, passes, 4) == 1  # group 0-3: passed, lowest learned
    assert counterpart(1, learned, passes, 4) == 0  # failed, highest learned
    assert counterpart(7, learned, passes, 4) is not None  # nan row: any sibling with a verdict
    assert counterpart(4, learned, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1.0]), 4) is None
    assert disagreements(learned, torch.full((8,), NAN), 0.25) == ([], [])
    assert disagreements(torch.zeros(8), passes, 0.25) == ([], [])  # no spread: nothing is high or low


def _view(step=3):
    rm = torch.tensor([0.9, 0.1, 0.4, 0.5])
    verifier = torch.tensor([0.0, 1.0, 1.0, 0.0])
    result = RewardResult(verifier + rm, {"verifier": verifier, "rm": rm},
                          {"verifier": ["wrong_answer", "correct", "correct", "no_answer"], "rm": ["scored"] * 4},
                          verifier.bool(), "verifier", raw={"rm": rm * 10}, learned=frozenset({"rm"}))
    return StepView(step, 2, ["long wrong", "ok", "fine", "?"], torch.tensor([10, 2, 4, 1]),
                    torch.tensor([True, False, False, False]), result)


PROMPTS = [Prompt(({"role": "user", "content": f"q{i // 2}"},), "exact", f"ref{i // 2}", uid=f"train-{i // 2}")
           for i in range(4)]


def test_mine_and_rows_carry_every_dimension():
    picked = mine(_view(), WatchConfig(failed_per_step=4, disagreements_per_step=4))
    assert {i: [k for k, _ in v] for i, v in picked.items()} == {
        0: ["failed", "disagreement", "counterpart"], 1: ["counterpart", "disagreement"], 3: ["failed"]}
    rows = case_rows(_view(), PROMPTS, picked, "train")
    first = rows[0]
    assert first["kinds"] == ["failed", "disagreement", "counterpart"] and first["step"] == 3
    assert first["reason"].startswith("failed: wrong_answer; rm high (top 25%) but failed: wrong_answer")
    assert first["scores"] == {"verifier": 0.0, "rm": pytest.approx(0.9)} and first["raw"] == {"rm": pytest.approx(9.0)}
    assert first["messages"] == [{"role": "user", "content": "q0"}] and first["reference"] == "ref0"
    assert first["length"] == 10 and first["truncated"] and first["passed"] is False and first["group"] == 0


def test_log_truncates_on_resume_and_reads_torn_files(tmp_path):
    log = BadCaseLog(tmp_path)
    assert log.path.read_text() == ""  # every run has the file
    for step in (1, 2, 3):
        log.write(case_rows(_view(step), PROMPTS, {0: [("failed", "x")]}, "train"))
    log.truncate(2)
    assert [r["step"] for r in read_badcases(log.path)] == [1, 2]
    log.path.write_text(log.path.read_text() + '{"step": 3, "compl')
    assert len(read_badcases(log.path)) == 2
    log.path.write_text('{"step": 1}\n' + log.path.read_text())
    with pytest.raises(ValueError, match="needs at least 'completion'"):
        read_badcases(log.path)


def test_review_groups_merge_a_prompts_cases_across_steps():
    cases = [{"uid": "a", "messages": [], "completion": "x", "kinds": ["failed"], "reason": "r1", "step": 1},
             {"uid": "a", "messages": [], "completion": "x", "kinds": ["alert"], "reason": "r2", "step": 5},
             {"uid": "a", "messages": [], "completion": "y", "kinds": ["counterpart"], "reason": "r3", "step": 5},
             {"uid": "", "messages": [{"role": "user", "content": "q"}], "completion": "z", "step": 2}]
    groups = review_groups(cases)
    assert [g["id"] for g in groups][0] == "a" and len(groups) == 2 and groups[1]["id"].startswith("p")
    x = groups[0]["answers"][0]
    assert x["kinds"] == ["failed", "alert"] and x["steps"] == [1, 5] and x["reasons"] == ["r1", "r2"]
    assert x["label"] == "" and len(groups[0]["answers"]) == 2


def test_labels_and_ranked_rows():
    assert [label_rank(x, "w") for x in ("good", "BAD", " ", "skip", None, 2, "3")] == [0, 1, None, None, None, 2, 3]
    with pytest.raises(DataError, match="label 'meh'"):
        label_rank("meh", "review row 'a', answer 0")
    groups = [{"id": "a", "messages": [], "answers": [{"text": "x"}, {"text": "y"}, {"text": "z"}]},
              {"id": "b", "messages": [], "answers": [{"text": "x"}]},
              {"id": "c", "messages": [], "answers": [{"text": "x"}, {"text": "y"}]}]
    rows, drops = ranked_rows(groups, [[0, None, 1], [0], [1, 1]], "badcases:run")
    assert rows == [{"id": "badcases:run/a", "messages": [], "answers": [{"text": "x", "rank": 0},
                                                                         {"text": "z", "rank": 1}],
                     "origin": "badcases:run"}]
    assert drops == {"too_few_answers": 1, "all_tie": 1}


@pytest.fixture
def run_dir(tmp_path):
    run = tmp_path / "run7"
    log = BadCaseLog(run)
    log.write(case_rows(_view(1), PROMPTS, mine(_view(1), WatchConfig()), "train"))
    return run


def test_cli_review_then_labels_then_preference_rows(run_dir, capsys):
    from rlvr.preference import load_preferences

    main([str(run_dir)])
    review = run_dir / "badcases_review.jsonl"
    groups = [json.loads(x) for x in review.read_text().splitlines()]
    assert "fill in each answer's label" in capsys.readouterr().out and len(groups) == 2
    for g in groups:
        for a in g["answers"]:
            a["label"] = "good" if a["verdicts"]["verifier"] == "correct" else "bad"
    review.write_text("".join(json.dumps(g) + "\n" for g in groups))
    main([str(run_dir), "--reviewed", str(review)])
    out = run_dir / "badcases_preferences.jsonl"
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert "origin badcases:run7" in capsys.readouterr().out
    assert rows[0]["answers"] == [{"text": "long wrong", "rank": 1}, {"text": "ok", "rank": 0}]
    prefs = load_preferences(out)  # rlvr-rm reads them
    assert [(p.chosen, p.rejected) for p in prefs.pairs] == [("ok", "long wrong")]  # train-1 had one bad case
    assert prefs.pairs[0].origin == "badcases:run7"


def test_cli_relabels_with_a_verifier(run_dir, capsys):
    rows = read_badcases(run_dir / "badcases.jsonl")
    for r in rows:  # make the reference the passing answer of its group
        r["reference"] = {"train-0": "ok", "train-1": "fine"}[r["uid"]]
    (run_dir / "badcases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    main([str(run_dir), "--relabel-verifier", "exact", "--out", str(run_dir / "relabelled.jsonl")])
    got = [json.loads(x) for x in (run_dir / "relabelled.jsonl").read_text().splitlines()]
    assert [[(a["text"], a["rank"]) for a in g["answers"]] for g in got] == [[("long wrong", 1), ("ok", 0)]]
    assert "dropped: too_few_answers 1" in capsys.readouterr().out  # train-1: one answer, nothing to rank


def test_cli_bad_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "metrics.jsonl").write_text("")  # a run that kept no bad case
    (tmp_path / "other").mkdir()
    main([str(tmp_path / "empty")])  # no bad cases: an explicit empty result, exit 0
    assert "no bad cases" in capsys.readouterr().out
    assert (tmp_path / "empty" / "badcases_review.jsonl").read_text() == ""
    for argv, message in (([str(tmp_path / "missing")], "no such run directory"),
                          ([str(tmp_path / "other")], "not a run directory"),
                          ([str(tmp_path / "empty"), "--reviewed", str(tmp_path / "nope.jsonl")], "no such file"),
                          ([str(tmp_path / "empty"), "--relabel-verifier", "nope"], "nope")):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2 and message in capsys.readouterr().err
    bad = tmp_path / "empty" / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "answers": [{"text": "x", "label": "meh"}, {"text": "y"}]}) + "\n")
    with pytest.raises(SystemExit):
        main([str(tmp_path / "empty"), "--reviewed", str(bad)])
    assert "label 'meh'" in capsys.readouterr().err


def test_cli_relabels_with_the_preference_tasks_true_rule(tmp_path, capsys):
    spec = {"answer": 7, "max_chars": 20, "banned": ["as an ai"], "greetings": ["hi", "hello"]}
    texts = ["The answer is 7, and here is a much longer explanation of it.", "Hi! 7", "Hello, 8"]
    run = tmp_path / "round1"
    BadCaseLog(run).write([{"step": 5, "uid": "pref-3", "messages": [{"role": "user", "content": "3+4?"}],
                            "reference": spec, "verifier": "preference_rule", "completion": t, "kinds": ["disagreement"]}
                           for t in texts])
    main([str(run), "--relabel-verifier", "preference_rule", "--rank-by-detail", "true_score"])
    rows = [json.loads(x) for x in (run / "badcases_preferences.jsonl").read_text().splitlines()]
    # "Hi! 7" meets every dimension (reward 1); the wrong answer keeps more true score than the rambling one
    assert [(a["text"], a["rank"]) for a in rows[0]["answers"]] == [(texts[0], 2), (texts[1], 0), (texts[2], 1)]
    assert rows[0]["origin"] == "badcases:round1" and rows[0]["messages"][0]["content"] == "3+4?"
