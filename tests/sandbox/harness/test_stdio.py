from sandbox import HarnessOptions, Limits, run_tests
from sandbox.harness.stdio import outputs_match

TWO_CASES = {"cases": [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "10\n"}]}


def test_whitespace_is_normalized():
    assert outputs_match("1  2 \n3\n\n\n", "1 2\n3")
    assert not outputs_match("1 2 3", "1 2\n3")


def test_float_tolerance_is_optional_and_relative():
    assert not outputs_match("0.3333", "0.333333")
    assert outputs_match("0.333333", "0.3333333", float_tolerance=1e-6)
    assert outputs_match("1000000.1", "1000000", float_tolerance=1e-6)
    assert not outputs_match("abc", "abd", float_tolerance=1.0)


def test_all_cases_pass(pool):
    report = run_tests(pool, "a, b = map(int, input().split())\nprint(a + b)", "python", "stdio", TWO_CASES)
    assert report.outcome == "passed" and (report.passed, report.total) == (2, 2)


def test_early_stop_skips_the_rest(pool):
    report = run_tests(pool, "print(3)", "python", "stdio", {"cases": TWO_CASES["cases"] * 2})
    assert [c.outcome for c in report.cases] == ["passed", "wrong_answer", "skipped", "skipped"]


def test_without_early_stop_every_case_runs(pool):
    report = run_tests(pool, "print(3)", "python", "stdio", {"cases": TWO_CASES["cases"] * 2},
                       HarnessOptions(early_stop=False))
    assert [c.outcome for c in report.cases] == ["passed", "wrong_answer"] * 2 and report.fraction == 0.5


def test_a_case_that_times_out_is_a_timeout(pool):
    report = run_tests(pool, "while True: pass", "python", "stdio", TWO_CASES, HarnessOptions(limits=Limits(wall_s=0.5)))
    assert report.outcome == "timeout"


def test_python_syntax_error_is_a_compile_error(pool):
    assert run_tests(pool, "print(", "python", "stdio", TWO_CASES).outcome == "compile_error"
