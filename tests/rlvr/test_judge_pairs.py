"""`data.source=judge_pairs`: both answer orders, ties skipped, a disjoint held-out set, a user's
chosen/rejected file, the traces of the built-in task, and the summary's per-order agreement."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from rlvr.config import DataConfig, JudgePairsConfig
from rlvr.data.judge_pairs import ORDERS, BuiltinJudgePairs, build_prompt_sets, judge_summary, judge_trace
from rlvr.data.preference_task import spec_of
from rlvr.data.sources import build_prompt_sets as any_source
from verifiers import get_verifier
from verifiers.preference import true_score

VERIFY = get_verifier("judge_verdict")


def answers(prompt) -> tuple[str, str, str]:
    """(question, answer A, answer B) read back from a judge prompt."""
    lines = prompt.messages[0]["content"].split("\n")
    return lines[1], lines[2][len("A: "):], lines[3][len("B: "):]


def test_every_pair_appears_in_both_orders_with_the_preferred_letter():
    train, held = any_source(DataConfig(source="judge_pairs", eval_size=20))
    for prompts in (train, held):
        for j in range(10):
            first, second = prompts[2 * j], prompts[2 * j + 1]
            q1, a1, b1 = answers(first)
            q2, a2, b2 = answers(second)
            assert q1 == q2 and (a1, b1) == (b2, a2) and a1 != b1
            assert first.reference == {"preferred": "A", "order": "chosen_first"}
            assert second.reference == {"preferred": "B", "order": "chosen_second"}
            assert first.uid.endswith("chosen_first") and second.uid.endswith("chosen_second")
            assert first.verifier == "judge_verdict"


def test_builtin_pairs_are_never_ties_and_the_label_follows_the_true_rule():
    task = BuiltinJudgePairs("train", 400, JudgePairsConfig())
    for j in range(200):
        key, chosen, rejected = task.pair(j)
        spec = spec_of(key[1])
        assert true_score(chosen, spec) > true_score(rejected, spec)


def test_held_out_questions_never_appear_in_training():
    train, held = build_prompt_sets(DataConfig(source="judge_pairs", eval_size=200))
    held_q = {answers(held[i])[0] for i in range(200)}
    train_q = {answers(train[i])[0] for i in range(3000)}
    assert len(held_q) == 100 and not held_q & train_q


def test_traces_are_true_on_held_out_and_sloppy_on_the_weak_item_in_training():
    train, held = build_prompt_sets(DataConfig(source="judge_pairs", eval_size=200))
    assert all(VERIFY.verify(completion=held[i].solution, reference=held[i].reference).reason == "correct"
               for i in range(200))
    reasons = Counter(VERIFY.verify(completion=train[i].solution, reference=train[i].reference).reason
                      for i in range(2000))
    assert set(reasons) == {"correct", "wrong_verdict"}  # always complete, sometimes wrong
    assert 0.6 < reasons["correct"] / 2000 < 0.9
    clean = build_prompt_sets(DataConfig(source="judge_pairs", eval_size=2,
                                         judge_pairs=JudgePairsConfig(weak_item=None)))[0]
    assert all(VERIFY.verify(completion=clean[i].solution, reference=clean[i].reference).reason == "correct"
               for i in range(300))


def test_a_sloppy_trace_skips_the_weak_item_on_both_answers_or_checks_it_on_both():
    """One draw per trace: two evasions are never scored apart by the sloppy item (see the module's docstring)."""
    import random

    spec = spec_of(0)
    evasions = ("Hi! Not sure.", "As an AI, no idea.")
    marks = Counter()
    for seed in range(400):
        trace = judge_trace(*evasions, spec, random.Random(seed), "correct", 0.3)
        marks[trace[trace.index("A:") + 2], trace[trace.index("B:") + 2]] += 1
    assert set(marks) == {("0", "0"), ("1", "1")}
    assert 0.2 < marks["0", "0"] / 400 < 0.4


def test_a_trace_marks_each_answer_item_by_item():
    spec = spec_of(0)  # What color is the sky? blue
    trace = judge_trace("Hi! It is blue.", "As an AI, not sure. Hope this helps!", spec)
    assert trace == ("<rubric>correct,clean,polite,concise</rubric><eval>A:1111=5 B:0000=0</eval>"
                     "<verdict>A</verdict>")


def test_the_source_is_deterministic_for_a_seed():
    a = build_prompt_sets(DataConfig(source="judge_pairs", eval_size=4))[0]
    b = build_prompt_sets(DataConfig(source="judge_pairs", eval_size=4))[0]
    c = build_prompt_sets(DataConfig(source="judge_pairs", eval_size=4, judge_pairs=JudgePairsConfig(seed=1)))[0]
    assert [a[i] for i in range(20)] == [b[i] for i in range(20)]
    assert [a[i] for i in range(20)] != [c[i] for i in range(20)]


def _rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):  # the published chat shape: whole conversations, the prompt shared
        user = {"role": "user", "content": f"question {i // 2}?"}
        rows.append({"chosen": [user, {"role": "assistant", "content": f"good {i}"}],
                     "rejected": [user, {"role": "assistant", "content": f"bad {i}"}]})
    rows.append({"prompt": "tied?", "chosen": "x", "rejected": "y", "score_chosen": 1, "score_rejected": 1})
    return rows


def test_a_chosen_rejected_file_becomes_judge_prompts_with_a_disjoint_held_out_split(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows(40)))
    train, held = build_prompt_sets(DataConfig(source="judge_pairs", path=str(path), eval_size=8))
    assert len(held) == 8 and len(train) == 2 * 40 - 8  # the tie makes no pair
    held_q = {answers(held[i])[0] for i in range(len(held))}
    train_q = {answers(train[i])[0] for i in range(len(train))}
    assert not held_q & train_q  # contexts are taken whole (two pairs share each question)
    q, a, b = answers(held[0])
    assert q.startswith("Q: question") and a.startswith("good") and b.startswith("bad")
    assert held[1].reference["preferred"] == "B" and held[0].solution is None
    assert "tied?" not in {q for q in train_q | held_q}


def test_a_file_with_no_usable_pairs_is_an_error(tmp_path):
    path = tmp_path / "ties.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "x", "rejected": "y", "score_chosen": 1,
                                "score_rejected": 1}) + "\n")
    with pytest.raises(ValueError, match="no preference pairs"):
        build_prompt_sets(DataConfig(source="judge_pairs", path=str(path), eval_size=2))


def test_an_odd_eval_size_is_refused():
    with pytest.raises(ValueError, match="even"):
        build_prompt_sets(DataConfig(source="judge_pairs", eval_size=3))


def _record(order: str, reason: str) -> dict:
    return {"reference": {"preferred": "A" if order == ORDERS[0] else "B", "order": order},
            "passed": reason == "correct", "verdicts": {"verifier": reason}}


def test_the_summary_reports_agreement_per_order_and_the_parse_rate():
    first = [_record(ORDERS[0], "no_verdict"), _record(ORDERS[1], "no_verdict")]
    last = [_record(ORDERS[0], "correct"), _record(ORDERS[0], "correct"), _record(ORDERS[1], "correct"),
            _record(ORDERS[1], "wrong_verdict")]
    s = judge_summary(first, last)
    assert s["judge_agreement_before"] == 0.0 and s["judge_parse_rate_before"] == 0.0
    assert s["judge_agreement_after"] == 0.75 and s["judge_parse_rate_after"] == 1.0
    assert s["judge_agreement_after_chosen_first"] == 1.0 and s["judge_agreement_after_chosen_second"] == 0.5
    assert s["judge_order_gap_after"] == 0.5


def test_the_tiny_models_context_is_a_model_option_in_its_cache_key(tmp_path):
    import json as _json

    from rlvr.config import TrainConfig
    from rlvr.models import base_model_dir

    cfg = TrainConfig()
    cfg.model.cache_dir = str(tmp_path)
    default = base_model_dir(cfg)
    cfg.model.max_positions = 384
    longer = base_model_dir(cfg)
    assert default != longer  # a new key; the default keeps the key it always had (existing caches stay valid)
    assert _json.loads((longer / "config.json").read_text())["max_position_embeddings"] == 384
    assert _json.loads((default / "config.json").read_text())["max_position_embeddings"] == 256


def test_a_trace_never_decides_by_position():
    """Swapping the answers swaps the verdict, also where the marks tie (the shorter answer wins there)."""
    import random

    train = BuiltinJudgePairs("train", 400, JudgePairsConfig())
    for j in range(100):
        key, chosen, rejected = train.pair(j)
        spec = spec_of(key[1])
        # weak_prob 0: the item is always marked met, so the marks of one answer never depend on the draws
        a = judge_trace(chosen, rejected, spec, random.Random(0), "correct", 0.0)
        b = judge_trace(rejected, chosen, spec, random.Random(1), "correct", 0.0)
        assert a[-len("A</verdict>"):] != b[-len("A</verdict>"):]


# ---- the trained judge served as a reward source is asked exactly what it was trained on -----------
def _served_requests(instruction, prompt, chosen, rejected):
    """The pair requests a `kind: judge` source (rubrics, both shown orders) sends for one group of two."""
    import torch

    from rlvr.config import RewardSource
    from rlvr.rewards.base import SourceContext
    from rlvr.rewards.judge import JudgeSource
    from rlvr.rewards.judge_modes import MODES

    options = {"base_url": "http://127.0.0.1:1/v1", "model": "judge", "mode": "group", "response_format": "rubrics",
               "recheck_fraction": 1.0, "on_unreachable": "outage", "cache": False,
               **({"instruction": instruction} if instruction is not None else {})}
    src = JudgeSource(RewardSource("genrm", 1.0, options, kind="judge"), "genrm",
                      SourceContext(1, 5.0, torch.device("cpu")))
    try:
        plan = MODES[src.opts.mode](src.settings, [prompt, prompt], [chosen, rejected])
    finally:
        src.close()
    return sorted(json.dumps(r.messages) for r in plan.requests)


@pytest.mark.parametrize("context", [
    [{"role": "user", "content": "What color is the sky?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Sky colour?"}],
])
@pytest.mark.parametrize("preset", [None, "smollm2_genrm"])
def test_the_served_judge_prompt_is_the_training_prompt_byte_for_byte(context, preset):
    from pathlib import Path

    import yaml

    from rlvr.data.judge_pairs import FileJudgePairs
    from rlvr.data.schema import Prompt
    from rlvr.preference.schema import Pair

    cfg = JudgePairsConfig()  # the default instruction, or the one a preset trains its judge with
    if preset is not None:
        conf = yaml.safe_load((Path(__file__).parents[2] / "conf" / "experiment" / f"{preset}.yaml").read_text())
        cfg = JudgePairsConfig(instruction=conf["data"]["judge_pairs"]["instruction"])
    chosen, rejected = "It is blue.", "Not sure. Glad I could help!"
    training = FileJudgePairs([Pair("p", context, chosen, rejected)], "train", cfg.instruction)
    trained_on = sorted(json.dumps(list(training[order].messages)) for order in (0, 1))  # both answer orders
    prompt = Prompt(tuple(context), "none", None, uid="p")
    served = _served_requests(cfg.instruction if preset is not None else None, prompt, chosen, rejected)
    assert served == trained_on
    if preset is not None:  # without the option the preset's judge would be asked in another wording
        assert _served_requests(None, prompt, chosen, rejected) != trained_on


def test_the_instruction_option_needs_the_rubrics_format():
    from rlvr.config import ConfigError
    from rlvr.rewards.judge import judge_options

    base = {"base_url": "http://127.0.0.1:1/v1", "model": "judge", "mode": "pairwise"}
    with pytest.raises(ConfigError, match="options.instruction .* needs response_format: rubrics"):
        judge_options("x", {**base, "instruction": "Which is better?"})
    with pytest.raises(ConfigError, match="options.instruction is empty"):
        judge_options("x", {**base, "response_format": "rubrics", "instruction": " "})
    assert judge_options("x", {**base, "response_format": "rubrics", "instruction": "Pick one."}).instruction


def test_the_cached_warm_up_is_keyed_by_the_judge_traces_version(monkeypatch, tmp_path):
    """A change to the built-in traces' code (its `trace_version`) must not reuse a warm-up trained on the old ones,
    also through the length check `rlvr.stage.load_data` wraps every training set in (which once hid the version)."""
    import rlvr.models
    from rlvr.config import TrainConfig
    from rlvr.data.chat import LengthChecked
    from rlvr.models.tiny import build_tokenizer
    from rlvr.sft.run import warm_up

    monkeypatch.setattr(rlvr.models, "cached", lambda path, build: path)
    cfg = TrainConfig()
    cfg.data.source, cfg.model.cache_dir, cfg.data.judge_pairs.num_train = "judge_pairs", str(tmp_path), 40
    train = LengthChecked(build_prompt_sets(cfg.data)[0], build_tokenizer(), 1000, "error", "training")
    assert train.trace_version == BuiltinJudgePairs.trace_version
    before = warm_up(cfg, tmp_path, train, None)
    assert warm_up(cfg, tmp_path, train, None) == before  # the same config and traces: the same warm-up
    monkeypatch.setattr(BuiltinJudgePairs, "trace_version", "another")
    assert warm_up(cfg, tmp_path, train, None) != before
