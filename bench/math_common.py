"""Shared pieces of the math benches: the own case file, our verifier, Math-Verify.

Every bench runs against whatever ``verifiers.math`` exists: when it cannot be built,
``load_ours`` returns the reason instead of raising, and the benches print it.
"""
from __future__ import annotations

import json
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CASE_FILE = BENCH / "cases" / "math_cases.jsonl"
REALISTIC_FILE = BENCH / "cases" / "realistic_completions.jsonl"
HELDOUT_FILE = BENCH / "cases" / "realistic_heldout.jsonl"
CACHE = BENCH / ".cache"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@dataclass(frozen=True)
class OwnCase:
    id: str
    category: str
    completion: str
    reference: str
    expected: int
    note: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def load_own_cases(path: Path = CASE_FILE) -> list[OwnCase]:
    cases = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                cases.append(OwnCase(row["id"], row["category"], row["completion"], row["reference"],
                                     int(row["expected"]), row.get("note", ""), dict(row.get("options") or {})))
    return cases


@dataclass(frozen=True)
class LabelledCompletion:
    id: str
    category: str
    completion: str
    reference: str
    label: int  # 1: a grader judges the completion's final answer correct


def load_realistic(path: Path = REALISTIC_FILE) -> list[LabelledCompletion]:
    """The realistic-completion set (written by bench/math_realistic_gen.py)."""
    with open(path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    return [LabelledCompletion(r["id"], r["category"], r["completion"], r["reference"], int(r["label"])) for r in rows]


def parse_opts(pairs: list[str]) -> dict[str, str]:
    """``["tolerance=1e-6", ...]`` -> options for ``get_verifier`` (strings are coerced there)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        out[key.strip()] = value.strip()
    return out


class Ours:
    """Our math verifier, one instance per distinct option set."""

    def __init__(self, base_options: dict[str, Any] | None = None) -> None:
        from verifiers import get_verifier

        self._get = get_verifier
        self._base = dict(base_options or {})
        self._cache: dict[str, Any] = {}
        self.default = self.with_options({})

    def with_options(self, options: dict[str, Any]) -> Any:
        merged = {**self._base, **options}
        key = json.dumps(merged, sort_keys=True, default=str)
        if key not in self._cache:
            self._cache[key] = self._get("math", **merged)
        return self._cache[key]


def load_ours(options: dict[str, Any] | None = None) -> tuple[Ours | None, str]:
    """(verifier wrapper, "") or (None, why it is unavailable)."""
    try:
        return Ours(options), ""
    except Exception as exc:  # the verifier may be mid-construction
        return None, f"{type(exc).__name__}: {exc}"


class BenchTimeout(Exception):
    pass


@contextmanager
def guard(seconds: float) -> Iterator[None]:
    """Abort a call that runs past ``seconds`` (main thread only; a no-op elsewhere).

    Keeps an unfinished verifier from hanging the bench; it is never used around
    Math-Verify calls, which install their own SIGALRM handlers.
    """
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise BenchTimeout(f"bench guard: call took more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def our_verdict(verifier: Any, completion: str, reference: str, guard_s: float = 30.0) -> tuple[int, str, Any]:
    """(1/0, reason, details) from our verifier; exceptions and hangs become 0 with a reason."""
    try:
        with guard(guard_s):
            verdict = verifier.verify(completion=completion, reference=reference)
        return int(verdict.reward > 0), verdict.reason, verdict.details
    except BenchTimeout as exc:
        return 0, "bench_timeout", str(exc)
    except Exception as exc:
        return 0, "raised", f"{type(exc).__name__}: {exc}"


def mv_default() -> Callable[[str, str], int]:
    """Math-Verify 0.9.0 with default settings: ``verify(parse(gold), parse(pred))``."""
    from math_verify import parse, verify

    def call(gold: str, pred: str) -> int:
        try:
            return int(bool(verify(parse(gold), parse(pred))))
        except Exception:
            return 0

    return call


def mv_on_reference(mv: Callable[[str, str], int]) -> Callable[[str, str], int]:
    """Math-Verify given a bare reference the way its documentation writes gold answers:
    in ``$...$`` (its parser reads LaTeX only inside delimiters; a bare ``\\frac{3}{4}``
    or ``(2, -1)`` would otherwise be read as its last number). References that already
    carry ``$`` or a box are passed as they are."""

    def call(reference: str, completion: str) -> int:
        wrapped = reference if "$" in reference or "\\boxed" in reference else f"${reference}$"
        return mv(wrapped, completion)

    return call


def short(text: Any, limit: int = 100) -> str:
    text = repr(text)
    return text if len(text) <= limit else text[: limit // 2 - 2] + " ... " + text[-(limit // 2 - 3):]
