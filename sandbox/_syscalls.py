"""Thin ctypes wrappers over the Linux calls the isolation layers need.

Everything here is a direct system call; failures raise ``OSError`` with the
kernel's errno so a layer's probe can report *why* it is unavailable.
"""
from __future__ import annotations

import ctypes
import os
import platform

__all__ = [
    "CLONE_NEWNS", "CLONE_NEWPID", "CLONE_NEWNET", "CLONE_NEWUSER", "CLONE_NEWIPC", "CLONE_NEWUTS",
    "unshare", "prctl", "mount", "syscall", "syscall_number", "capset", "set_no_new_privs", "MACHINE",
]

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_SET_SECCOMP = 22
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21

MACHINE = platform.machine()
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def syscall(number: int, *args: object) -> int:
    """Raw ``syscall(2)``; raises ``OSError`` on a negative return."""
    return _check(_libc.syscall(ctypes.c_long(number), *args), f"syscall {number}")


# System calls without a libc wrapper, for machines where libseccomp cannot name them.
_NUMBERS = {"pivot_root": {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}}


def syscall_number(name: str) -> int:
    """This machine's number for system call ``name`` (libseccomp's table, else ours)."""
    from sandbox import _libseccomp
    number = _libseccomp.resolve(name)
    if number is None:
        number = _NUMBERS.get(name, {}).get(MACHINE)
    if number is None:
        raise OSError(38, f"no system call number for {name} on {MACHINE}")
    return number


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """``prctl(2)`` with integer arguments (pass pointers as ``ctypes.addressof``)."""
    args = (ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5))
    return _check(_libc.prctl(ctypes.c_int(option), *args), f"prctl {option}")


def set_no_new_privs() -> None:
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None,
                       ctypes.c_ulong(flags), data.encode() if data else None), f"mount {target}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capset(keep: int = 0) -> None:
    """Set effective and permitted capabilities to exactly the bit mask ``keep`` (caps 0-31)."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)(_CapData(keep, keep, 0), _CapData(0, 0, 0))
    _check(_libc.capset(ctypes.byref(header), data), "capset")


def umount(target: str) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(2)), f"umount {target}")  # MNT_DETACH


def setns(fd: int, nstype: int) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")
