"""seccomp-bpf: a small deny-list filter for the sandboxed process.

Denied with ``EPERM``: creating sockets of any family except ``AF_UNIX`` (so no
network even where the network-namespace layer is missing), ``ptrace`` and cross-process
memory access, mounting and namespace changes, loading kernel code (modules, kexec,
bpf), ``io_uring`` (which can perform I/O without passing through this filter),
``perf_event_open``, ``userfaultfd``, keyrings, ``open_by_handle_at``, clock/time
changes, reboot and swap. System calls from another ABI (x32, or 32-bit ``int 0x80``)
kill the process. Only x86_64 has a syscall table here; elsewhere the layer reports
itself unavailable rather than guessing numbers.
"""
from __future__ import annotations

import ctypes

from sandbox._syscalls import MACHINE, PR_SET_SECCOMP, prctl, set_no_new_privs

__all__ = ["available", "install"]

_AUDIT_ARCH = {"x86_64": 0xC000003E}
_SOCKET = {"x86_64": 41}
_DENIED = {
    "x86_64": (
        101, 310, 311,  # ptrace, process_vm_readv/writev
        165, 166, 155, 161, 272, 308,  # mount, umount2, pivot_root, chroot, unshare, setns
        428, 429, 430, 431, 432, 433, 442,  # open_tree, move_mount, fsopen, fsconfig, fsmount, fspick, mount_setattr
        321, 175, 313, 176, 246, 320,  # bpf, init/finit/delete_module, kexec_load, kexec_file_load
        425, 426, 427, 298, 323,  # io_uring_setup/enter/register, perf_event_open, userfaultfd
        248, 249, 250, 303, 304,  # add_key, request_key, keyctl, name_to_handle_at, open_by_handle_at
        164, 227, 159, 169, 167, 168,  # settimeofday, clock_settime, adjtimex, reboot, swapon, swapoff
        163, 103, 179, 172, 173, 153, 135,  # acct, syslog, quotactl, iopl, ioperm, vhangup, personality
    )
}
_AF_UNIX = 1
_EPERM = 1

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_X32_BIT = 0x40000000


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Filter))]


def available() -> bool:
    """Whether this module knows the syscall table of this machine."""
    return MACHINE in _AUDIT_ARCH


def _program() -> list[tuple[int, int, int, int]]:
    denied = _DENIED[MACHINE]
    deny = (_RET_K, 0, 0, _RET_ERRNO | _EPERM)
    allow = (_RET_K, 0, 0, _RET_ALLOW)
    kill = (_RET_K, 0, 0, _RET_KILL_PROCESS)
    prog = [(_LD_W_ABS, 0, 0, 4), (_JEQ_K, 1, 0, _AUDIT_ARCH[MACHINE]), kill, (_LD_W_ABS, 0, 0, 0),
            (_JGE_K, 0, 1, _X32_BIT), kill]
    for nr in denied:
        prog += [(_JEQ_K, 0, 1, nr), deny]
    # socket(family, ...): allow AF_UNIX only; everything else is EPERM.
    prog += [(_JEQ_K, 0, 4, _SOCKET[MACHINE]), (_LD_W_ABS, 0, 0, 16), (_JEQ_K, 1, 0, _AF_UNIX), deny, allow, allow]
    return prog


_PREBUILT: list[tuple[object, _Prog]] = []


def install() -> None:
    """Install the filter on the calling process (irreversible); raises ``OSError``.

    The BPF program is built once per process and reused by every child forked after.
    """
    if not available():
        raise OSError(38, f"no seccomp syscall table for {MACHINE}")
    if not _PREBUILT:
        rows = _program()
        filters = (_Filter * len(rows))(*(_Filter(*row) for row in rows))
        _PREBUILT.append((filters, _Prog(len(rows), filters)))
    set_no_new_privs()
    prctl(PR_SET_SECCOMP, 2, ctypes.addressof(_PREBUILT[0][1]))  # SECCOMP_MODE_FILTER
