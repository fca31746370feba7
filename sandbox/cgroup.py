"""Per-run memory and process limits by cgroup v2, where a delegated cgroup is usable.

RLIMIT_AS caps each process's address space and RLIMIT_NPROC the number of processes,
so without cgroups a run's worst case is their product. A cgroup v2 leaf per worker,
whose ``memory.max`` and ``pids.max`` are set to the request's limits before each run,
caps the whole process tree instead (``memory.swap.max`` 0, so it cannot page out
around the limit), and its ``memory.events`` says whether the kernel's OOM killer
ended the run.

Usable when this process's own cgroup (``/proc/self/cgroup``, ``0::/path``) lies on a
mounted cgroup2 hierarchy, already enables ``memory`` and ``pids`` for its children
(``cgroup.subtree_control``) and lets us create sub-cgroups: what ``systemd-run
-p Delegate=yes`` or a container runtime's delegated cgroup gives. This module never
moves other processes or changes the controllers of a cgroup it did not create. On
hybrid cgroup v1/v2 hosts the memory and pids controllers are bound to v1, the v2
hierarchy has none, and ``probe`` says so; the rlimits remain the limits in force.
"""
from __future__ import annotations

import os

__all__ = ["probe", "delegated", "WorkerCgroup", "remove_worker_leaf"]

_NEEDED = ("memory", "pids")


def _cgroup2_mounts(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[str, str]]:
    """(mount point, root inside the hierarchy) of every cgroup2 mount."""
    found = []
    with open(mountinfo) as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            if right.split()[:1] == ["cgroup2"]:
                fields = left.split()
                found.append((fields[4], fields[3]))
    return found


def _own_path(cgroup_file: str = "/proc/self/cgroup") -> str | None:
    with open(cgroup_file) as fh:
        for line in fh:
            hid, _, rest = line.strip().partition(":")
            controllers, _, path = rest.partition(":")
            if hid == "0" and controllers == "":
                return path
    return None


def _read_words(path: str) -> set[str]:
    try:
        with open(path) as fh:
            return set(fh.read().split())
    except OSError:
        return set()


def delegated(mountinfo: str = "/proc/self/mountinfo", cgroup_file: str = "/proc/self/cgroup") -> str:
    """The directory of our delegated cgroup v2, or ``OSError`` saying why there is none."""
    own = _own_path(cgroup_file)
    if own is None:
        raise OSError(2, "no cgroup v2 membership in /proc/self/cgroup")
    mounts = _cgroup2_mounts(mountinfo)
    if not mounts:
        raise OSError(2, "no cgroup2 hierarchy is mounted")
    reasons = []
    for point, root in mounts:
        rel = os.path.relpath(own, root) if own.startswith(root) else None
        if rel is None or rel.startswith(".."):
            continue
        directory = os.path.normpath(os.path.join(point, rel))
        enabled = _read_words(os.path.join(directory, "cgroup.subtree_control"))
        available = _read_words(os.path.join(directory, "cgroup.controllers"))
        missing = [c for c in _NEEDED if c not in enabled]
        if missing:
            where = "enabled for its children" if set(missing) <= available else "available"
            reasons.append(f"{directory}: {', '.join(missing)} not {where} "
                           f"(controllers: {' '.join(sorted(available)) or 'none'})")
            continue
        if not (os.access(directory, os.W_OK | os.X_OK) and os.access(os.path.join(directory, "cgroup.procs"), os.W_OK)):
            reasons.append(f"{directory}: not writable by uid {os.geteuid()} (moving a process needs cgroup.procs)")
            continue
        return directory
    raise OSError(1, "no delegated cgroup v2 with memory and pids: " + ("; ".join(reasons) or "none of ours"))


def probe(directory: str | None = None) -> str:
    """Create and remove a leaf in the delegated cgroup; the detail names it."""
    directory = directory or delegated()
    leaf = os.path.join(directory, f"rlvr-sbx-probe-{os.getpid()}")
    os.mkdir(leaf)
    try:
        for name in ("memory.max", "pids.max"):
            if not os.path.exists(os.path.join(leaf, name)):
                raise OSError(2, f"{name} missing in a new leaf of {directory}")
    finally:
        os.rmdir(leaf)
    return f"cgroup v2 at {directory}"


class WorkerCgroup:
    """One worker's leaf; each run's program joins it and its limits are reset per run.

    Every file is reached through a descriptor of the leaf opened at creation, so it
    keeps working after the worker's private root hides ``/sys/fs/cgroup``.
    """

    def __init__(self, directory: str | None = None) -> None:
        self.path = os.path.join(directory or delegated(), f"rlvr-sbx-worker-{os.getpid()}")
        os.makedirs(self.path, exist_ok=True)
        self.dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.procs_fd = os.open("cgroup.procs", os.O_WRONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        self._oom_before = 0

    def _write(self, name: str, value: str) -> None:
        fd = os.open(name, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC, dir_fd=self.dir_fd)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def _read(self, name: str) -> str:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        with os.fdopen(fd) as fh:
            return fh.read()

    def arm(self, memory_bytes: int, processes: int) -> None:
        """Set the next run's limits (before the fork)."""
        self._write("memory.max", str(memory_bytes))
        self._write("pids.max", str(processes))
        try:
            self._write("memory.swap.max", "0")
        except FileNotFoundError:  # no swap accounting on this kernel
            pass
        self._oom_before = self.oom_kills()

    def join(self) -> None:
        """Called in the program process, before it drops privileges: move into the leaf."""
        os.write(self.procs_fd, b"0")

    def oom_kills(self) -> int:
        try:
            fields = dict(line.split() for line in self._read("memory.events").splitlines() if line.strip())
            return int(fields.get("oom_kill", 0))
        except (OSError, ValueError):
            return 0

    def ran_out_of_memory(self) -> bool:
        return self.oom_kills() > self._oom_before

    def kill_all(self) -> None:
        """Kill every process left in the leaf (``cgroup.kill``, Linux 5.14+)."""
        try:
            self._write("cgroup.kill", "1")
        except OSError:
            pass


def remove_worker_leaf(pid: int) -> None:
    """Remove a dead worker's leaf (best effort: it is empty once its processes are gone)."""
    try:
        leaf = os.path.join(delegated(), f"rlvr-sbx-worker-{pid}")
        cgroup_kill = os.path.join(leaf, "cgroup.kill")
        if os.path.exists(cgroup_kill):
            with open(cgroup_kill, "w") as fh:
                fh.write("1")
        os.rmdir(leaf)
    except OSError:
        pass
