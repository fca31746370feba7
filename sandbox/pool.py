"""A pool of warm sandbox workers: bounded concurrency, batch and asyncio APIs.

    >>> from sandbox import SandboxPool, ExecRequest, Program
    >>> with SandboxPool(workers=2) as pool:
    ...     result = pool.run(ExecRequest(Program("python", {"main.py": b"print(6 * 7)"})))
    >>> result.status, result.stdout
    ('ok', '42\\n')

Workers are started with ``subprocess`` (a clean interpreter, never a fork of the
calling process) and replaced if one dies. The first starts with the pool and runs a
program that imports standard modules the worker has not loaded itself, so a host
where the sandbox cannot work (a runtime directory the sandbox uid cannot read, a
layer that fails inside the worker) is refused at start, never program by program;
the others start on first use. ``run`` blocks the calling thread;
at most ``workers`` runs are in flight at once, whatever the number of callers.
"""
from __future__ import annotations

import asyncio
import json
import os
import pickle
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

from sandbox.isolation import IsolationError, capabilities, missing_layers, refusal
from sandbox.languages import get_language
from sandbox.limits import Limits
from sandbox.result import ExecRequest, ExecResult, Program
from sandbox.worker import read_frame, write_frame

__all__ = ["SandboxPool", "Prepared"]

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKER_SLACK_S = 15.0  # beyond the run's own wall limit, before a silent worker is presumed stuck
# Modules no warm worker preloads, from Python's own directories and /usr/lib (ctypes needs libffi).
_SMOKE = b"import socket, subprocess, json, collections, ctypes, hashlib, decimal\nprint('ok')"


class Prepared:
    """A program ready to run, or the compile run that failed to produce it."""

    def __init__(self, program: Program | None, compile_result: ExecResult | None) -> None:
        self.program = program
        self.compile_result = compile_result

    @property
    def ok(self) -> bool:
        return self.program is not None


class _Worker:
    def __init__(self, plan: frozenset[str], disk_bytes: int) -> None:
        self.plan = plan
        self.tmp_root = tempfile.mkdtemp(prefix="rlvr-sbx-worker-")
        config = json.dumps({"plan": sorted(plan), "tmp_root": self.tmp_root, "disk_bytes": disk_bytes})
        code = f"import sys; sys.path.insert(0, {_ROOT!r}); from sandbox.worker import main; main()"
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", code, config], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                                     start_new_session=True, close_fds=True)
        hello = self._read(30.0)
        info = json.loads(hello) if hello else {"ready": False, "error": "worker exited during start-up"}
        if not info.get("ready"):
            self.close()
            raise IsolationError(f"sandbox worker failed to start: {info.get('error')}")

    @property
    def pids(self) -> set[int]:
        """The worker's own processes: the one started, plus, in a user namespace with a
        PID namespace, the child it serves from (see ``isolation.enter_worker_namespaces``)."""
        pids = {self.proc.pid}
        if {"userns", "pidns"} <= self.plan:
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as fh:
                    pids.update(int(p) for p in fh.read().split())
            except OSError:
                pass
        return pids

    def _read(self, timeout: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], timeout)[0]:
            return None
        try:
            return read_frame(fd)
        except EOFError:
            return None

    def run(self, request: ExecRequest) -> ExecResult | None:
        """The result, or None if the worker died or went silent (the caller replaces it)."""
        try:
            write_frame(self.proc.stdin.fileno(), pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL))
        except OSError:
            return None
        frame = self._read(request.limits.wall_s + _WORKER_SLACK_S)
        return pickle.loads(frame) if frame else None

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            stream.close()
        shutil.rmtree(self.tmp_root, ignore_errors=True)
        if "cgroup" in self.plan:
            from sandbox.cgroup import remove_worker_leaf
            remove_worker_leaf(self.proc.pid)


class SandboxPool:
    """Warm workers that run ``ExecRequest``s under every available isolation layer.

    workers: maximum concurrent runs (one warm process each).
    strict:  raise ``IsolationError`` if an applicable layer is unavailable here,
             instead of warning and running without it. Whatever ``strict`` says, a
             pool whose programs could signal the host's processes is refused
             (``isolation.refusal``): as root without ``drop_uid``, or unprivileged
             without ``pidns``.
    disable: layer names to leave off deliberately (for measuring their cost).
    """

    def __init__(self, workers: int = 2, *, strict: bool = False, disable: Iterable[str] = (),
                 disk_bytes: int = Limits().disk_bytes) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        report = capabilities()
        missing = missing_layers(report)
        if missing and strict:
            raise IsolationError("isolation layers unavailable: " + "; ".join(missing))
        if missing:
            warnings.warn("sandbox running without: " + "; ".join(missing), RuntimeWarning, stacklevel=2)
        self.plan = frozenset(n for n, info in report.items() if info["active"]) - set(disable)
        refused = refusal(self.plan)
        if refused:  # not even strict=False runs a program that could signal the host's processes
            raise IsolationError(refused)
        self.size = workers
        self._disk_bytes = disk_bytes
        self._idle: queue.SimpleQueue[_Worker | None] = queue.SimpleQueue()
        for _ in range(workers):
            self._idle.put(None)  # a slot whose worker is started on first use
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox")
        self._closed = False
        self._smoke_check()

    def _smoke_check(self) -> None:
        """Start the first worker and run one import-only program in it; raise
        ``IsolationError`` (naming what failed) if that does not work."""
        slot = self._idle.get()
        try:
            worker = self._start()
        except IsolationError:
            self._idle.put(slot)
            self.close()
            raise
        self._idle.put(worker)
        result = self.run(ExecRequest(Program("python", {"main.py": _SMOKE}), limits=Limits(wall_s=10.0)))
        if result.status != "ok" or result.stdout != "ok\n":
            self.close()
            raise IsolationError(f"refusing to start: a program importing standard modules fails in the sandbox "
                                 f"with layers {', '.join(sorted(self.plan))} ({result.status}: "
                                 f"{(result.stderr or result.detail)[-600:]})")

    @property
    def layers(self) -> tuple[str, ...]:
        """The isolation layers every run gets."""
        return tuple(sorted(self.plan))

    def run(self, request: ExecRequest) -> ExecResult:
        """Run one request, waiting for a free worker; never raises for the program's misdeeds."""
        if self._closed:
            raise RuntimeError("SandboxPool is closed")
        worker = self._idle.get()
        try:
            if worker is None:
                worker = self._start()
            result = worker.run(request)
            if result is None:
                self._retire(worker)
                worker = None
                return ExecResult("sandbox_error", detail="sandbox worker died or stopped answering; replaced")
            return result
        except IsolationError as exc:
            return ExecResult("sandbox_error", detail=str(exc))
        finally:
            self._idle.put(worker)

    def run_batch(self, requests: Sequence[ExecRequest]) -> list[ExecResult]:
        """Run many requests concurrently (up to ``workers`` at once); results in input order."""
        return list(self._executor.map(self.run, requests))

    async def arun(self, request: ExecRequest) -> ExecResult:
        """``run`` for asyncio callers: awaits without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.run, request)

    async def arun_batch(self, requests: Sequence[ExecRequest]) -> list[ExecResult]:
        return list(await asyncio.gather(*(self.arun(r) for r in requests)))

    def prepare(self, language: str, source: str, limits: Limits | None = None) -> Prepared:
        """Stage (and for compiled languages, compile once) a program for any number of runs."""
        spec = get_language(language)
        files = {spec.source_name: source.encode("utf-8")}
        if not spec.compiled:
            return Prepared(Program(spec.name, files), None)
        compile_limits = limits or Limits(wall_s=30.0, memory_bytes=2 << 30, file_bytes=64 << 20)
        result = self.run(ExecRequest(Program(spec.name, files), limits=compile_limits, argv=spec.compile_argv,
                                      collect=(spec.artifact,)))
        artifact = result.files.get(spec.artifact)
        if result.status != "ok" or artifact is None:
            return Prepared(None, result)
        return Prepared(Program(spec.name, {spec.artifact: artifact}), result)

    def _start(self) -> _Worker:
        worker = _Worker(self.plan, self._disk_bytes)
        with self._lock:
            self._all.append(worker)
        return worker

    def _retire(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._all.remove(worker)
        worker.close()

    def close(self) -> None:
        """Stop every worker and remove their directories. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort at interpreter exit
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass
