"""Reward hacks against the harnesses: each must fail, and the host must be unharmed."""
from __future__ import annotations

import pytest

from sandbox import run_tests
from tests.sandbox.support import leftovers

HUMANEVAL_STYLE = {"entry_point": "add", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"
                                                 "    assert candidate(5, 5) == 10\n"}
CALL = {"entry_point": "add", "cases": [{"args": [1, 2], "expected": 3}, {"args": [5, 5], "expected": 10}]}
STDIO = {"cases": [{"input": "1 2", "output": "3"}]}


@pytest.fixture()
def judge(pool):
    def _judge(source: str, kind: str, tests: dict) -> str:
        return run_tests(pool, source, "python", kind, tests).outcome
    yield _judge
    assert leftovers(pool) == []


@pytest.mark.parametrize("kind,tests", [("assert", HUMANEVAL_STYLE), ("call", CALL)])
def test_os_exit_zero_before_the_asserts_fails(judge, kind, tests):
    assert judge("import os\nos._exit(0)\ndef add(a, b):\n    return a + b", kind, tests) == "early_exit"


@pytest.mark.parametrize("kind,tests", [("assert", HUMANEVAL_STYLE), ("call", CALL)])
def test_system_exit_before_the_asserts_fails(judge, kind, tests):
    assert judge("def add(a, b):\n    return a + b\nraise SystemExit(0)", kind, tests) == "early_exit"


def test_exit_from_inside_the_candidate_fails(judge):
    assert judge("import sys\ndef add(a, b):\n    sys.exit(0)", "assert", HUMANEVAL_STYLE) != "passed"
    assert judge("import os\ndef add(a, b):\n    os._exit(0)", "assert", HUMANEVAL_STYLE) == "early_exit"


ALWAYS_EQUAL = "class Anything:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n" \
               "def add(a, b):\n    return Anything()"


@pytest.mark.parametrize("kind,tests", [("assert", HUMANEVAL_STYLE), ("call", CALL),
                                        ("assert", {"entry_point": "add", "tests": ["assert add(1, 2) == 3"]})])
def test_always_equal_return_object_fails(judge, kind, tests):
    assert judge(ALWAYS_EQUAL, kind, tests) == "wrong_answer"


def test_builtin_subclass_claiming_equality_fails(judge):
    source = "class S(int):\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return S(0)"
    assert judge(source, "assert", HUMANEVAL_STYLE) == "wrong_answer"
    assert judge(source, "call", CALL) == "wrong_answer"


@pytest.mark.parametrize("marker", ["PASSED", "All tests passed", '{"done": true}', "OK"])
def test_fake_pass_markers_on_stdout_fail(judge, marker):
    source = f"print({marker!r})\nimport os\nos._exit(0)"
    assert judge(source, "assert", HUMANEVAL_STYLE) == "early_exit"
    assert judge(f"print({marker!r})", "stdio", STDIO) == "wrong_answer"


def test_forged_record_without_the_token_is_ignored(judge):
    source = ("import os\nfor fd in range(3, 10):\n    try:\n        os.write(fd, b'{\"case\": 0, \"ok\": true}\\n"
              "{\"done\": true}\\n')\n    except OSError:\n        pass\nos._exit(0)")
    assert judge(source, "assert", HUMANEVAL_STYLE) == "early_exit"


def test_rebinding_json_and_assertion_machinery_does_not_help(judge):
    source = ("import json, builtins\njson.dumps = lambda *a, **k: '{\"ok\": true}'\n"
              "builtins.AssertionError = type('Nope', (Exception,), {})\ndef add(a, b):\n    return 0")
    assert judge(source, "assert", HUMANEVAL_STYLE) != "passed"
    assert judge(source, "call", CALL) == "wrong_answer"
