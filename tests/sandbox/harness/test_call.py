import pytest

from sandbox import BadTests, HarnessOptions, run_tests
from sandbox.harness.call import values_equal

ADD = {"entry_point": "add", "cases": [{"args": [1, 2], "expected": 3}, {"args": [[1], [2]], "expected": [1, 2]}]}


def test_values_compare_structurally_with_bools_apart():
    assert values_equal([1, [2.0]], [1, [2]])
    assert not values_equal(True, 1) and not values_equal(1, True)
    assert values_equal(0.1 + 0.2, 0.3, tol=1e-9) and not values_equal(0.1 + 0.2, 0.3)
    assert not values_equal({"a": 1}, {"a": 1, "b": 2})
    assert not values_equal("1", 1)


def test_correct_function_passes_every_case(pool):
    report = run_tests(pool, "def add(a, b):\n    return a + b", "python", "call", ADD)
    assert report.outcome == "passed" and report.passed == 2


def test_tuples_match_lists_and_kwargs_are_passed(pool):
    tests = {"entry_point": "f", "cases": [{"args": [1], "kwargs": {"k": 2}, "expected": [1, 2]}]}
    assert run_tests(pool, "def f(a, k=0):\n    return (a, k)", "python", "call", tests).outcome == "passed"


def test_class_method_entry_point(pool):
    tests = {"entry_point": "Solution.twice", "cases": [{"args": [4], "expected": 8}]}
    source = "class Solution:\n    def twice(self, x):\n        return 2 * x"
    assert run_tests(pool, source, "python", "call", tests).outcome == "passed"


def test_exception_in_a_case_is_a_runtime_error(pool):
    report = run_tests(pool, "def add(a, b):\n    return a / 0", "python", "call", ADD)
    assert report.outcome == "runtime_error" and "ZeroDivisionError" in report.detail


def test_missing_entry_point_is_a_runtime_error(pool):
    assert run_tests(pool, "def other(): pass", "python", "call", ADD).outcome == "runtime_error"


def test_partial_results_without_early_stop(pool):
    report = run_tests(pool, "def add(a, b):\n    return 3", "python", "call", ADD, HarnessOptions(early_stop=False))
    assert [c.outcome for c in report.cases] == ["passed", "wrong_answer"]


def test_expected_values_never_enter_the_sandbox(pool):
    tests = {"entry_point": "f", "cases": [{"args": [], "expected": "leaked"}]}
    source = ("import gc\ndef f():\n    seen = any(type(o) is dict and 'expected' in o for o in gc.get_objects())\n"
              "    return 'leaked' if seen else 'not leaked'")
    assert run_tests(pool, source, "python", "call", tests).outcome == "wrong_answer"


def test_call_harness_needs_an_in_process_language(pool):
    assert run_tests(pool, "int main(){}", "cpp", "call", ADD).outcome == "unsupported"


@pytest.mark.parametrize("tests", [{"cases": []}, {"entry_point": "f"}, {"entry_point": "f", "cases": [{"args": []}]}])
def test_malformed_tests_raise_bad_tests(pool, tests):
    with pytest.raises(BadTests):
        run_tests(pool, "", "python", "call", tests)
