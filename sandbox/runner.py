"""One execution, supervised from the warm worker: fork, feed, drain, time, kill, classify.

All pipes (stdin, stdout, stderr, the harness report and the program's setup channel)
and a pidfd for the program are served from one ``selectors`` loop, so a program that
floods its output while the worker is still writing its input can neither deadlock
the worker nor be mistaken for a timeout: once it writes more than
``Limits.output_bytes`` on either stream it is killed with status ``output_limit``.
Without the tmpfs layer, the same status ends a program whose working directory grows
past ``Limits.disk_bytes`` (measured every 0.1 s, so it may overshoot by what it can
write in that time, each file capped by ``Limits.file_bytes``).
"""
from __future__ import annotations

import os
import selectors
import shutil
import signal
import time
from dataclasses import dataclass, field

from sandbox import landlock, reaper
from sandbox._processes import RunSetup, program_main, stage_files
from sandbox.classify import classify
from sandbox.languages import LanguageSpec, get_language
from sandbox.result import ExecRequest, ExecResult

__all__ = ["execute", "run_directory", "set_cgroup"]

_CHUNK = 1 << 16
_GRACE_S = 1.0  # after the program is gone, how long leftover pipe holders may linger
_DISK_CHECK_S = 0.1  # without the tmpfs layer, how often the working directory's size is measured
_MAX_ENTRIES = 100_000
_STREAMS = ("stdout", "stderr", "report", "setup")
_RULESETS: dict[tuple[str, str], int] = {}  # (language, tmp_root) -> Landlock ruleset fd, built once per worker
_CGROUP: list = []  # the worker's sandbox.cgroup.WorkerCgroup, set by set_cgroup when that layer is on


def set_cgroup(leaf: object) -> None:
    _CGROUP[:] = [leaf]


def _ruleset(spec: LanguageSpec, plan: frozenset[str], tmp_root: str | None) -> int | None:
    """The worker's prebuilt ruleset: writes allowed under ``tmp_root``, which holds only
    the current run's directory (runs in a worker are sequential)."""
    if "landlock" not in plan or tmp_root is None:
        return None
    key = (spec.name, tmp_root)
    if key not in _RULESETS:
        _RULESETS[key] = landlock.build_ruleset(spec.read_paths, (tmp_root, "/dev/null"), spec.exec_paths)
    return _RULESETS[key]


@dataclass
class _Run:
    """Mutable state of one supervised run."""

    pid: int
    limit: int
    pidns: bool
    start: float = field(default_factory=time.monotonic)
    out: dict[str, bytearray] = field(default_factory=lambda: {n: bytearray() for n in _STREAMS})
    truncated: dict[str, bool] = field(default_factory=lambda: {"stdout": False, "stderr": False})
    killed_for: str | None = None
    disk_quota: tuple[str, int] | None = None  # (workdir, bytes) when no tmpfs caps it
    wstatus: int | None = None
    wall: float = 0.0
    cpu: float = 0.0
    rss: int = 0

    def kill(self, reason: str) -> None:
        if self.killed_for is None:
            self.killed_for = reason
        if self.wstatus is None:  # PID 1 of its namespace: the kernel kills the rest
            try:
                (os.kill if self.pidns else os.killpg)(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def reap(self) -> None:
        _, self.wstatus, usage = os.wait4(self.pid, 0)
        self.wall = time.monotonic() - self.start
        self.cpu = usage.ru_utime + usage.ru_stime
        self.rss = usage.ru_maxrss * 1024


def _on_data(run: _Run, name: str, data: bytes) -> None:
    buf = run.out[name]
    cap = run.limit if name in run.truncated else 4 * run.limit + 65536
    room = cap - len(buf)
    buf += data[:max(room, 0)]
    if len(data) > room:
        if name in run.truncated:
            run.truncated[name] = True
        run.kill("output_limit")


def _over_quota(path: str, limit: int) -> bool:
    """Whether the files under ``path`` use more than ``limit`` bytes (or absurdly many entries)."""
    used, entries, stack = 0, 0, [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    st = entry.stat(follow_symlinks=False)
                    used += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
        if used > limit or entries > _MAX_ENTRIES:
            return True
    return False


def _feed(sel: selectors.BaseSelector, fd: int, pending: memoryview) -> memoryview:
    try:
        pending = pending[os.write(fd, pending[:_CHUNK]):]
    except BlockingIOError:
        return pending
    except BrokenPipeError:
        pending = pending[:0]
    if not pending:
        sel.unregister(fd)
        os.close(fd)
    return pending


def _supervise(run: _Run, fds: dict[str, int], pidfd: int, stdin_w: int, stdin: bytes, wall_s: float,
               uid: int | None) -> None:
    sel = selectors.DefaultSelector()
    for name, fd in fds.items():
        sel.register(fd, selectors.EVENT_READ, name)
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    pending = memoryview(stdin)
    if pending:
        os.set_blocking(stdin_w, False)
        sel.register(stdin_w, selectors.EVENT_WRITE, "stdin")
    else:
        os.close(stdin_w)
    deadline, exited_at = run.start + wall_s, None
    while sel.get_map():
        now = time.monotonic()
        if exited_at is not None and now - exited_at > _GRACE_S:
            break
        if run.wstatus is None and now >= deadline:
            run.kill("timeout")
        wait = _GRACE_S if run.killed_for or exited_at else max(0.0, deadline - now)
        if run.disk_quota and run.wstatus is None:
            if _over_quota(*run.disk_quota):
                run.kill("output_limit")
            wait = min(wait, _DISK_CHECK_S)
        for key, _ in sel.select(min(wait, _GRACE_S)):
            if key.data == "stdin":
                pending = _feed(sel, stdin_w, pending)
            elif key.data == "exit":
                sel.unregister(pidfd)
                run.reap()
                if not run.pidns:
                    reaper.sweep(uid)
                exited_at = time.monotonic()
            elif data := os.read(key.fd, _CHUNK):
                _on_data(run, key.data, data)
            else:
                sel.unregister(key.fd)
    for key in list(sel.get_map().values()):
        sel.unregister(key.fd)
        if key.data == "stdin":
            os.close(key.fd)
    sel.close()


def execute(request: ExecRequest, plan: frozenset[str], uid: int, tmp_root: str | None = None) -> ExecResult:
    """Run ``request`` under every layer in ``plan``. Call only from a single-threaded process."""
    spec = get_language(request.program.language)
    workdir = _make_workdir(tmp_root)
    pairs = {name: os.pipe() for name in _STREAMS}
    stdin_r, stdin_w = os.pipe()
    try:
        if "drop_uid" in plan:
            os.chown(workdir, uid, uid)
        leaf = _CGROUP[0] if "cgroup" in plan and _CGROUP else None
        if leaf is not None:
            leaf.arm(request.limits.memory_bytes, request.limits.processes)
        setup = RunSetup(request, spec, plan, uid, workdir, stdin_r, pairs["stdout"][1], pairs["stderr"][1],
                         pairs["report"][1], pairs["setup"][1], _ruleset(spec, plan, tmp_root), leaf)
        stage_files(setup)
        if "pidns" in plan:
            reaper.arm_pid_namespace()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            os.close(stdin_w)
            program_main(setup)
        run = _Run(pid, request.limits.output_bytes, "pidns" in plan)
        if "tmpfs" not in plan:
            run.disk_quota = (workdir, request.limits.disk_bytes)
        pidfd = os.pidfd_open(pid)
    finally:
        for fd in [stdin_r] + [w for _, w in pairs.values()]:
            os.close(fd)
    try:
        _supervise(run, {n: r for n, (r, _) in pairs.items()}, pidfd, stdin_w, request.stdin,
                   request.limits.wall_s, uid if "drop_uid" in plan else None)
    finally:
        if run.wstatus is None:
            run.kill("killed")
            run.reap()
        if leaf is not None:
            leaf.kill_all()
            if leaf.ran_out_of_memory() and run.killed_for is None:
                run.killed_for = "memory_limit"
        os.close(pidfd)
        for read_fd, _ in pairs.values():
            os.close(read_fd)
        files = _collect(workdir, request.collect)
        shutil.rmtree(workdir, ignore_errors=True)
    return classify(run, request, plan, files)


def run_directory(tmp_root: str) -> str:
    """The fixed working directory of a worker's runs (they are sequential)."""
    return os.path.join(tmp_root, "run")


def _make_workdir(tmp_root: str | None) -> str:
    if tmp_root is None:
        import tempfile
        return tempfile.mkdtemp(prefix="rlvr-sbx-run-")
    workdir = run_directory(tmp_root)
    shutil.rmtree(workdir, ignore_errors=True)  # nothing should be there; never trust it
    os.mkdir(workdir, 0o700)
    return workdir


def _collect(workdir: str, names: tuple[str, ...]) -> dict[str, bytes]:
    files = {}
    for name in names:
        path = os.path.join(workdir, os.path.basename(name))
        if os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as fh:
                files[name] = fh.read()
    return files
