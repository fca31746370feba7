"""Batch verification in worker processes with a hard deadline per sample.

    with VerifierPool(workers=2, timeout=10.0) as pool:
        verdicts = pool.verify([VerifyTask("math", completion, reference), ...])

* Each worker is a plain subprocess (``python -m verifiers.worker``) in its own
  session, so the pool works from any thread, from daemon processes and from inside
  other workers; nothing relies on SIGALRM in the caller.
* A sample's deadline starts when its worker starts on it. A worker still busy at the
  deadline is killed (its whole process group) and replaced; that sample gets
  ``Verdict(0.0, "timeout")``; the samples queued behind it are re-sent elsewhere.
* A worker that dies mid-sample (segfault, out of memory) gives that sample
  ``Verdict(0.0, "crash")``; an exception inside a verifier is ``Verdict(0.0, "error")``.
* Results come back in input order, exactly one per task. ``imap`` streams: memory is
  bounded by ``max_ahead`` tasks whatever the input length.

`call_with_deadline` runs one function under the same guarantee, in a lazily started
helper process shared by the calling process; inside a worker it simply calls inline
(the worker itself is already under a deadline).
"""
from __future__ import annotations

import collections
import itertools
import os
import pickle
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Iterable, Iterator, Mapping

from verifiers.base import Verdict
from verifiers.procs import WorkerProcess, WorkerStartError
from verifiers.registry import get_factory
from verifiers.worker import in_worker

__all__ = ["VerifyTask", "Result", "VerifierPool", "call_with_deadline", "DeadlineExceeded", "WorkerStartError"]

# A message to a busy worker must fit in the pipe buffer (64 KiB on Linux) so that
# sending never blocks on a worker that is stuck on its current sample.
_PIPE_SAFE_BYTES = 60_000
_BUILTIN_PREFIX = "verifiers."


@dataclass(frozen=True)
class VerifyTask:
    """One completion to score with the verifier registered as ``verifier``."""

    verifier: str
    completion: Any
    reference: Any
    fields: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    verdict: Verdict
    seconds: float  # time the worker spent on this sample (the deadline for timeouts)


class _Slot:
    """One worker process plus the samples sent to it and not yet answered."""

    def __init__(self, proc: WorkerProcess) -> None:
        self.proc = proc
        self.inflight: collections.deque[tuple[int, tuple]] = collections.deque()
        self.head_start = 0.0
        self.acked = True  # the worker has begun on the last batch sent (so its pipe is empty)


class VerifierPool:
    """A fixed number of verifier worker processes with per-sample deadlines."""

    def __init__(
        self,
        workers: int = 2,
        timeout: float = 10.0,
        chunk_size: int = 32,
        max_ahead: int | None = None,
        memory_limit_mb: int | None = 4096,
        preload: Iterable[str] = ("verifiers.math.verifier",),
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.workers, self.timeout, self.chunk_size = workers, float(timeout), max(1, chunk_size)
        self.max_ahead = max_ahead or workers * self.chunk_size * 8
        self.memory_limit_mb = memory_limit_mb
        self.preload = tuple(preload)
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._option_keys: dict[tuple, tuple] = {}
        self._modules: set[str] = set()
        self.restarts = 0

    # -- lifecycle -----------------------------------------------------------------
    def _spawn(self) -> _Slot:
        return _Slot(WorkerProcess.start(self.preload, self.memory_limit_mb))

    def _ensure_started(self) -> None:
        if not self._slots:
            self._slots = [self._spawn() for _ in range(self.workers)]

    def _replace(self, index: int) -> None:
        self._slots[index].proc.kill()
        self._slots[index] = self._spawn()
        self.restarts += 1

    def close(self) -> None:
        for slot in self._slots:
            slot.proc.kill()
        self._slots = []

    def __enter__(self) -> "VerifierPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    # -- public API ------------------------------------------------------------------
    def verify(self, tasks: Iterable[VerifyTask]) -> list[Verdict]:
        """Score every task; one verdict per task, in input order."""
        return [result.verdict for result in self.imap(tasks)]

    def imap(self, tasks: Iterable[VerifyTask]) -> Iterator[Result]:
        """Stream results in input order; at most ``max_ahead`` tasks are held at once."""
        with self._lock:
            yield from _Scheduler(self, iter(tasks)).run()

    # -- helpers used by the scheduler ---------------------------------------------------
    def _encode(self, seq: int, task: VerifyTask) -> tuple:
        """Validate the verifier and its options once (in the caller) and build the wire item."""
        options = tuple(sorted(dict(task.options).items()))
        key = (task.verifier, options)
        if key not in self._option_keys:
            factory = get_factory(task.verifier)
            factory(**dict(options))  # raises OptionsError with the valid names
            module = getattr(factory, "__module__", "")
            if module and not module.startswith(_BUILTIN_PREFIX) and module != "__main__":
                self._modules.add(module)
            self._option_keys[key] = options
        return (seq, task.verifier, self._option_keys[key], task.completion, task.reference, dict(task.fields))


class _Scheduler:
    """One `imap` pass: feeds workers, enforces deadlines, reorders results."""

    def __init__(self, pool: VerifierPool, tasks: Iterator[VerifyTask]) -> None:
        self.pool, self.tasks = pool, tasks
        self.pending: collections.deque[tuple[int, tuple]] = collections.deque()
        self.done: dict[int, Result] = {}
        self.next_seq = 0  # next sequence number to hand out
        self.next_out = 0  # next sequence number to yield
        self.exhausted = False

    def run(self) -> Iterator[Result]:
        self.pool._ensure_started()
        while True:
            self._refill()
            if self.exhausted and self.next_out == self.next_seq:
                return
            self._dispatch()
            self._collect()
            self._expire()
            while self.next_out in self.done:
                yield self.done.pop(self.next_out)
                self.next_out += 1

    def _refill(self) -> None:
        while not self.exhausted and self.next_seq - self.next_out < self.pool.max_ahead:
            task = next(self.tasks, None)
            if task is None:
                self.exhausted = True
                return
            self.pending.append((self.next_seq, self.pool._encode(self.next_seq, task)))
            self.next_seq += 1

    def _dispatch(self) -> None:
        for slot in self.pool._slots:
            if not self.pending or not slot.proc.ready:
                continue
            room = self.pool.chunk_size - len(slot.inflight)
            if room <= 0 or (slot.inflight and (not slot.acked or len(slot.inflight) > room)):
                continue
            batch = [self.pending.popleft() for _ in range(min(room, len(self.pending)))]
            payload = pickle.dumps(("batch", sorted(self.pool._modules), [item for _, item in batch]))
            if slot.inflight and len(payload) > _PIPE_SAFE_BYTES:
                self.pending.extendleft(reversed(batch))
                continue
            if not slot.proc.send_bytes(payload):
                self.pending.extendleft(reversed(batch))
                continue
            if not slot.inflight:
                slot.head_start = time.monotonic()
            slot.inflight.extend(batch)
            slot.acked = False

    def _wait_budget(self) -> float:
        now = time.monotonic()
        budgets = [slot.head_start + self.pool.timeout - now for slot in self.pool._slots if slot.inflight]
        return max(0.0, min(budgets)) if budgets else 0.05

    def _collect(self) -> None:
        conns = {slot.proc.recv_conn: i for i, slot in enumerate(self.pool._slots)}
        for conn in wait(list(conns), timeout=self._wait_budget()):
            index = conns[conn]
            slot = self.pool._slots[index]
            try:
                while True:
                    self._handle(slot, conn.recv())
                    if not conn.poll():
                        break
            except (EOFError, OSError):
                self._worker_died(index)

    def _handle(self, slot: _Slot, message: tuple) -> None:
        if message[0] == "ready":
            slot.proc.ready = True
            slot.head_start = time.monotonic()
            return
        _, seq, reward, reason, details, seconds = message
        if not slot.inflight or slot.inflight[0][0] != seq:
            return  # a stale answer from before a requeue; cannot happen with one worker per item
        slot.inflight.popleft()
        slot.acked = True
        slot.head_start = time.monotonic()
        self.done[seq] = Result(Verdict(reward, reason, details), seconds)

    def _fail_head(self, index: int, reason: str, details: dict) -> None:
        slot = self.pool._slots[index]
        if slot.inflight:
            seq, _ = slot.inflight.popleft()
            seconds = time.monotonic() - slot.head_start
            self.done[seq] = Result(Verdict(0.0, reason, details), seconds)
        self.pending.extendleft(reversed(slot.inflight))
        slot.inflight.clear()
        self.pool._replace(index)

    def _worker_died(self, index: int) -> None:
        proc = self.pool._slots[index].proc
        if not proc.ready:
            proc.raise_start_failure()
        # the pipe closes a moment before the exit status exists: a loaded machine needs the short wait
        self._fail_head(index, "crash", {"error": f"verifier worker died ({proc.exit_description(wait=2.0)})"})

    def _expire(self) -> None:
        now = time.monotonic()
        for index, slot in enumerate(self.pool._slots):
            if slot.inflight and now - slot.head_start > self.pool.timeout:
                limit = f"{self.pool.timeout:g}"
                self._fail_head(index, "timeout", {"error": f"no verdict within {limit}s; worker killed"})
            elif not slot.proc.ready and slot.proc.startup_expired():
                slot.proc.raise_start_failure()


class DeadlineExceeded(TimeoutError):
    """`call_with_deadline` ran out of time; the helper process was killed."""


class _Sidecar:
    """One helper process per calling process for `call_with_deadline`."""

    _lock = threading.Lock()
    _proc: WorkerProcess | None = None
    _counter = itertools.count()
    _pid = 0

    @classmethod
    def call(cls, target: str, args: tuple, timeout: float) -> Any:
        with cls._lock:
            if cls._proc is None or cls._pid != os.getpid() or not cls._proc.alive():
                cls._proc = WorkerProcess.start((target.partition(":")[0],), None)
                cls._pid = os.getpid()
                cls._proc.wait_ready()
            seq = next(cls._counter)
            if not cls._proc.send_bytes(pickle.dumps(("call", seq, target, args))):
                cls._proc = None
                raise RuntimeError("verifier helper process died")
            conn = cls._proc.recv_conn
            if not conn.poll(timeout):
                cls._proc.kill()
                cls._proc = None
                raise DeadlineExceeded(f"{target} took longer than {timeout:g}s")
            try:
                _, _, ok, value = conn.recv()
            except (EOFError, OSError):
                cls._proc = None
                raise RuntimeError("verifier helper process died") from None
            if not ok:
                raise RuntimeError(value)
            return value


def call_with_deadline(target: str, args: tuple, timeout: float) -> Any:
    """Run ``module:function(*args)`` with a hard deadline, from any thread.

    Raises `DeadlineExceeded` after ``timeout`` seconds (the process running it is
    killed) and ``RuntimeError`` if the function raised. Inside a verifier worker the
    call runs inline, because the worker is already under the pool's deadline.
    """
    if in_worker():
        module, _, func = target.partition(":")
        import importlib

        return getattr(importlib.import_module(module), func)(*args)
    return _Sidecar.call(target, args, timeout)
