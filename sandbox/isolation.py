"""Isolation layers: which exist, which work on this machine, and how each is entered.

Worker-level layers are entered once when a warm worker starts (its network
namespace, and a private mount namespace holding its size-capped tmpfs); run-level
layers are applied to each program process after the worker forks it (a fresh PID
and IPC namespace, session, rlimits, environment, credentials, then Landlock and
seccomp before any untrusted code runs; see ``sandbox._processes``). Each layer
registers a probe that tries it in a throwaway child; ``capabilities()`` reports the
outcome per layer.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from sandbox import _syscalls as sc
from sandbox import cgroup, fsroot, landlock, seccomp

__all__ = ["Layer", "LAYERS", "probe_layers", "capabilities", "missing_layers", "refusal", "IsolationError",
           "NotApplicable",
           "SANDBOX_UID_BASE"]

# Each worker slot runs its programs as its own unprivileged uid/gid (when started as root).
SANDBOX_UID_BASE = 1_700_000


class IsolationError(RuntimeError):
    """A required isolation layer is unavailable."""


class NotApplicable(OSError):
    """The layer does not apply on this host (another layer stands in for it)."""


@dataclass(frozen=True)
class Layer:
    """One isolation layer. ``probe`` raises ``OSError`` (with the reason) when unusable,
    and may return a detail string (which implementation is in force)."""

    name: str
    what: str
    probe: Callable[[], str | None]


LAYERS: dict[str, Layer] = {}


def _layer(name: str, what: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    def deco(probe: Callable[[], None]) -> Callable[[], None]:
        LAYERS[name] = Layer(name, what, probe)
        return probe
    return deco


@_layer("session", "own session and process group (setsid)")
def _probe_session() -> None:
    os.setsid()


@_layer("rlimits", "CPU, address space, processes, file size, open files (setrlimit)")
def _probe_rlimits() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@_layer("workdir", "private temporary working directory, removed afterwards")
def _probe_workdir() -> None:
    import tempfile
    os.rmdir(tempfile.mkdtemp(prefix="rlvr-sbx-probe-"))


@_layer("clean_env", "minimal explicit environment; nothing inherited from the host")
def _probe_clean_env() -> None:
    return None


@_layer("drop_uid", "runs as an unprivileged uid/gid private to the worker (needs root)")
def _probe_drop_uid() -> None:
    if os.geteuid() != 0:
        raise NotApplicable("not root; the userns layer stands in")
    os.setgroups([])
    os.setresgid(SANDBOX_UID_BASE, SANDBOX_UID_BASE, SANDBOX_UID_BASE)
    os.setresuid(SANDBOX_UID_BASE, SANDBOX_UID_BASE, SANDBOX_UID_BASE)


@_layer("userns", "own user namespace, root inside mapped to the caller outside (non-root hosts)")
def _probe_userns() -> None:
    if os.geteuid() == 0:
        raise NotApplicable("running as root; drop_uid stands in")
    enter_user_namespace(0)


@_layer("netns", "own network namespace: no interfaces but a down loopback")
def _probe_netns() -> None:
    enter_namespaces(sc.CLONE_NEWNET)


@_layer("pidns", "own PID namespace: every descendant dies with the program")
def _probe_pidns() -> None:
    enter_namespaces(sc.CLONE_NEWPID)
    pid = os.fork()
    if pid == 0:
        os._exit(0 if os.getpid() == 1 else 1)
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise OSError(1, "child is not PID 1")


@_layer("tmpfs", "working directory is a size-capped tmpfs in a private mount namespace")
def _probe_tmpfs() -> None:
    import tempfile
    target = tempfile.mkdtemp(prefix="rlvr-sbx-probe-")
    try:
        enter_namespaces(sc.CLONE_NEWNS)
        mount_private_tmpfs(target, 1 << 20, os.getuid())
        sc.umount(target)
    finally:
        os.rmdir(target)


@_layer("fsroot", "private root: runtime directories read-only, the workdir writable, nothing else (pivot_root)")
def _probe_fsroot() -> None:
    import tempfile
    enter_namespaces(sc.CLONE_NEWNS)
    sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
    # staged on the temporary directory itself, hidden in this namespace: nothing left on the host
    fsroot.enter_private_root(tempfile.gettempdir(), ["/usr"], ["/dev/null"], [])
    if os.path.exists("/proc/self") or not os.path.isdir("/usr/lib"):
        raise OSError(1, "the private root still shows the host's files")


@_layer("cgroup", "per-run memory and pids limits over the whole process tree (a delegated cgroup v2)")
def _probe_cgroup() -> str:
    try:
        directory = cgroup.delegated()
    except OSError as exc:  # the rlimits stand in: RLIMIT_AS per process, RLIMIT_NPROC processes
        raise NotApplicable(f"{exc.strerror}; rlimits stand in (address space per process x processes)") from exc
    return cgroup.probe(directory)


@_layer("landlock", "filesystem access limited to the runtime's paths and the workdir; signals scoped")
def _probe_landlock() -> str:
    import tempfile
    landlock.restrict(read=["/usr"], write=[tempfile.gettempdir()], execute=[])
    return f"ABI {landlock.abi_version()}"


@_layer("seccomp", "seccomp-bpf: no non-unix sockets, ptrace, mounts, namespaces, io_uring, ...")
def _probe_seccomp() -> str:
    seccomp.install()
    return seccomp.backend()


_USERNS_DONE: list[bool] = []


def enter_user_namespace(extra_flags: int) -> None:
    """Unshare a user namespace (plus ``extra_flags``) and map root inside to us outside."""
    uid, gid = os.getuid(), os.getgid()
    sc.unshare(sc.CLONE_NEWUSER | extra_flags)
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)


def enter_namespaces(flags: int) -> None:
    """Unshare ``flags``; on non-root hosts through a new user namespace."""
    if os.geteuid() == 0:
        sc.unshare(flags)
    else:
        enter_user_namespace(flags)


def mount_private_tmpfs(target: str, size: int, uid: int, make_private: bool = True) -> None:
    """Make all mounts private to this namespace, then mount a tmpfs of ``size`` bytes on ``target``."""
    if make_private:
        sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV,
             f"size={size},nr_inodes=4096,mode=0711,uid={uid},gid={uid}")


def resize_tmpfs(target: str, size: int) -> None:
    sc.mount("tmpfs", target, None, sc.MS_REMOUNT | sc.MS_NOSUID | sc.MS_NODEV, f"size={size}")


def enter_worker_namespaces(plan: frozenset[str], tmp_root: str, disk_bytes: int) -> None:
    """Worker-level layers, entered once when a worker starts.

    The network namespace, the private root and the tmpfs (in a private mount
    namespace) are shared by the worker's runs, which are strictly sequential: a run's
    processes are all dead and its files removed before the next run starts. PID and
    IPC namespaces are per run. In a user namespace the worker must own the PID
    namespace it re-arms for each run, so it forks once into a new one and serves from
    there (the parent only waits). What the worker needs of ``/proc`` is opened before
    the private root hides it.
    """
    mounts = bool({"tmpfs", "fsroot"} & plan)
    flags = (sc.CLONE_NEWNET if "netns" in plan else 0) | (sc.CLONE_NEWNS if mounts else 0)
    if "userns" in plan:
        enter_user_namespace(flags | (sc.CLONE_NEWPID if "pidns" in plan else 0))
        if "pidns" in plan:
            _serve_from_child()
    elif flags:
        sc.unshare(flags)
    from sandbox import reaper
    reaper.open_proc()
    if mounts:
        sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
    if "fsroot" in plan:
        from sandbox.languages import DEVICES, runtime_paths
        fsroot.enter_private_root(os.path.join(tmp_root, "newroot"), runtime_paths(), DEVICES, [tmp_root],
                                  mount_writable="tmpfs" not in plan)
    if "tmpfs" in plan:
        mount_private_tmpfs(tmp_root, disk_bytes, 0, make_private=False)


def _serve_from_child() -> None:
    """Fork; the child returns (and becomes the worker), the parent exits with its status."""
    pid = os.fork()
    if pid != 0:
        status = os.waitpid(pid, 0)[1]
        os._exit(max(0, os.waitstatus_to_exitcode(status)))
    sc.prctl(sc.PR_SET_PDEATHSIG, 9)


def _probe_in_child(layer: Layer) -> tuple[bool, str]:
    """Run ``layer.probe`` in a forked child: (worked, detail or the reason).

    A reason starting with ``n/a:`` means the layer does not apply on this host.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_fd)
        try:
            text, code = layer.probe() or "", 0
        except BaseException as exc:  # noqa: BLE001 - report any failure as the reason
            text = f"n/a: {exc}" if isinstance(exc, NotApplicable) else f"{type(exc).__name__}: {exc}"
            code = 1
        os.write(write_fd, text.encode()[:500])
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        text = fh.read().decode(errors="replace")
    status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) == 0:
        return True, text
    return False, text or f"probe exited with status {status}"


def probe_layers() -> dict[str, dict[str, object]]:
    """Try every layer in a throwaway child. Call only from a single-threaded process."""
    report: dict[str, dict[str, object]] = {}
    for layer in LAYERS.values():
        ok, text = _probe_in_child(layer)
        report[layer.name] = {"active": ok, "applicable": ok or not text.startswith("n/a:"), "what": layer.what,
                              "detail": text if ok else "", "reason": "" if ok else text}
    return report


@lru_cache(maxsize=1)
def _capabilities_json() -> str:
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"import sys; sys.path.insert(0, {root!r}); from sandbox.isolation import _main; _main()"
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, check=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin"}, start_new_session=True)
    return out.stdout.decode()


def capabilities() -> dict[str, dict[str, object]]:
    """Which isolation layers are active here: ``{name: {active, applicable, what, reason}}``.

    ``applicable`` is false for a layer another one stands in for on this host
    (``drop_uid`` when not root, ``userns`` when root).

    Probed once per process in a freshly started interpreter (safe to call from a
    threaded program) and cached.
    """
    return json.loads(_capabilities_json())


def refusal(plan: frozenset[str]) -> str | None:
    """Why running untrusted programs under ``plan`` must be refused, or None.

    Whatever else is missing, a program must not share a uid with anything it could
    harm: as root that needs ``drop_uid`` (else it *is* root), and otherwise
    ``pidns`` (inside a user namespace, root maps to the caller's uid, so without a
    PID namespace ``kill(-1)`` would reach every process of the calling user). It
    needs a filesystem boundary (Landlock or the private root: without either it could
    read and overwrite every world-writable file, ``/tmp`` included) and a network
    boundary (the network namespace or seccomp). And the sandbox uid must be able to
    import the interpreter's modules, or every program would fail.
    """
    if os.geteuid() == 0 and "drop_uid" not in plan:
        return "refusing to run untrusted programs as root: the drop_uid layer is off or unavailable"
    if os.geteuid() != 0 and "pidns" not in plan:
        return ("refusing to run untrusted programs as the calling user without a PID namespace: "
                "kill(-1) would reach every process of this user")
    if not {"landlock", "fsroot"} & plan:
        return ("refusing to run untrusted programs without a filesystem boundary: neither Landlock (Linux >= 5.13 "
                "with landlock in the lsm= list) nor the private root (a mount namespace: CAP_SYS_ADMIN, or "
                "unprivileged user namespaces) is in force, so a program could read and overwrite any "
                "world-writable file; fix: enable Landlock, or allow mount namespaces")
    if not {"netns", "seccomp"} & plan:
        return ("refusing to run untrusted programs without a network boundary: neither a network namespace nor "
                "seccomp is available; fix: allow network namespaces, or install libseccomp (x86_64 works without)")
    from sandbox.runtime_access import refusal_text, unreachable
    problems = unreachable(plan)
    return refusal_text(problems) if problems else None


def missing_layers(report: dict[str, dict[str, object]]) -> list[str]:
    """Applicable layers that are not active, with their reasons."""
    return [f"{name} ({info['reason']})" for name, info in report.items() if info["applicable"] and not info["active"]]


def _main() -> None:
    print(json.dumps(probe_layers()))


if __name__ == "__main__":
    _main()
