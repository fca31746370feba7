"""`rlvr-eval`: a model scored on a whole dataset file with the training loop's own held-out evaluation,
rows written in the loop's record schema, an interrupted evaluation continued where it stopped."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

TINY = ["model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=64",
        "reward.workers=1", "rollout.max_new_tokens=8", "trainer.eval.num_samples=2", "trainer.eval.k=2"]


@pytest.fixture(scope="module")
def gsm8k_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "arith.jsonl"
    rows = [{"question": f"{a}+{b}", "answer": f"{a}+{b}=<<{a}+{b}={a + b}>>{a + b}\n#### {a + b}"}
            for a, b in [(1, 2), (3, 4), (5, 5), (2, 2), (7, 1), (6, 3), (4, 4), (9, 0), (8, 1), (3, 3)]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _eval(run_dir: Path, env: dict, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "rlvr.eval.cli", f"hydra.run.dir={run_dir}", *TINY, *overrides]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)


def _rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "eval" / "step_000000.jsonl").read_text().splitlines()]


def test_scores_every_row_with_pass_at_k_an_interval_and_the_loops_record_schema(tmp_path, train_env, gsm8k_file):
    run_dir = tmp_path / "eval"
    proc = _eval(run_dir, train_env, "data=jsonl", f"data.path={gsm8k_file}", "trainer.eval.chunk=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["rows"] == 10 and 0 <= summary["pass@1"] <= 1 and summary["k"] == 2 and "pass@2" in summary
    low, high = summary["pass@1_ci95"]
    assert 0 <= low <= summary["pass@1"] <= high <= 1
    assert sum(summary["verdicts"]["verifier"].values()) == 10
    rows = _rows(run_dir)
    assert sorted(r["index"] for r in rows) == list(range(10)) and all(r["samples"] == 2 for r in rows)
    assert {"uid", "messages", "reference", "completion", "reward", "passed", "scores", "verdicts"} <= set(rows[0])
    assert "rows/s" in proc.stdout and "pass@1" in proc.stdout


def test_an_interrupted_evaluation_continues_with_the_rows_it_had(tmp_path, train_env, gsm8k_file):
    fresh, resumed = tmp_path / "fresh", tmp_path / "resumed"
    args = ("data=jsonl", f"data.path={gsm8k_file}", "trainer.eval.chunk=4")
    assert _eval(fresh, train_env, *args).returncode == 0
    (resumed / "eval").mkdir(parents=True)
    kept = (fresh / "eval" / "step_000000.jsonl").read_text().splitlines()[:4]
    (resumed / "eval" / "step_000000.jsonl").write_text("\n".join(kept) + "\n" + kept[3][:20])  # a torn last line
    proc = _eval(resumed, train_env, *args)
    assert proc.returncode == 0 and "4 rows already scored" in proc.stdout, proc.stderr[-2000:]
    by_index = {r["index"]: (r["completion"], r["verdicts"]) for r in _rows(resumed)}
    assert by_index == {r["index"]: (r["completion"], r["verdicts"]) for r in _rows(fresh)}


def test_the_same_rows_get_the_same_verdicts_as_the_training_loops_held_out_evaluation(tmp_path, train_env,
                                                                                     gsm8k_file):
    train_dir, eval_dir = tmp_path / "train", tmp_path / "eval"
    cmd = [sys.executable, "-m", "rlvr.train", f"hydra.run.dir={train_dir}", *TINY, "data=jsonl",
           f"data.path={gsm8k_file}", f"data.eval_path={gsm8k_file}", "data.eval_split=train", "data.eval_size=10",
           "trainer.total_steps=1", "trainer.prompts_per_step=2", "algorithm.group_size=2", "trainer.micro_batch_size=4"]
    proc = subprocess.run(cmd, env=train_env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _eval(eval_dir, train_env, "data=jsonl", f"data.path={gsm8k_file}").returncode == 0
    loop = {r["index"]: (r["completion"], r["verdicts"]) for r in
            map(json.loads, (train_dir / "eval" / "step_000000.jsonl").read_text().splitlines())}
    assert loop == {r["index"]: (r["completion"], r["verdicts"]) for r in _rows(eval_dir)}


def test_rlvr_report_compares_two_evaluations_prompt_by_prompt(tmp_path, train_env, gsm8k_file):
    before, after = tmp_path / "before", tmp_path / "after"
    for run_dir, budget in ((before, 2), (after, 8)):
        assert _eval(run_dir, train_env, "data=jsonl", f"data.path={gsm8k_file}", f"rollout.max_new_tokens={budget}",
                     "trainer.eval.k=0").returncode == 0
    proc = subprocess.run([str(Path(sys.executable).parent / "rlvr-report"), str(before), str(after)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((after / "summary.json").read_text())
    verifier = summary["dimensions"]["verifier"]
    assert verifier["n"] == 10 and verifier["verdict"] in ("improved", "regressed", "flat")
    assert summary["before_dir"] == str(before) and (after / "report.html").is_file()
    assert summary["length"]["start"] <= 2 and summary["length"]["end"] <= 8  # the two answer budgets
    other = tmp_path / "other"
    (other / "eval").mkdir(parents=True)
    (other / "eval" / "step_000000.jsonl").write_text(json.dumps({"uid": "x", "index": 0, "reward": 0.0}) + "\n")
    bad = subprocess.run([str(Path(sys.executable).parent / "rlvr-report"), str(other), str(after)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "share no prompt" in bad.stderr
