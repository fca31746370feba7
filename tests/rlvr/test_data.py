"""Prompt sources, the row schema, the arithmetic generator and the resumable stream."""
from __future__ import annotations

import json

import pytest

from rlvr.config import DataConfig
from rlvr.data import ArithmeticTask, PromptStream, build_prompt_sets, row_to_prompt
from rlvr.data.arithmetic import LEVELS
from rlvr.data.chat import DataError, LengthChecked, encode_prompt
from rlvr.models.tiny import build_tokenizer


@pytest.mark.parametrize("difficulty", sorted(LEVELS))
def test_arithmetic_levels_are_deterministic_and_correct(difficulty):
    task = ArithmeticTask(difficulty, 50, seed=3, split="train")
    again = ArithmeticTask(difficulty, 50, seed=3, split="train")
    for i in range(50):
        p = task[i]
        expr = p.messages[0]["content"]
        assert p == again[i] and p.verifier == "math" and p.solution == f"\\boxed{{{p.reference}}}"
        assert str(eval(expr)) == p.reference  # noqa: S307 - digits and +/- only
        level = LEVELS[difficulty]
        assert sum(expr.count(op) for op in "+-") == level.terms - 1 or expr.startswith("-")


def test_held_out_problems_never_appear_in_training():
    cfg = DataConfig(eval_size=64)
    cfg.arithmetic.difficulty, cfg.arithmetic.num_train = 1, 500
    train, held = build_prompt_sets(cfg)
    held_exprs = {held[i].messages[0]["content"] for i in range(len(held))}
    assert len(held) == 64
    assert not held_exprs & {train[i].messages[0]["content"] for i in range(len(train))}
    with pytest.raises(IndexError):
        train[500]


def test_file_source_reads_the_row_schema(tmp_path):
    rows = [{"prompt": f"What is {i}+1?", "reference": str(i + 1), "level": i} for i in range(10)]
    rows[0] = {"messages": [{"role": "user", "content": "hi"}], "reference": "x", "verifier": "exact"}
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(source="file", path=str(path), eval_size=3, system_prompt="Be brief.")
    train, held = build_prompt_sets(cfg)
    assert len(train) == 7 and len(held) == 3
    first = train[0]
    assert first.verifier == "exact" and first.messages[0] == {"role": "system", "content": "Be brief."}
    assert first.messages[1]["content"] == "hi"
    p = held[0]
    assert p.verifier == "math" and p.reference == "8" and p.fields == {"level": 7}


def test_row_errors_name_the_field_to_set():
    with pytest.raises(ValueError, match="data.prompt_field"):
        row_to_prompt({"question": "q", "reference": "1"}, uid="0", prompt_field="prompt", messages_field="messages",
                      reference_field="reference", verifier_field="verifier", default_verifier="math")
    # no reference: allowed in a row (SFT-only rows, reward-model rows); load_data refuses it for verifiers
    p = row_to_prompt({"prompt": "q", "answer": "1"}, uid="0", prompt_field="prompt", messages_field="messages",
                      reference_field="reference", verifier_field="verifier", default_verifier="math")
    assert p.reference is None


def test_chat_row_ending_with_the_answer_is_an_sft_target():
    row = {"messages": [{"role": "user", "content": "2+2"}, {"role": "assistant", "content": "4"}], "reference": "4"}
    p = row_to_prompt(row, uid="0", prompt_field="prompt", messages_field="messages", reference_field="reference",
                      verifier_field="verifier", default_verifier="math")
    assert p.solution == "4" and [m["role"] for m in p.messages] == ["user"]


def test_built_in_tasks_speak_to_chat_models_through_template_and_system_prompt():
    cfg = DataConfig(eval_size=4, prompt_template="What is {prompt}? Answer with just the number.",
                     system_prompt="You are good at sums.")
    cfg.arithmetic.spaced = True
    train, held = build_prompt_sets(cfg)
    p = held[0]
    assert [m["role"] for m in p.messages] == ["system", "user"] and p.messages[0]["content"] == "You are good at sums."
    assert p.messages[1]["content"].startswith("What is ") and " + " in p.messages[1]["content"]
    assert p.messages[1]["content"].endswith("? Answer with just the number.") and p.reference == held.prompts[0].reference
    with pytest.raises(ValueError, match="no {prompt} placeholder"):
        build_prompt_sets(DataConfig(prompt_template="What is it?"))


def test_long_prompts_are_found_at_load_time_with_the_row_id():
    tok = build_tokenizer()
    task = ArithmeticTask(3, 50, seed=0, split="train")
    with pytest.raises(DataError, match=r"training prompt train-\d+ has \d+ tokens > data.max_prompt_tokens=6; "
                                        r".*data.on_long_prompt=drop"):
        LengthChecked(task, tok, 6, "error", "training")
    kept = LengthChecked(task, tok, 6, "drop", "training")
    assert 0 < len(kept) < 50 and kept.dropped == 50 - len(kept)
    assert all(len(encode_prompt(tok, kept[i], 6)) <= 6 for i in range(len(kept)))
    assert "dropped as longer than data.max_prompt_tokens" in kept.describe()
    with pytest.raises(DataError, match="every training prompt is longer"):
        LengthChecked(task, tok, 2, "drop", "training")


def test_chat_template_is_applied():
    tok = build_tokenizer()
    task = ArithmeticTask(2, 5, seed=0, split="train")
    ids = encode_prompt(tok, task[0], max_tokens=64)
    assert tok.decode(ids) == f"<|user|>{task[0].messages[0]['content']}<|assistant|>"
    with pytest.raises(ValueError, match="data.max_prompt_tokens"):
        encode_prompt(tok, task[0], max_tokens=3)


def test_prompt_stream_resumes_exactly():
    task = ArithmeticTask(3, 7, seed=0, split="train")
    a = PromptStream(task, seed=1)
    a.take(10)
    b = PromptStream(task, seed=1)
    b.load_state_dict(a.state_dict())
    assert [p.uid for p in a.take(9)] == [p.uid for p in b.take(9)]
    epoch = PromptStream(task, seed=1).take(7)
    assert sorted(p.uid for p in epoch) == sorted(f"train-{i}" for i in range(7))
