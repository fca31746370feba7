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
from __future__ import annotations

import importlib
from typing import Any

# Loaded on first use: the warm worker imports ``sandbox.harness.driver`` and should not
# pay for the parent-side harnesses in every fork.
_KINDS = ("sandbox.harness.stdio", "sandbox.harness.call", "sandbox.harness.assertion")
_EXPORTS = {name: "sandbox.harness.base" for name in (
    "BadTests", "CaseResult", "HarnessOptions", "HarnessReport", "available_harnesses", "register_harness")}
__all__ = sorted(_EXPORTS) + ["get_harness", "run_tests"]


def _load_kinds() -> None:
    for module in _KINDS:
        importlib.import_module(module)


def get_harness(kind: str) -> Any:
    """The harness registered as ``kind``; raises ``BadTests`` listing the known kinds."""
    _load_kinds()
    from sandbox.harness.base import get_harness as lookup
    return lookup(kind)


def run_tests(pool: Any, source: str, language: str, kind: str, tests: Any, options: Any = None) -> Any:
    """Run ``source`` against ``tests`` with the harness ``kind`` -> ``HarnessReport``.

    Raises ``BadTests`` for malformed tests.
    """
    from sandbox.harness.base import HarnessOptions
    return get_harness(kind).run(pool, source, language, tests, options or HarnessOptions())


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sandbox.harness' has no attribute {name!r}")
    if name == "available_harnesses":
        _load_kinds()
    return getattr(importlib.import_module(_EXPORTS[name]), name)
