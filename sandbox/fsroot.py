"""A private root filesystem for the worker's mount namespace (the fallback for Landlock).

The worker, already in a mount namespace of its own, builds a new root on a small
read-only tmpfs that holds nothing but mount points: each runtime directory (the
interpreter's prefix, stdlib and site-packages, ``/usr/lib``, the compiler, ...) is
bind-mounted read-only, nosuid and nodev at its own path; the few device nodes
(``/dev/null``, ``/dev/urandom``, ...) are bound as they are; the worker's run
directory is the only writable place. Then ``pivot_root`` swaps it in and the old
root is detached, as bubblewrap and nsjail do, so no path leads back to the host's
files: ``/tmp``, ``/home``, ``/proc``, ``/sys``, ``/etc`` (bar the named files) do not
exist in this view.

What it does not stop: reads of anything inside the bound runtime directories (they
are world-visible to the program, including files the host made world-readable
there), and writes through descriptors opened before the pivot (the program process
closes every descriptor but its own five before untrusted code runs). Directories
*above* a bound path are recreated with mode 0755, so a runtime under a private home
(``/root/.pyenv``, ``/home/u/venv``) is reachable without making the home readable;
the bound directories keep their own permissions (see ``sandbox.runtime_access``).
"""
from __future__ import annotations

import os
from typing import Iterable

from sandbox import _syscalls as sc

__all__ = ["enter_private_root", "plan_binds", "pivot_root"]

_ST_TO_MS = ((os.ST_NOSUID, sc.MS_NOSUID), (os.ST_NODEV, sc.MS_NODEV), (os.ST_NOEXEC, sc.MS_NOEXEC),
             (os.ST_NOATIME, sc.MS_NOATIME), (os.ST_NODIRATIME, sc.MS_NODIRATIME), (os.ST_RELATIME, sc.MS_RELATIME))


def _covered(path: str, bound: Iterable[str]) -> bool:
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound)


def plan_binds(read: Iterable[str], devices: Iterable[str]) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """(read-only binds, symlinks (path, target), device binds) for the given paths.

    Symlinks are recreated (``/lib -> usr/lib``) and their resolved target is bound
    too; a path inside an already bound directory needs no bind of its own.
    """
    wanted, links = set(), []
    for path in read:
        path = os.path.normpath(path)
        if os.path.realpath(path) == "/":
            raise OSError(22, "refusing to bind / into the private root (a runtime path resolves to /)")
        if os.path.islink(path):
            links.append((path, os.readlink(path)))
            path = os.path.realpath(path)
        if os.path.exists(path):
            wanted.add(path)
    binds: list[str] = []
    for path in sorted(wanted, key=lambda p: (p.count("/"), p)):
        if not _covered(path, binds):
            binds.append(path)
    links = [(p, t) for p, t in links if not _covered(p, binds)]
    return binds, sorted(set(links)), [d for d in devices if os.path.exists(d)]


def _locked_flags(path: str) -> int:
    """Mount flags of ``path``'s own mount that a bind remount must keep (in a user
    namespace the kernel refuses to clear them)."""
    flags, st = 0, os.statvfs(path).f_flag
    for st_bit, ms_bit in _ST_TO_MS:
        if st & st_bit:
            flags |= ms_bit
    return flags


def _mountpoint(target: str, is_dir: bool) -> None:
    os.makedirs(target if is_dir else os.path.dirname(target), mode=0o755, exist_ok=True)
    if not is_dir and not os.path.exists(target):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))


def _bind(source: str, target: str, extra: int) -> None:
    _mountpoint(target, os.path.isdir(source))
    sc.mount(source, target, None, sc.MS_BIND)
    sc.mount("none", target, None, sc.MS_BIND | sc.MS_REMOUNT | extra | _locked_flags(source))


def pivot_root(new_root: str) -> None:
    """Make ``new_root`` (a mount point) the root and detach the old one entirely."""
    os.chdir(new_root)
    sc.syscall(sc.syscall_number("pivot_root"), b".", b".")  # the old root now sits on top of "."
    sc.umount(".")  # MNT_DETACH: lazily unmount it; nothing of the host stays reachable
    os.chdir("/")


def enter_private_root(staging: str, read: Iterable[str], devices: Iterable[str], writable: Iterable[str],
                       mount_writable: bool = True) -> None:
    """Build the private root on a tmpfs mounted at ``staging`` and pivot into it.

    Call in a fresh mount namespace whose mounts are already private. ``writable``
    directories are bound read-write (or only created as mount points, for a tmpfs
    the caller mounts afterwards, when ``mount_writable`` is false).
    """
    binds, links, devs = plan_binds(read, devices)
    os.makedirs(staging, mode=0o700, exist_ok=True)
    sc.mount("tmpfs", staging, "tmpfs", sc.MS_NOSUID | sc.MS_NODEV, "size=1m,nr_inodes=4096,mode=0755")
    for path in binds:
        _bind(path, staging + path, sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV)
    for dev in devs:
        _mountpoint(staging + dev, False)
        sc.mount(dev, staging + dev, None, sc.MS_BIND)
    for path in writable:
        if mount_writable:
            _bind(path, staging + path, sc.MS_NOSUID | sc.MS_NODEV)
        else:
            _mountpoint(staging + path, True)
    for path, target in links:
        os.makedirs(os.path.dirname(staging + path), mode=0o755, exist_ok=True)
        os.symlink(target, staging + path)
    sc.mount("none", staging, None, sc.MS_REMOUNT | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV,
             "size=1m,nr_inodes=4096,mode=0755")
    pivot_root(staging)
