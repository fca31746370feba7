"""The alignment-tax bench's plumbing: one supervised file mixing both built-in tasks, each row
scored by its own verifier, and the `tiny_pref_arith_sft` preset training on it (bench/alignment_tax.py)."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from rlvr.config import DataConfig, RewardConfig, RewardSource
from rlvr.data.sources import build_prompt_sets
from rlvr.rewards import RewardScorer
from verifiers.preference import true_preferred

from .conftest import REPO


def _bench():
    spec = importlib.util.spec_from_file_location("alignment_tax", REPO / "bench" / "alignment_tax.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mix_file(tmp_path, per_task: int):
    bench = _bench()
    path = tmp_path / "mix.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in bench.mix_rows(bench.task_sets(bench.DEFAULT_TEMPLATE),
                                                                         per_task)))
    return path


def test_mixed_file_rows_are_scored_by_their_own_verifiers(tmp_path):
    # math references are strings and preference references dicts in one column: the file source
    # still hands every row to its own verifier, and each row's own solution scores as it should
    train, _ = build_prompt_sets(DataConfig(source="file", path=str(_mix_file(tmp_path, 20)), eval_size=2))
    prompts = [train[i] for i in range(len(train))]
    assert {p.verifier for p in prompts} == {"math", "preference_rule"}
    assert prompts[1].messages[-1]["content"].startswith("What is ") and prompts[1].solution.startswith("\\boxed{")
    scorer = RewardScorer(RewardConfig(sources=[RewardSource()], workers=1, timeout=30))
    try:
        passed = scorer.score(prompts, [p.solution for p in prompts]).passed.tolist()
    finally:
        scorer.close()
    for p, ok in zip(prompts, passed):
        expected = True if p.verifier == "math" else true_preferred(p.solution, p.reference)
        assert ok == expected, (p.uid, p.reference, p.solution)


def test_sft_preset_trains_on_the_mix(tmp_path, train_env):
    run_dir = tmp_path / "sft"
    cmd = [sys.executable, "-m", "rlvr.sft", "+experiment=tiny_pref_arith_sft", f"data.path={_mix_file(tmp_path, 40)}",
           f"hydra.run.dir={run_dir}", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
           "model.intermediate_size=64", "model.sft.steps=3", "model.sft.batch_size=8", "model.sft.probe_size=8",
           "reward.workers=1"]
    proc = subprocess.run(cmd, env=train_env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["probe_failures"] == {}  # the probe scored both kinds of rows
    assert 0.0 <= summary["probe_accuracy_after"] <= 1.0
