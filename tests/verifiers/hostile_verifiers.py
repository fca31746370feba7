"""Verifiers that misbehave on purpose, for runtime tests (imported by worker processes too)."""
import os

from verifiers.base import BaseVerifier, Verdict
from verifiers.registry import register


@register("test_echo")
class Echo(BaseVerifier):
    def verify(self, *, completion, reference, **fields):
        ok = completion == reference
        return Verdict(float(ok), "correct" if ok else "wrong_answer", {"pid": os.getpid(), **fields})


@register("test_hang")
class Hang(BaseVerifier):
    """Hangs (busy loop, not sleep: no signal or I/O will interrupt it) when asked to."""

    def verify(self, *, completion, reference, **fields):
        if completion == "hang":
            while True:
                pass
        return Verdict(1.0, "correct")


@register("test_raise")
class Raise(BaseVerifier):
    def verify(self, *, completion, reference, **fields):
        if completion == "raise":
            raise ValueError("boom")
        return Verdict(1.0, "correct")


@register("test_crash")
class Crash(BaseVerifier):
    def verify(self, *, completion, reference, **fields):
        if completion == "crash":
            os._exit(3)
        return Verdict(1.0, "correct")
