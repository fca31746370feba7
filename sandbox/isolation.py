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
from sandbox import landlock, seccomp

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
    """One isolation layer. ``probe`` raises ``OSError`` (with the reason) when unusable."""

    name: str
    what: str
    probe: Callable[[], None]


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


@_layer("landlock", "filesystem access limited to the runtime's paths and the workdir; signals scoped")
def _probe_landlock() -> None:
    import tempfile
    landlock.restrict(read=["/usr"], write=[tempfile.gettempdir()], execute=[])


@_layer("seccomp", "seccomp-bpf: no non-unix sockets, ptrace, mounts, namespaces, io_uring, ...")
def _probe_seccomp() -> None:
    seccomp.install()


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


def mount_private_tmpfs(target: str, size: int, uid: int) -> None:
    """Make all mounts private to this namespace, then mount a tmpfs of ``size`` bytes on ``target``."""
    sc.mount("none", "/", None, sc.MS_REC | sc.MS_PRIVATE)
    sc.mount("tmpfs", target, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV,
             f"size={size},nr_inodes=4096,mode=0711,uid={uid},gid={uid}")


def resize_tmpfs(target: str, size: int) -> None:
    sc.mount("tmpfs", target, None, sc.MS_REMOUNT | sc.MS_NOSUID | sc.MS_NODEV, f"size={size}")


def enter_worker_namespaces(plan: frozenset[str], tmp_root: str, disk_bytes: int) -> None:
    """Worker-level layers, entered once when a worker starts.

    The network namespace and the tmpfs (in a private mount namespace) are shared by
    the worker's runs, which are strictly sequential: a run's processes are all dead
    and its files removed before the next run starts. PID and IPC namespaces are per run.
    In a user namespace the worker must own the PID namespace it re-arms for each run,
    so it forks once into a new one and serves from there (the parent only waits).
    """
    flags = (sc.CLONE_NEWNET if "netns" in plan else 0) | (sc.CLONE_NEWNS if "tmpfs" in plan else 0)
    if "userns" in plan:
        enter_user_namespace(flags | (sc.CLONE_NEWPID if "pidns" in plan else 0))
        if "pidns" in plan:
            _serve_from_child()
    elif flags:
        sc.unshare(flags)
    if "tmpfs" in plan:
        mount_private_tmpfs(tmp_root, disk_bytes, 0)


def _serve_from_child() -> None:
    """Fork; the child returns (and becomes the worker), the parent exits with its status."""
    pid = os.fork()
    if pid != 0:
        status = os.waitpid(pid, 0)[1]
        os._exit(max(0, os.waitstatus_to_exitcode(status)))
    sc.prctl(sc.PR_SET_PDEATHSIG, 9)


def _probe_in_child(layer: Layer) -> str | None:
    """Run ``layer.probe`` in a forked child; None if it worked, else the reason.

    A reason starting with ``n/a:`` means the layer does not apply on this host.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_fd)
        try:
            layer.probe()
            code = 0
        except BaseException as exc:  # noqa: BLE001 - report any failure as the reason
            text = f"n/a: {exc}" if isinstance(exc, NotApplicable) else f"{type(exc).__name__}: {exc}"
            os.write(write_fd, text.encode()[:500])
            code = 1
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        reason = fh.read().decode(errors="replace")
    status = os.waitpid(pid, 0)[1]
    if os.waitstatus_to_exitcode(status) == 0:
        return None
    return reason or f"probe exited with status {status}"


def probe_layers() -> dict[str, dict[str, object]]:
    """Try every layer in a throwaway child. Call only from a single-threaded process."""
    report: dict[str, dict[str, object]] = {}
    for layer in LAYERS.values():
        reason = _probe_in_child(layer)
        applicable = not (reason or "").startswith("n/a:")
        report[layer.name] = {"active": reason is None, "applicable": applicable, "what": layer.what,
                              "reason": reason or ""}
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
    PID namespace ``kill(-1)`` would reach every process of the calling user).
    """
    if os.geteuid() == 0 and "drop_uid" not in plan:
        return "refusing to run untrusted programs as root: the drop_uid layer is off or unavailable"
    if os.geteuid() != 0 and "pidns" not in plan:
        return ("refusing to run untrusted programs as the calling user without a PID namespace: "
                "kill(-1) would reach every process of this user")
    return None


def missing_layers(report: dict[str, dict[str, object]]) -> list[str]:
    """Applicable layers that are not active, with their reasons."""
    return [f"{name} ({info['reason']})" for name, info in report.items() if info["applicable"] and not info["active"]]


def _main() -> None:
    print(json.dumps(probe_layers()))


if __name__ == "__main__":
    _main()
