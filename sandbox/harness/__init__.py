"""Test harnesses: run a program against tests and report per-case results.

Kinds (registered by name, ``get_harness(kind)``):

- ``stdio``:  stdin -> expected stdout, compared in the parent (any language);
- ``call``:   function arguments -> expected return value, compared in the parent as
              serialized builtin values (Python);
- ``assert``: HumanEval/MBPP test code run against the program (Python).

No verdict ever travels through the program's stdout: ``stdio`` judges stdout in the
parent, ``call`` and ``assert`` report on a private descriptor with a per-run token,
and a missing final record means the program exited before its tests finished.
"""
from sandbox.harness import assertion, call, stdio  # noqa: F401 - registers the kinds
from sandbox.harness.base import (BadTests, CaseResult, HarnessOptions, HarnessReport, available_harnesses,
                                  get_harness, register_harness)

__all__ = ["BadTests", "CaseResult", "HarnessOptions", "HarnessReport", "available_harnesses", "get_harness",
           "register_harness", "run_tests"]


def run_tests(pool, source: str, language: str, kind: str, tests, options: HarnessOptions | None = None) -> HarnessReport:
    """Run ``source`` against ``tests`` with the harness ``kind``; raises ``BadTests`` for malformed tests."""
    return get_harness(kind).run(pool, source, language, tests, options or HarnessOptions())
