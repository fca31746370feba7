"""Making sure no process of a run outlives it.

With the PID-namespace layer, each run's program is PID 1 of a fresh namespace: when
it exits or is killed, the kernel kills every other process in the namespace,
daemons that double-forked and called ``setsid`` included. The worker re-arms a new
namespace before each fork (``setns`` back to its own, then ``unshare``).

Without it, the worker is a child subreaper: orphans of the run are reparented to it,
and ``sweep`` kills and reaps them until none is left; when the run had its own uid,
a helper running as that uid finally sends ``kill(-1, SIGKILL)``, which reaches every
process of that uid wherever it was reparented.
"""
from __future__ import annotations

import os
import signal

from sandbox import _syscalls as sc

__all__ = ["arm_pid_namespace", "become_subreaper", "sweep", "open_proc"]

_OWN_PID_NS: list[int] = []
_PROC: list[int] = []  # a descriptor of /proc, opened before a private root hides it


def open_proc() -> None:
    """Open what the worker needs of ``/proc`` while it is still visible (idempotent).
    Program processes close these descriptors before any untrusted code runs."""
    if not _PROC:
        _PROC.append(os.open("/proc", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
    if not _OWN_PID_NS:
        _OWN_PID_NS.append(os.open("self/ns/pid", os.O_RDONLY | os.O_CLOEXEC, dir_fd=_PROC[0]))


def arm_pid_namespace() -> None:
    """Make the next child PID 1 of a new PID namespace (with a new SysV IPC namespace)."""
    open_proc()
    sc.setns(_OWN_PID_NS[0], sc.CLONE_NEWPID)  # reset "namespace for children" to our own
    sc.unshare(sc.CLONE_NEWPID | sc.CLONE_NEWIPC)


def become_subreaper() -> None:
    sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)


def _children() -> list[int]:
    pid = os.getpid()
    open_proc()
    try:
        fd = os.open(f"{pid}/task/{pid}/children", os.O_RDONLY | os.O_CLOEXEC, dir_fd=_PROC[0])
        with os.fdopen(fd) as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _kill_uid(uid: int) -> None:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def sweep(uid: int | None) -> None:
    """Kill and reap every remaining child of this (subreaper) process."""
    for _ in range(1000):
        kids = _children()
        if not kids:
            break
        for kid in kids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(kid, signal.SIGKILL)
                except OSError:
                    pass
        for kid in kids:
            try:
                os.waitpid(kid, 0)
            except ChildProcessError:
                pass
    if uid is not None:
        _kill_uid(uid)
