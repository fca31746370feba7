"""The code verifier: extraction, reference schema, reasons, partial credit."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from verifiers import Verdict, get_verifier
from verifiers.code import extract_program

def _refused() -> str | None:
    from sandbox import capabilities
    from sandbox.isolation import refusal
    return refusal(frozenset(n for n, info in capabilities().items() if info["active"]))


needs_sandbox = pytest.mark.skipif(bool(_refused()), reason=f"sandbox refuses this host: {_refused()}")

STDIO = {"kind": "stdio", "cases": [{"input": "2 3\n", "output": "5\n"}, {"input": "10 -1\n", "output": "9\n"}]}
ADD_PY = "a, b = map(int, input().split())\nprint(a + b)"


@pytest.fixture(scope="module")
def code():
    return get_verifier("code", timeout_s=5)


def fenced(body: str, tag: str = "python") -> str:
    return f"Here is my solution.\n```{tag}\n{body}\n```\nDone."


def test_registered_and_listed():
    from verifiers import available_verifiers
    assert "code" in available_verifiers()


def test_extracts_the_last_block_in_the_language():
    text = "```python\nprint(1)\n```\n```text\nnot code\n```\n```py\nprint(2)\n```"
    assert extract_program(text, "python") == "print(2)"


def test_untagged_block_then_whole_text_are_fallbacks():
    assert extract_program("```\nprint(3)\n```", "python") == "print(3)"
    assert extract_program("print(4)", "python") == "print(4)"
    assert extract_program("```cpp\nint main(){}\n```\n```python\nx=1\n```", "cpp") == "int main(){}"


@needs_sandbox
def test_correct_program_gets_full_reward(code):
    verdict = code.verify(completion=fenced(ADD_PY), reference=STDIO)
    assert (verdict.reward, verdict.reason) == (1.0, "correct") and verdict.details["passed"] == 2


@needs_sandbox
def test_reference_may_be_a_json_string(code):
    assert code.verify(completion=fenced(ADD_PY), reference=json.dumps(STDIO)).reason == "correct"


@needs_sandbox
def test_apps_style_reference_is_understood(code):
    stdio = {"inputs": ["2 3\n"], "outputs": ["5\n"]}
    call = {"fn_name": "add", "inputs": [[1, 2]], "outputs": [3]}
    assert code.verify(completion=ADD_PY, reference=stdio).reason == "correct"
    assert code.verify(completion="def add(a, b):\n    return a + b", reference=call).reason == "correct"


@pytest.mark.parametrize("program,reason", [
    ("print(5)", "wrong_answer"),
    ("print(", "compile_error"),
    ("raise ValueError", "runtime_error"),
    ("while True: pass", "timeout"),
    ("x = bytearray(8 << 30)", "memory_limit"),
    ("import os\nos._exit(0)", "wrong_answer"),
])
@needs_sandbox
def test_failure_reasons(program, reason):
    verifier = get_verifier("code", timeout_s=1)
    verdict = verifier.verify(completion=fenced(program), reference=STDIO)
    assert (verdict.reward, verdict.reason) == (0.0, reason), verdict


@needs_sandbox
def test_early_exit_in_assert_tests_is_its_own_reason(code):
    ref = {"kind": "assert", "entry_point": "f", "test": "def check(c):\n    assert c() == 1\n"}
    verdict = code.verify(completion="import os\ndef f():\n    os._exit(0)", reference=ref)
    assert (verdict.reward, verdict.reason) == (0.0, "early_exit")


@needs_sandbox
def test_humaneval_prefix_is_prepended(code):
    ref = {"kind": "assert", "entry_point": "inc", "prefix": "def inc(x):", "test": "def check(c):\n    assert c(1) == 2\n"}
    assert code.verify(completion="    return x + 1", reference=ref).reason == "correct"


@needs_sandbox
def test_partial_credit_rewards_the_passing_fraction():
    verifier = get_verifier("code", partial_credit="true", early_stop="false")
    verdict = verifier.verify(completion="print(5)", reference=STDIO)
    assert (verdict.reward, verdict.reason) == (0.5, "wrong_answer")


def test_no_code_and_bad_reference_are_zero_not_errors(code):
    assert code.verify(completion="   ", reference=STDIO).reason == "no_code"
    assert code.verify(completion="print(1)", reference="{not json").reason == "bad_reference"
    assert code.verify(completion="print(1)", reference={"kind": "stdio"}).reason == "bad_reference"
    assert code.verify(completion="print(1)", reference=[1, 2]).reason == "bad_reference"
    assert code.verify(completion="print(1)", reference={"language": "cobol", "cases": []}).reason == "unsupported"


@needs_sandbox
def test_verdicts_are_json_serializable(code):
    verdict = code.verify(completion="print(5)", reference=STDIO)
    assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")
@needs_sandbox
def test_cpp_program_with_stdio_reference(code):
    source = "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<\"\\n\";}"
    assert code.verify(completion=fenced(source, "cpp"), reference={**STDIO, "language": "cpp"}).reason == "correct"
    assert code.verify(completion=fenced("int main({", "c++"),
                       reference={**STDIO, "language": "cpp"}).reason == "compile_error"


def test_options_are_typed_and_checked():
    with pytest.raises(Exception, match="no option"):
        get_verifier("code", nonsense=1)
    assert get_verifier("code", timeout_s="2.5").options.timeout_s == 2.5


def test_verifiers_code_does_not_import_torch():
    out = subprocess.run([sys.executable, "-c", "import sys, verifiers.code; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not _refused(), reason="only where the sandbox refuses this host")
def test_a_refusing_host_gives_sandbox_error_verdicts(code):
    assert code.verify(completion="print(5)", reference=STDIO).reason == "sandbox_error"
