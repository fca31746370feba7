"""The ``code`` verifier: run the completion's program against the reference tests.

    >>> from verifiers import get_verifier
    >>> v = get_verifier("code")
    >>> v.verify(completion="```python\\nprint(int(input()) + 1)\\n```",
    ...          reference={"kind": "stdio", "cases": [{"input": "41", "output": "42"}]}).reason
    'correct'

The program is the last fenced block tagged with the language (``python``/``py``,
``cpp``/``c++``), else the last untagged fenced block, else the whole completion. It
runs in ``sandbox`` (see its threat model) under the harness the reference names.

Reference schema (a dict, or the same as a JSON string - e.g. a CSV/JSONL column):

- common keys: ``kind`` (``stdio`` | ``call`` | ``assert``; inferred when absent),
  ``language`` (default: the ``language`` option), ``prefix`` (code put before the
  program, e.g. a HumanEval prompt when the model writes only the body);
- ``stdio``:  ``{"cases": [{"input": "1 2\\n", "output": "3\\n"}], "float_tolerance": 1e-6}``;
  the APPS/TACO form ``{"inputs": [...], "outputs": [...]}`` is accepted too (a list of lines
  is joined with newlines);
- ``call``:   ``{"entry_point": "add", "cases": [{"args": [1, 2], "kwargs": {}, "expected": 3}]}``
  (a case's ``also_expected`` is a second accepted value); APPS form
  ``{"fn_name": "add", "inputs": [[1, 2]], "outputs": [[3]]}`` too, where a one-element list
  output also matches its element, as APPS's own harness accepts;
- ``assert``: ``{"test": "def check(candidate): ...", "entry_point": "add"}`` (HumanEval) or
  ``{"tests": ["assert add(1, 2) == 3"], "entry_point": "add", "setup": "..."}`` (MBPP).

Reward: 1.0 when every case passes, else 0.0 (or the passing fraction with
``partial_credit=true``). Reasons: ``correct``, ``wrong_answer``, ``compile_error``,
``runtime_error``, ``timeout``, ``memory_limit``, ``output_limit``, ``early_exit`` (the
program ended before its tests finished), ``no_code``, ``bad_reference``,
``unsupported`` (harness/language pair), ``sandbox_error``, ``error``.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from sandbox import BadTests, HarnessOptions, IsolationError, Limits, SandboxPool, get_language, run_tests
from sandbox.languages import UnknownLanguageError
from verifiers.base import BaseVerifier, Verdict
from verifiers.registry import register

__all__ = ["CodeVerifier", "CodeOptions", "extract_program", "parse_reference"]

_FENCE = re.compile(r"```[ \t]*([^\n`]*)\n(.*?)```", re.DOTALL)
_OUTCOME_REASON = {"passed": "correct", "cpu_limit": "timeout", "skipped": "wrong_answer"}
_POOLS: dict[tuple[int, int, bool], SandboxPool] = {}  # (pid, workers, strict); a forked child makes its own
_POOLS_LOCK = threading.Lock()


@dataclass(frozen=True)
class CodeOptions:
    language: str = "python"  # language when the reference names none
    timeout_s: float = 10.0  # wall seconds per run (stdio: per case; call/assert: all cases)
    memory_mb: int = 1024  # address-space limit per process
    partial_credit: bool = False  # reward the fraction of passing cases instead of all-or-nothing
    early_stop: bool = True  # stop at the first failing case
    workers: int = 2  # sandbox workers shared by every code verifier with the same settings
    strict_isolation: bool = False  # refuse to run when an isolation layer is unavailable

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.memory_mb < 64 or self.workers < 1:
            raise ValueError("code options need timeout_s > 0, memory_mb >= 64 and workers >= 1")


def extract_program(completion: str, language: str) -> str:
    """The last fenced block tagged ``language``, else the last untagged block, else the text."""
    spec = get_language(language)
    tagged, untagged = None, None
    for match in _FENCE.finditer(completion):
        tag = match.group(1).strip().lower().split()[0] if match.group(1).strip() else ""
        if not tag:
            untagged = match.group(2)
        elif tag == spec.name or tag in spec.fence_tags:
            tagged = match.group(2)
    chosen = tagged if tagged is not None else untagged if untagged is not None else completion
    return chosen.strip("\n")


def _apps_text(value: Any) -> str:
    """An APPS/TACO stdin or stdout: a string, or a list of lines."""
    return "\n".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _apps_call_case(args: Any, output: Any) -> dict[str, Any]:
    case = {"args": args if isinstance(args, list) else [args], "expected": output}
    if isinstance(output, list) and len(output) == 1:  # APPS wraps a return value in a one-element list
        case["also_expected"] = output[0]
    return case


def _apps_form(ref: dict[str, Any]) -> dict[str, Any]:
    inputs, outputs = ref.pop("inputs"), ref.pop("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
        raise BadTests("'inputs' and 'outputs' must be lists of equal length")
    if ref.get("fn_name"):
        ref.setdefault("entry_point", ref.pop("fn_name"))
        ref["cases"] = [_apps_call_case(a, o) for a, o in zip(inputs, outputs)]
        ref.setdefault("kind", "call")
    else:
        ref["cases"] = [{"input": _apps_text(i), "output": _apps_text(o)} for i, o in zip(inputs, outputs)]
        ref.setdefault("kind", "stdio")
    return ref


def parse_reference(reference: Any) -> dict[str, Any]:
    """The reference as a dict with a ``kind``; raises ``BadTests`` when it cannot be one."""
    if isinstance(reference, (str, bytes)):
        try:
            reference = json.loads(reference)
        except ValueError as exc:
            raise BadTests(f"reference is not JSON: {exc}") from None
    if not isinstance(reference, Mapping):
        raise BadTests(f"reference must be a dict (or its JSON), got {type(reference).__name__}")
    ref = dict(reference)
    if "inputs" in ref and "outputs" in ref:
        ref = _apps_form(ref)
    if "kind" not in ref:
        if "test" in ref or "tests" in ref:
            ref["kind"] = "assert"
        elif "entry_point" in ref:
            ref["kind"] = "call"
        elif "cases" in ref:
            ref["kind"] = "stdio"
        else:
            raise BadTests("reference has no 'kind' and no recognizable test fields")
    return ref


def _shared_pool(workers: int, strict: bool) -> SandboxPool:
    with _POOLS_LOCK:
        key = (os.getpid(), workers, strict)
        if key not in _POOLS:
            _POOLS[key] = SandboxPool(workers=workers, strict=strict)
        return _POOLS[key]


@atexit.register
def _close_pools() -> None:
    with _POOLS_LOCK:
        pools = [pool for (pid, _, _), pool in _POOLS.items() if pid == os.getpid()]
        _POOLS.clear()
    for pool in pools:
        pool.close()


@register("code")
class CodeVerifier(BaseVerifier):
    """Runs the extracted program against the reference tests in the sandbox."""

    Options = CodeOptions

    def verify(self, *, completion: str, reference: Any, **fields: Any) -> Verdict:
        try:
            return self._verify(completion, reference)
        except BadTests as exc:
            return Verdict(0.0, "bad_reference", {"error": str(exc)})
        except UnknownLanguageError as exc:
            return Verdict(0.0, "unsupported", {"error": str(exc)})
        except IsolationError as exc:  # the sandbox cannot run safely on this host
            return Verdict(0.0, "sandbox_error", {"error": str(exc)})
        except Exception as exc:  # noqa: BLE001 - a verifier never raises
            return Verdict(0.0, "error", {"error": f"{type(exc).__name__}: {exc}"})

    def _verify(self, completion: str, reference: Any) -> Verdict:
        opts: CodeOptions = self.options
        ref = parse_reference(reference)
        language = get_language(str(ref.get("language") or opts.language)).name
        program = extract_program(completion or "", language)
        if not program.strip():
            return Verdict(0.0, "no_code", {"language": language})
        program = str(ref.get("prefix") or "") + ("\n" if ref.get("prefix") else "") + program
        limits = Limits(wall_s=opts.timeout_s, memory_bytes=opts.memory_mb << 20)
        pool = _shared_pool(opts.workers, opts.strict_isolation)
        report = run_tests(pool, program, language, str(ref["kind"]), ref,
                           HarnessOptions(limits=limits, early_stop=opts.early_stop))
        reason = _OUTCOME_REASON.get(report.outcome, report.outcome)
        reward = 1.0 if report.outcome == "passed" else (report.fraction if opts.partial_credit else 0.0)
        details = {"language": language, "kind": ref["kind"], "passed": report.passed, "total": report.total,
                   "cases": [c.outcome for c in report.cases][:100]}
        if report.detail:
            details["detail"] = report.detail[:1000]
        return Verdict(float(reward), reason, details)
