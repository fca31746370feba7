"""The run report: the paired bootstrap and verdicts on hand numbers, trade-offs, the alert timeline,
and `rlvr-report` on a hand-made run directory (HTML self-contained, summary.json merged)."""
from __future__ import annotations

import json
import random

import pytest

from rlvr.eval.stats import paired_bootstrap
from rlvr.eval.heldout import write_eval_records
from rlvr.eval.report import alert_timeline, build_report, dimension_table, main, pair_by_prompt, tradeoffs, verdict


def test_paired_bootstrap_on_hand_numbers():
    # differences [0, 1]: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4
    change, low, high = paired_bootstrap([0, 0], [0, 1], samples=4000, seed=3)
    assert (change, low, high) == (0.5, 0.0, 1.0)
    assert paired_bootstrap([1, 2, 3], [2, 3, 4]) == (1.0, 1.0, 1.0)  # every difference is 1
    a = [random.Random(0).random() for _ in range(50)]
    b = [x + 0.1 for x in a]
    assert paired_bootstrap(a, b, seed=5) == paired_bootstrap(a, b, seed=5)  # fixed seed, same interval
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1])


def test_verdicts_and_tradeoffs():
    assert [verdict(0.1, 0.3), verdict(-0.3, -0.1), verdict(-0.1, 0.2), verdict(0.0, 0.0)] == [
        "improved", "regressed", "flat", "flat"]
    first = [{"uid": f"e{i}", "scores": {"logic": 0.0, "style": 1.0, "same": 0.5}, "length": 10} for i in range(20)]
    last = [{"uid": f"e{i}", "scores": {"logic": 1.0, "style": 0.0 if i % 2 else 1.0, "same": 0.5}, "length": 30}
            for i in range(20)]
    dims = dimension_table(first, last)
    assert {k: d["verdict"] for k, d in dims.items()} == {"logic": "improved", "style": "regressed", "same": "flat"}
    assert dims["style"]["change"] == pytest.approx(-0.5) and dims["logic"]["n"] == 20
    assert tradeoffs(dims) == [{"improved": "logic", "regressed": "style", "changes": [1.0, -0.5]}]


def test_pairing_by_prompt():
    first = [{"uid": "a", "v": 1}, {"uid": "b", "v": 2}, {"uid": "c", "v": None}]
    last = [{"uid": "c", "v": 5}, {"uid": "b", "v": 4}, {"uid": "d", "v": 9}]
    assert pair_by_prompt(first, last, lambda r: r["v"]) == ([2.0], [4.0])


def test_alert_timeline_episodes():
    rows = [{"step": s, **({"alert/length_ratio": 1.0} if s in (3, 4, 5, 9) else {})} for s in range(1, 11)]
    rows.append({"step": 10, "eval/reward/mean": 0.5})
    got = alert_timeline(rows, [{"name": "length_ratio", "message": "long", "step": 3}])
    assert got == {"length_ratio": {"first_step": 3, "last_step": 9, "steps": 4, "episodes": [[3, 5], [9, 9]],
                                    "message": "long"}}


def _eval_row(i, step, logic, length):
    return {"step": step, "index": i, "uid": f"eval-{i}", "completion": "x" * length, "length": length,
            "truncated": False, "reward": logic, "passed": bool(logic), "scores": {"verifier": logic, "rm": length / 10},
            "raw": {}, "verdicts": {}}


@pytest.fixture
def run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"step": s, "reward/mean": 0.1 * s, "reward/verifier/mean": 0.5, "reward/rm/mean": 0.1 * s,
             "completion_len/mean": 5 + s, **({"alert/learned_vs_checkable/rm": 1.0} if s >= 8 else {})}
            for s in range(1, 11)]
    rows += [{"step": 0, "eval/reward/mean": 0.5, "eval/reward/verifier/mean": 0.5, "eval/reward/rm/mean": 0.5},
             {"step": 10, "eval/reward/mean": 0.5, "eval/reward/verifier/mean": 0.5, "eval/reward/rm/mean": 2.0}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_eval_records(run, 0, [_eval_row(i, 0, i % 2, 5) for i in range(16)])
    write_eval_records(run, 10, [_eval_row(i, 10, i % 2, 20) for i in range(16)])
    (run / "eval" / "sources.json").write_text(json.dumps({"verifier": {"kind": "verifier", "learned": False},
                                                           "rm": {"kind": "model", "learned": True}}))
    (run / "summary.json").write_text(json.dumps({"accuracy_before": 0.5, "steps": 10}))
    return run


def test_report_files_and_summary_merge(run, capsys):
    main([str(run)])
    out = capsys.readouterr().out
    assert "rm: 0.500 -> 2.000 (+1.500 [+1.500, +1.500]) improved" in out and "alert learned_vs_checkable/rm" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["accuracy_before"] == 0.5 and summary["steps"] == 10  # the loop's keys stay
    assert summary["dimensions"]["verifier"]["verdict"] == "flat" and summary["dimensions"]["rm"]["kind"] == "model"
    assert summary["alerts"]["learned_vs_checkable/rm"]["first_step"] == 8 and summary["eval_steps"] == [0, 10]
    assert summary["length"]["change"] == 15.0 and summary["tradeoffs"] == []
    page = (run / "report.html").read_text()
    assert "data:image/png;base64," in page and "<script" not in page and "http" not in page.replace(
        "<!DOCTYPE html>", "")
    assert (run / "report.png").stat().st_size > 10_000


def test_report_without_records_uses_the_logged_means(run):
    for path in (run / "eval").glob("step_*.jsonl"):
        path.unlink()
    report = build_report(run)
    assert report["dimensions"]["rm"]["verdict"] == "no_records" and report["dimensions"]["rm"]["change"] == 1.5
    assert report["length"] is None


def test_report_bad_input(tmp_path, capsys):
    for target, message in ((tmp_path / "missing", "no such run directory"), (tmp_path, "not a run directory")):
        with pytest.raises(SystemExit) as exc:
            main([str(target)])
        assert exc.value.code == 2 and message in capsys.readouterr().err
