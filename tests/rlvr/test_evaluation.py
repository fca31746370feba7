"""Held-out evaluation: the aggregate metrics, the per-prompt records, and their files."""
from __future__ import annotations

import json

import pytest
import torch

from rlvr.config import EvalConfig
from rlvr.data.schema import Prompt
from rlvr.eval.heldout import evaluate, eval_records, read_eval_records, run_evaluation, write_eval_records
from rlvr.rewards import RewardResult
from rlvr.rollout.base import RolloutBatch

PROMPTS = [Prompt(({"role": "user", "content": f"{i}+1"},), "math", str(i + 1), uid=f"eval-{i}") for i in range(3)]


class Engine:
    """Greedy answers: 'A' * (i + 1) for prompt i; the last one hits the budget."""

    def generate(self, prompts, params, seeds=None):
        n = len(prompts) * params.n
        lengths = torch.tensor([min(i % len(prompts) + 1, 3) for i in range(n)])
        mask = (torch.arange(3) < lengths.unsqueeze(1)).float()
        ids = torch.ones((n, 3), dtype=torch.long)
        return RolloutBatch(ids, ids, ids, mask, torch.zeros(n, 3), lengths >= 3,
                            ["A" * int(x) for x in lengths])


class Scorer:
    """verifier: passes answers of length 2; rm: the length, scoring only the first two rows."""

    decides_pass = True

    def score(self, prompts, texts):
        lengths = torch.tensor([float(len(t)) for t in texts])
        verifier = (lengths == 2).float()
        return RewardResult(verifier + lengths, {"verifier": verifier, "rm": lengths},
                            {"verifier": ["correct" if v else "wrong_answer" for v in verifier],
                             "rm": ["scored"] * len(texts)}, verifier.bool(), "verifier",
                            raw={"rm": lengths * 10}, applies={"rm": torch.arange(len(texts)) < 2},
                            learned=frozenset({"rm"}))


def test_records_keep_every_source_per_prompt():
    ev = run_evaluation(Engine(), Scorer(), PROMPTS, [[1]] * 3, EvalConfig(k=0), 1.0, 3, seed=0)
    assert ev.metrics == evaluate(Engine(), Scorer(), PROMPTS, [[1]] * 3, EvalConfig(k=0), 1.0, 3, seed=0)
    assert ev.metrics["eval/pass@1"] == pytest.approx(1 / 3)
    assert ev.metrics["eval/reward/rm/mean"] == pytest.approx(1.5)  # over the rows it scores
    rows = ev.records(step=7)
    assert [r["length"] for r in rows] == [1, 2, 3] and [r["truncated"] for r in rows] == [False, False, True]
    assert rows[1] == {"step": 7, "index": 1, "uid": "eval-1", "messages": [{"role": "user", "content": "1+1"}],
                       "reference": "2", "completion": "AA", "length": 2, "truncated": False, "reward": 3.0,
                       "passed": True, "scores": {"verifier": 1.0, "rm": 2.0}, "raw": {"rm": 20.0},
                       "verdicts": {"verifier": "correct", "rm": "scored"}}
    assert rows[2]["scores"] == {"verifier": 0.0, "rm": None} and rows[2]["raw"] == {"rm": None}


def test_records_without_a_pass_deciding_source():
    greedy = Engine().generate([[1]] * 2, type("P", (), {"n": 1})())
    result = RewardResult(torch.tensor([0.5, 0.25]), {"rm": torch.tensor([0.5, 0.25])}, {"rm": ["scored"] * 2},
                          None, None)
    rows = eval_records(0, PROMPTS[:2], greedy, result)
    assert [r["passed"] for r in rows] == [None, None] and rows[0]["raw"] == {}


def test_files_round_trip_and_torn_lines(tmp_path):
    ev = run_evaluation(Engine(), Scorer(), PROMPTS, [[1]] * 3, EvalConfig(k=0), 1.0, 3, seed=0)
    path = write_eval_records(tmp_path, 50, ev.records(50))
    assert path == tmp_path / "eval" / "step_000050.jsonl"
    write_eval_records(tmp_path, 0, ev.records(0))
    got = read_eval_records(tmp_path)
    assert sorted(got) == [0, 50] and got[50] == json.loads(json.dumps(ev.records(50)))
    path.write_text(path.read_text() + '{"step": 50, "ind')  # a killed run's torn last line
    assert len(read_eval_records(tmp_path)[50]) == 3
    path.write_text("not json\n" + path.read_text())
    with pytest.raises(ValueError, match="step_000050.jsonl:1"):
        read_eval_records(tmp_path)
    assert read_eval_records(tmp_path / "nothing") == {}
