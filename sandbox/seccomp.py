"""seccomp-bpf: a small deny-list filter for the sandboxed process, on every architecture.

Denied with ``EPERM``: creating sockets of any family except ``AF_UNIX`` (so no
network even where the network-namespace layer is missing), ``ptrace`` and
cross-process memory access, mounting, ``pivot_root``/``chroot``, namespace changes
(``unshare``, ``setns``, and ``clone`` with any ``CLONE_NEW*`` flag), loading kernel
code (modules, kexec, bpf), ``io_uring`` (which can perform I/O without passing through
this filter), ``perf_event_open``, ``userfaultfd``, keyrings, ``open_by_handle_at``,
clock/time changes, reboot, swap and ``personality``. ``clone3`` answers ``ENOSYS``: its
flags sit in memory a filter cannot read, so libc falls back to ``clone``, whose flags
it can (what container runtimes do). System calls from another ABI (x32, 32-bit
``int 0x80``) kill the process.

The filter is written by syscall name and compiled by libseccomp for the machine it
runs on (``sandbox._libseccomp``). Without libseccomp, x86_64 uses the hand-written
table in ``sandbox._seccomp_table`` (tested to refuse the same calls); other machines
then report the layer unavailable rather than guessing numbers.
"""
from __future__ import annotations

import ctypes

from sandbox import _libseccomp as lsc
from sandbox import _seccomp_table
from sandbox._syscalls import (CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS,
                               MACHINE, PR_SET_SECCOMP, prctl, set_no_new_privs)

__all__ = ["available", "backend", "install", "RULES", "DENIED", "NAMESPACE_FLAGS"]

CLONE_NEWCGROUP = 0x02000000
NAMESPACE_FLAGS = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev",
    "mount", "umount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "bpf", "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "perf_event_open", "userfaultfd",
    "add_key", "request_key", "keyctl", "name_to_handle_at", "open_by_handle_at",
    "settimeofday", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime", "clock_adjtime64",
    "reboot", "swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd",
    "iopl", "ioperm", "vhangup", "personality",
)
_EPERM, _ENOSYS, _AF_UNIX = 1, 38, 1
_CLONE_FLAGS_ARG = 1 if MACHINE.startswith("s390") else 0  # s390 swaps clone's first two arguments


def _rules() -> list[lsc.Rule]:
    deny = lsc.act_errno(_EPERM)
    rules = [lsc.Rule(name, deny) for name in DENIED]
    rules.append(lsc.Rule("clone3", lsc.act_errno(_ENOSYS)))
    bit = 1
    while bit <= NAMESPACE_FLAGS:  # one rule per flag: (flags & bit) == bit
        if NAMESPACE_FLAGS & bit:
            rules.append(lsc.Rule("clone", deny, ((_CLONE_FLAGS_ARG, lsc.CMP_MASKED_EQ, bit, bit),)))
        bit <<= 1
    rules.append(lsc.Rule("socket", deny, ((0, lsc.CMP_NE, _AF_UNIX, 0),)))
    return rules


RULES = _rules()


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Prog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Filter))]


def backend() -> str:
    """Which implementation builds the filter here: ``libseccomp X.Y.Z``, ``table``, or ``""``."""
    if lsc.available():
        return f"libseccomp {lsc.version()}"
    return "table" if MACHINE in _seccomp_table.MACHINES else ""


def available() -> bool:
    return bool(backend())


def _compile(use_table: bool) -> ctypes.Array:
    if use_table:
        rows = _seccomp_table.program(NAMESPACE_FLAGS)
        return (_Filter * len(rows))(*(_Filter(*row) for row in rows))
    raw = lsc.compile_filter(RULES)
    return (_Filter * (len(raw) // ctypes.sizeof(_Filter))).from_buffer_copy(raw)


_PREBUILT: dict[bool, tuple[ctypes.Array, _Prog]] = {}


def install(use_table: bool | None = None) -> None:
    """Install the filter on the calling process (irreversible); raises ``OSError``.

    ``use_table`` forces (True) or forbids (False) the hand-written x86_64 program;
    by default libseccomp builds it when present. Built once per process and reused
    by every child forked after.
    """
    if use_table is None:
        use_table = not lsc.available()
    if use_table and MACHINE not in _seccomp_table.MACHINES:
        raise OSError(38, f"no seccomp filter for {MACHINE}: {lsc.load_error()}")
    if use_table not in _PREBUILT:
        filters = _compile(use_table)
        _PREBUILT[use_table] = (filters, _Prog(len(filters), filters))
    set_no_new_privs()
    prctl(PR_SET_SECCOMP, 2, ctypes.addressof(_PREBUILT[use_table][1]))  # SECCOMP_MODE_FILTER
