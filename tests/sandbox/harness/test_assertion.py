import pytest

from sandbox import BadTests, run_tests

HUMANEVAL = {"entry_point": "inc", "test": "METADATA = {}\n\ndef check(candidate):\n    assert candidate(1) == 2\n"
                                           "    assert helper() == 'h'\n"}
PROMPT_AND_BODY = "def helper():\n    return 'h'\n\ndef inc(x):\n    return x + 1\n"


def test_humaneval_style_check_passes(pool):
    assert run_tests(pool, PROMPT_AND_BODY, "python", "assert", HUMANEVAL).outcome == "passed"


def test_failing_assert_is_a_wrong_answer(pool):
    report = run_tests(pool, PROMPT_AND_BODY.replace("x + 1", "x"), "python", "assert", HUMANEVAL)
    assert report.outcome == "wrong_answer" and "AssertionError" in report.detail


def test_mbpp_style_snippets_are_cases(pool):
    tests = {"entry_point": "inc", "tests": ["assert inc(1) == 2", "assert inc(2) == 4", "assert inc(3) == 4"],
             "setup": "import math"}
    report = run_tests(pool, "def inc(x):\n    return x + 1", "python", "assert", tests)
    assert [c.outcome for c in report.cases] == ["passed", "wrong_answer", "skipped"]


def test_returned_values_keep_their_builtin_types(pool):
    tests = {"entry_point": "f", "tests": ["assert f() == (1, {2}, {'a': [3]}) and type(f()[0]) is int"]}
    assert run_tests(pool, "def f():\n    return (1, {2}, {'a': [3]})", "python", "assert", tests).outcome == "passed"


def test_runtime_error_in_the_candidate(pool):
    assert run_tests(pool, "def inc(x):\n    return 1 / 0", "python", "assert", HUMANEVAL).outcome == "runtime_error"


@pytest.mark.parametrize("tests", [{"test": "def check(c): pass"}, {"tests": []}, {"tests": "assert True"}])
def test_malformed_tests_raise_bad_tests(pool, tests):
    with pytest.raises(BadTests):
        run_tests(pool, "", "python", "assert", tests)
