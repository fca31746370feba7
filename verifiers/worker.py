"""The verifier worker process: reads tasks from a pipe, writes verdicts back.

Started by `verifiers.runtime` as ``python -m verifiers.worker READ_FD WRITE_FD`` (a
plain subprocess, not multiprocessing, so it can be started from daemon processes,
threads and other workers alike). It sets ``RLVR_VERIFIER_WORKER=1`` so verifiers
know they already run under a hard deadline and need no guard of their own.

Messages are pickled tuples over `multiprocessing.connection.Connection`:

    parent -> worker  ("batch", modules, [(seq, verifier, options, completion, reference, fields), ...])
                      ("call", seq, "module:function", args)
    worker -> parent  ("ready", pid) once imports are done
                      ("verdict", seq, reward, reason, details, seconds) per batch item
                      ("return", seq, ok, value_or_error) per call

The worker exits when its input pipe closes or its parent process disappears.
"""
from __future__ import annotations

import importlib
import itertools
import os
import pickle
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any, Iterator

WORKER_ENV = "RLVR_VERIFIER_WORKER"
_MAX_DETAIL_CHARS = 2000


def in_worker() -> bool:
    """True inside a verifier worker, where the parent enforces the deadline."""
    return os.environ.get(WORKER_ENV) == "1"


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def _small(details: Any) -> dict:
    """Keep details JSON-able and short: they cross a pipe and land in output files."""
    if not isinstance(details, dict):
        return {"value": repr(details)[:_MAX_DETAIL_CHARS]}
    out = {}
    for key, value in details.items():
        if isinstance(value, (bool, int, float)) or value is None:
            out[str(key)] = value
        else:
            text = value if isinstance(value, str) else repr(value)
            out[str(key)] = text[:_MAX_DETAIL_CHARS]
    return out


class _Verifiers:
    """Verifier instances cached by (name, options)."""

    def __init__(self) -> None:
        self._cache: dict[tuple, Any] = {}

    def get(self, name: str, options: tuple) -> Any:
        key = (name, options)
        if key not in self._cache:
            from verifiers.registry import get_verifier

            self._cache[key] = get_verifier(name, **dict(options))
        return self._cache[key]


def run_one(verifiers: _Verifiers, item: tuple) -> tuple:
    seq, name, options, completion, reference, fields = item
    start = time.perf_counter()
    try:
        verdict = verifiers.get(name, options).verify(completion=completion, reference=reference, **dict(fields))
        reward, reason, details = float(verdict.reward), str(verdict.reason), _small(verdict.details)
    except Exception as exc:  # untrusted input must never take the worker down
        reward, reason = 0.0, "error"
        details = {"error": f"{type(exc).__name__}: {exc}"[:_MAX_DETAIL_CHARS]}
    return ("verdict", seq, reward, reason, details, time.perf_counter() - start)


def run_call(seq: int, target: str, args: tuple) -> tuple:
    try:
        module, _, func = target.partition(":")
        value = getattr(importlib.import_module(module), func)(*args)
        pickle.dumps(value)
        return ("return", seq, True, value)
    except Exception as exc:
        return ("return", seq, False, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}")


def _warm_up_steps(preload: list[str]) -> Iterator[Any]:
    """Import the preload modules; chain their ``warm_up_steps()`` for idle time."""
    steps = []
    for name in preload:
        module = importlib.import_module(name)
        if callable(getattr(module, "warm_up_steps", None)):
            steps.append(module.warm_up_steps())
    return itertools.chain.from_iterable(steps)


def serve(conn_in: Connection, conn_out: Connection, preload: list[str]) -> None:
    idle_work: Iterator[Any] | None = _warm_up_steps(preload)
    verifiers = _Verifiers()
    conn_out.send(("ready", os.getpid()))
    while True:
        # warm caches one small step at a time while no request is waiting, so a
        # request is never delayed by more than one step
        while idle_work is not None and not conn_in.poll(0):
            try:
                next(idle_work)
            except StopIteration:
                idle_work = None
            except Exception:
                idle_work = None
        try:
            message = conn_in.recv()
        except (EOFError, OSError):
            return
        if message[0] == "batch":
            for module in message[1]:
                try:
                    importlib.import_module(module)  # registers third-party verifiers defined there
                except Exception:
                    pass  # get_verifier below then reports the verifier as unknown, per sample
            for item in message[2]:
                conn_out.send(run_one(verifiers, item))
        elif message[0] == "call":
            conn_out.send(run_call(*message[1:]))


def main() -> None:
    read_fd, write_fd, parent_pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    os.environ[WORKER_ENV] = "1"
    preload = [m for m in sys.argv[4].split(",") if m] if len(sys.argv) > 4 else []
    memory_mb = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    if memory_mb > 0:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    serve(Connection(read_fd, writable=False), Connection(write_fd, readable=False), preload)


if __name__ == "__main__":
    main()
