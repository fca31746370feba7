"""`data.format`: training data in the standard datasets' published shapes (rows written by hand)."""
from __future__ import annotations

import json
import subprocess

import pytest

from rlvr.config import DataConfig
from rlvr.data import build_prompt_sets

from .conftest import REPO, train_command

GSM8K = [{"question": f"Tom has {a} apples and buys {b} more. How many apples does he have?",
          "answer": f"Tom has {a}+{b} = <<{a}+{b}={a + b}>>{a + b} apples.\n#### {a + b}"} for a, b in
         [(3, 4), (10, 12), (7, 8), (1, 1), (20, 5), (6, 6)]]
HUMANEVAL = {"task_id": "HumanEval/0", "prompt": "def inc(x: int) -> int:\n    \"\"\"Add one.\"\"\"\n",
             "canonical_solution": "    return x + 1\n", "test": "def check(candidate):\n    assert candidate(1) == 2\n",
             "entry_point": "inc"}


def _file(tmp_path, rows, name="train.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_gsm8k_rows_become_prompts_with_the_final_answer_and_a_clean_sft_target(tmp_path, capsys):
    cfg = DataConfig(source="file", path=_file(tmp_path, GSM8K), eval_size=2)
    train, held = build_prompt_sets(cfg)
    p = train[0]
    assert p.messages == ({"role": "user", "content": GSM8K[0]["question"]},) and p.verifier == "math"
    assert p.reference == "7" and "<<" not in p.solution and p.solution.endswith("#### 7")
    assert len(train) == 4 and len(held) == 2 and "format gsm8k" in capsys.readouterr().out


def test_humaneval_rows_carry_the_assert_reference_and_the_code_verifier(tmp_path):
    cfg = DataConfig(source="file", path=_file(tmp_path, [HUMANEVAL] * 3), eval_size=1, format="humaneval")
    p = build_prompt_sets(cfg)[0][0]
    assert p.verifier == "code" and p.reference["entry_point"] == "inc" and p.reference["prefix"] == HUMANEVAL["prompt"]
    assert "def inc(x: int)" in p.messages[0]["content"] and "return x + 1" in p.solution


def test_generic_columns_and_sft_only_rows_keep_working(tmp_path):
    rows = [{"prompt": "1+1", "reference": "2"}] * 3
    assert build_prompt_sets(DataConfig(source="file", path=_file(tmp_path, rows), eval_size=1))[0][0].reference == "2"
    sft = [{"prompt": "hi", "solution": "hello"}] * 3  # no reference, no format fits: the generic columns
    assert build_prompt_sets(DataConfig(source="file", path=_file(tmp_path, sft, "sft.jsonl"), eval_size=1))[0][0].solution == "hello"


def test_a_format_the_columns_do_not_fit_is_refused_naming_them(tmp_path):
    cfg = DataConfig(source="file", path=_file(tmp_path, GSM8K), eval_size=2, format="mbpp")
    with pytest.raises(ValueError, match="data.format=mbpp needs the columns text or prompt, test_list"):
        build_prompt_sets(cfg)


def test_a_row_the_format_cannot_read_is_one_error_line_naming_it(tmp_path, train_env):
    rows = [{"question": "q", "input_output": json.dumps({"inputs": ["1"], "outputs": ["1"]})}] * 3
    rows[1] = {"question": "q", "input_output": "{broken"}
    cmd = train_command(tmp_path / "run", "data=jsonl", f"data.path={_file(tmp_path, rows)}", "data.eval_size=1",
                        "model.sft.steps=0")
    proc = subprocess.run(cmd, env=train_env, cwd=REPO, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr[-2000:]
    assert "row train-1 (format apps)" in errors[0] and "not JSON" in errors[0]
    assert "Traceback" not in proc.stderr
