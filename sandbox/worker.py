"""The warm worker: a clean, single-threaded process that forks one run at a time.

The pool starts each worker with ``subprocess`` (never ``fork`` from the caller, whose
threads could hold locks), with a minimal environment. The worker enters its
worker-level namespaces, says ``ready`` and then serves length-prefixed pickled
``ExecRequest`` objects on stdin, answering each with a pickled ``ExecResult`` on
stdout. Only trusted code runs here; untrusted code only ever runs in a grandchild.
"""
from __future__ import annotations

import gc
import json
import os
import pickle
import struct
import sys
import traceback
from typing import Any

from sandbox import isolation, reaper
from sandbox.result import ExecRequest, ExecResult
from sandbox import _processes
from sandbox.runner import execute, run_directory

__all__ = ["main", "read_frame", "write_frame"]

_HEADER = struct.Struct("!Q")


def read_frame(fd: int) -> bytes | None:
    """One length-prefixed frame, or None at end of file."""
    header = _read_exact(fd, _HEADER.size)
    if header is None:
        return None
    body = _read_exact(fd, _HEADER.unpack(header)[0])
    if body is None:
        raise EOFError("truncated frame")
    return body


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks, remaining = [], size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def write_frame(fd: int, payload: bytes) -> None:
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


class _Worker:
    """Serves requests; keeps the tmpfs sized for the current request."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.plan = frozenset(config["plan"])
        # Each worker runs its programs as its own uid: no two live workers share one.
        self.uid = isolation.SANDBOX_UID_BASE + os.getpid() if "drop_uid" in self.plan else (
            0 if "userns" in self.plan else os.getuid())
        self.tmp_root = config["tmp_root"]
        self.disk_bytes = int(config["disk_bytes"])

    def serve(self, fd_in: int, fd_out: int) -> None:
        while True:
            frame = read_frame(fd_in)
            if frame is None:
                return
            request: ExecRequest = pickle.loads(frame)
            try:
                if "tmpfs" in self.plan and request.limits.disk_bytes != self.disk_bytes:
                    isolation.resize_tmpfs(self.tmp_root, request.limits.disk_bytes)
                    self.disk_bytes = request.limits.disk_bytes
                result = execute(request, self.plan, self.uid, self.tmp_root)
            except Exception as exc:  # noqa: BLE001 - one bad request must not end the worker
                result = ExecResult("sandbox_error", detail=f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")
            write_frame(fd_out, pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))


def main() -> None:
    """Entry point: ``config`` JSON in ``argv[1]``; protocol on fds 0 and 1."""
    config = json.loads(sys.argv[1])
    fd_in, fd_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    worker = _Worker(config)
    refused = isolation.refusal(worker.plan)
    if refused:  # the pool checks too; never trust one check for this
        write_frame(fd_out, json.dumps({"ready": False, "error": refused}).encode())
        return
    try:
        if "cgroup" in worker.plan:  # before the private root hides /sys/fs/cgroup
            from sandbox import cgroup, runner
            runner.set_cgroup(cgroup.WorkerCgroup())
        isolation.enter_worker_namespaces(worker.plan, worker.tmp_root, worker.disk_bytes)
        os.chmod(worker.tmp_root, 0o711)  # the sandbox uid may enter its run directory, not list others
        if "pidns" not in worker.plan:
            reaper.become_subreaper()
    except OSError as exc:
        write_frame(fd_out, json.dumps({"ready": False, "error": str(exc)}).encode())
        return
    _processes.prepare_worker(run_directory(worker.tmp_root))
    gc.freeze()  # children then leave the worker's objects alone: fewer copy-on-write faults per run
    write_frame(fd_out, json.dumps({"ready": True, "pid": os.getpid()}).encode())
    worker.serve(fd_in, fd_out)


if __name__ == "__main__":
    main()
