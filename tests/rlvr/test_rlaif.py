"""RLAIF: constitutions (shipped, user files, every bad shape one line), the pure label figures on hand-made
pairs, and `rlvr-rlaif` end to end on the tiny preference policy with a scripted judge over HTTP (labels ->
rlvr-rm -> GRPO against it), plus its exit-2 bad input."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from rlvr.config import ConfigError
from rlvr.data.schema import Prompt
from rlvr.pipelines.constitution import available_constitutions, load_constitution, parse_constitution
from rlvr.pipelines.rlaif import config_from_args, is_tie, pair_rows, truth_agreement
from tests.rlvr.test_judge import Scripted, _completion


# ---- constitutions -----------------------------------------------------------------------
def test_the_shipped_constitution_loads_with_a_content_version():
    assert "default" in available_constitutions()
    c = load_constitution("default")
    assert [p["name"] for p in c.principles][:2] == ["helpful", "honest"]
    assert all(p["weight"] > 0 and p["description"] for p in c.principles)
    assert re.fullmatch(r"v1-[0-9a-f]{8}", c.version) and c.origin == f"constitution:default@{c.version}"


@pytest.mark.parametrize("name", available_constitutions())
def test_every_shipped_constitution_loads(name):
    assert load_constitution(name).principles


def test_a_user_file_loads_and_a_changed_wording_changes_the_version(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nprinciples:\n  - {name: brief, description: Short answers.}\n")
    first = load_constitution(str(path))
    assert first.principles == ({"name": "brief", "description": "Short answers.", "weight": 1.0},)
    path.write_text("name: mine\nprinciples:\n  - {name: brief, description: Very short answers.}\n")
    assert load_constitution(str(path)).version != first.version


@pytest.mark.parametrize("data, says", [
    ({"name": "x"}, "has no principles"),
    ({"principles": []}, "has no principles"),
    ({"principles": [{"name": "a"}]}, "needs a name and a description"),
    ({"principles": [{"name": "a", "description": "d"}, {"name": "a", "description": "e"}]}, "appears twice"),
    ({"principles": [{"name": "a", "description": "d", "weight": 0}]}, "a number > 0"),
    ({"principles": [{"name": "a", "description": "d", "weight": "high"}]}, "a number > 0"),
    ({"principles": [{"name": "a", "description": "d", "wieght": 2}]}, "unknown key(s) wieght"),
    (["a", "b"], "a mapping"),
])
def test_bad_constitutions_are_one_line(data, says):
    with pytest.raises(ConfigError) as exc:
        parse_constitution(data, "constitution c.yaml")
    assert says in str(exc.value) and "\n" not in str(exc.value)


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="not one of the shipped constitutions \\(.*default"):
        load_constitution("no_such_constitution")


# ---- pure figures ------------------------------------------------------------------------
def _prompt(q):
    return Prompt(messages=({"role": "user", "content": q},), reference={"answer": "x"}, verifier="preference_rule")


def test_pair_rows_rank_the_winner_first_and_count_ties_and_missing_verdicts():
    prompts = [_prompt(f"q{i}") for i in range(4)]
    answers = [("a0", "b0"), ("a1", "b1"), ("a2", "b2"), ("a3", "b3")]
    rows, counts = pair_rows(prompts, answers, [1.0, 0.0, 0.5, None], "rlaif:j:constitution:c@v")
    assert counts == {"pairs": 4, "decided": 2, "tie": 1, "no_verdict": 1}
    assert [(a["text"], a["rank"]) for a in rows[0]["answers"]] == [("a0", 0), ("b0", 1)]
    assert [(a["text"], a["rank"]) for a in rows[1]["answers"]] == [("a1", 1), ("b1", 0)]
    assert rows[0]["origin"] == "rlaif:j:constitution:c@v" and rows[0]["messages"][0]["content"] == "q0"
    from rlvr.preference import load_preferences

    assert len(load_preferences(rows).pairs) == 2  # the rows are valid preference data


def test_truth_agreement_counts_only_pairs_the_truth_orders():
    judged = [1.0, 0.0, 1.0, 0.5, None, 1.0]
    truth = [(5, 3), (5, 3), (3, 5), (5, 1), (2, 1), (4, 4)]  # agree, disagree, disagree, tie, unjudged, truth tie
    out = truth_agreement(judged, truth + [])
    assert out["decided"] == 3 and out["agreement"] == pytest.approx(1 / 3)
    assert out["tie"] == 1 and out["unjudged"] == 1 and out["pairs_truth_orders"] == 5
    low, high = out["ci95"]
    assert 0 < low < 1 / 3 < high < 1
    assert truth_agreement([1.0], [None])["agreement"] is None


def test_a_tie_margin_drops_probability_verdicts_near_one_half():
    assert is_tie(0.5) and not is_tie(0.51) and is_tie(0.54, 0.05) and not is_tie(0.56, 0.05)
    prompts = [_prompt(f"q{i}") for i in range(4)]
    answers = [("a0", "b0"), ("a1", "b1"), ("a2", "b2"), ("a3", "b3")]
    rows, counts = pair_rows(prompts, answers, [0.7, 0.46, 0.53, None], "o", margin=0.05)
    assert counts == {"pairs": 4, "decided": 1, "tie": 2, "no_verdict": 1} and rows[0]["judge_share_first"] == 0.7
    out = truth_agreement([0.7, 0.46, 0.2], [(5, 3), (5, 3), (5, 3)], margin=0.05)
    assert (out["decided"], out["tie"], out["agreement"]) == (2, 1, 0.5)
    with pytest.raises(ConfigError, match="--tie-margin"):
        config_from_args(["--tie-margin", "0.5"])
    assert config_from_args(["--verdict", "logprob", "--tie-margin", "0.05"]).verdict == "logprob"


# ---- the command -------------------------------------------------------------------------
def _shown(messages):
    return re.findall(r"<answer>\n(.*?)\n</answer>", messages[1]["content"], re.DOTALL)


def _brief_and_direct(n, path, request):
    """A scripted judge: the answer without the disclaimer wins, then the shorter one."""
    a, b = (((" as an ai" in " " + x.lower()), len(x)) for x in _shown(request["messages"]))
    return 200, _completion("Helpful: compared.\nWINNER: " + ("A" if a < b else "B" if b < a else "TIE"))


TINY_POLICY = ["+experiment=tiny_rm_grpo", "model.hidden_size=32", "model.num_layers=1", "model.num_heads=2",
               "model.intermediate_size=64", "model.sft.steps=40", "data.eval_size=16", "trainer.total_steps=2",
               "trainer.prompts_per_step=4", "algorithm.group_size=4", "trainer.micro_batch_size=16", "trainer.eval.every=0",
               "trainer.sample_every=0", "reward.workers=1"]


def test_rlaif_labels_pairs_trains_a_reward_model_and_a_policy(tmp_path, train_env):
    judge = Scripted(_brief_and_direct, models=("scripted",))
    try:
        cmd = [sys.executable, "-m", "rlvr.pipelines.rlaif", "--out", str(tmp_path / "out"), "--prompts", "24",
               "--judge-url", judge.url, "--judge-model", "scripted", "--judge-option",
               f"cache_path={tmp_path / 'c.sqlite'}", *[f"--policy={o}" for o in TINY_POLICY],
               "--rm=+experiment=coevo_rm", "--rm=trainer.epochs=1", "--rm=model.hidden_size=32",
               "--rm=model.num_layers=1", "--rm=model.num_heads=2", "--rm=model.intermediate_size=64"]
        proc = subprocess.run(cmd, env=train_env, capture_output=True, text=True, timeout=600)
    finally:
        judge.close()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "out" / "rlaif.json").read_text())
    lab = result["label"]
    assert lab["pairs"] == 24 and lab["decided"] + lab["tie"] + lab["no_verdict"] + lab["identical"] == 24
    assert lab["decided"] >= 2
    assert lab["order_inconsistency"] == 0.0  # the scripted judge ignores positions
    assert lab["constitution"].startswith("constitution:default@v1-")
    rows = [json.loads(x) for x in (tmp_path / "out" / "data" / "rlaif.jsonl").read_text().splitlines()]
    assert len(rows) == lab["decided"] and all(r["origin"].startswith("rlaif:scripted:constitution:") for r in rows)
    assert lab["truth"]["decided"] >= 1 and 0.0 <= lab["truth"]["agreement"] <= 1.0
    assert result["rm"]["model_dir"] and result["grpo"]["true_preference_after"] is not None
    assert "rlaif: the policy's true_preference " in proc.stdout and result["grpo"]["truth"]["name"] == "true_preference"


def test_a_constitution_without_principles_is_one_error_line(tmp_path, train_env):
    bad = tmp_path / "empty.yaml"
    bad.write_text("name: empty\nprinciples: []\n")
    proc = subprocess.run([sys.executable, "-m", "rlvr.pipelines.rlaif", "--out", str(tmp_path / "o"),
                           "--constitution", str(bad)], env=train_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [x for x in (proc.stdout + proc.stderr).splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "has no principles" in lines[0]
