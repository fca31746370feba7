"""A small ctypes binding to libseccomp (``libseccomp.so.2``): names to numbers, rules to BPF.

libseccomp knows every architecture's syscall table and the checks that keep a
filter honest on it (the audit architecture, x32 and other secondary ABIs, the
``socketcall`` multiplexer), so a filter written here by syscall *name* compiles to
the right BPF on x86_64, aarch64, ppc64le, s390x, riscv64, ... The filter is exported
as raw BPF once per worker (``compile_filter``) and installed with ``prctl`` in every
program process (see ``sandbox.seccomp``), so a run pays no library call.

Loaded lazily; ``available()`` is false (with ``load_error()`` saying why) when the
shared library is missing, and ``sandbox.seccomp`` then falls back to its own table.
The library ships with every mainstream distribution (Debian/Ubuntu ``libseccomp2``,
RHEL ``libseccomp``), since systemd and container runtimes depend on it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

__all__ = ["available", "load_error", "resolve", "Rule", "compile_filter", "version",
           "ACT_ALLOW", "ACT_KILL_PROCESS", "act_errno", "CMP_NE", "CMP_MASKED_EQ"]

ACT_KILL_PROCESS, ACT_ALLOW = 0x80000000, 0x7FFF0000
CMP_NE, CMP_EQ, CMP_MASKED_EQ = 1, 4, 7
_ATTR_ACT_BADARCH = 2
_NR_SCMP_ERROR = -1


def act_errno(errno: int) -> int:
    return 0x00050000 | (errno & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


_LIB: list[object] = []  # [CDLL] or [error text]


def _load() -> ctypes.CDLL | None:
    if not _LIB:
        names = ["libseccomp.so.2"] + [n for n in (ctypes.util.find_library("seccomp"),) if n]
        errors = []
        for name in names:
            try:
                lib = ctypes.CDLL(name, use_errno=True)
                break
            except OSError as exc:
                errors.append(str(exc))
        else:
            _LIB.append("libseccomp.so.2 not found (install libseccomp2 / libseccomp): " + "; ".join(errors))
            return None
        lib.seccomp_init.restype = ctypes.c_void_p
        lib.seccomp_init.argtypes = [ctypes.c_uint32]
        lib.seccomp_release.argtypes = [ctypes.c_void_p]
        lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                               ctypes.POINTER(_ArgCmp)]
        lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_version.restype = ctypes.POINTER(_Version)
        lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        lib.seccomp_arch_native.restype = ctypes.c_uint32
        lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        lib.seccomp_arch_remove.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        _LIB.append(lib)
    return _LIB[0] if isinstance(_LIB[0], ctypes.CDLL) else None


def available() -> bool:
    return _load() is not None


def load_error() -> str:
    return "" if available() else str(_LIB[0])


def version() -> str:
    lib = _load()
    if lib is None:
        return ""
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def resolve(name: str) -> int | None:
    """The native number of syscall ``name``, or None (unknown here, or no libseccomp)."""
    lib = _load()
    if lib is None:
        return None
    number = lib.seccomp_syscall_resolve_name(name.encode())
    return number if number >= 0 else None  # negative: an error or a pseudo-number (absent on this arch)


@dataclass(frozen=True)
class Rule:
    """``action`` for syscall ``name`` when every ``(arg, op, a, b)`` comparison holds."""

    name: str
    action: int
    args: tuple[tuple[int, int, int, int], ...] = ()


def _check(ret: int, what: str) -> None:
    if ret < 0:
        raise OSError(-ret, f"libseccomp {what}: {os.strerror(-ret)}")


def compile_filter(rules: list[Rule], default: int = ACT_ALLOW, arch: str | None = None) -> bytes:
    """The BPF program (raw ``sock_filter`` array) for ``rules`` on the native
    architecture, or on ``arch`` (a libseccomp name such as ``aarch64``: only to
    inspect what another machine would get; such a filter is useless here).

    Syscalls the architecture does not have are skipped; any other ABI (32-bit
    ``int 0x80``, x32, compat) kills the process.
    """
    lib = _load()
    if lib is None:
        raise OSError(38, load_error())
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError(12, "seccomp_init failed")
    try:
        _check(lib.seccomp_attr_set(ctx, _ATTR_ACT_BADARCH, ACT_KILL_PROCESS), "attr_set")
        if arch is not None:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token == 0:
                raise OSError(22, f"libseccomp knows no architecture {arch!r}")
            if token != lib.seccomp_arch_native():  # rules below are translated by name
                _check(lib.seccomp_arch_add(ctx, token), f"arch_add {arch}")
                _check(lib.seccomp_arch_remove(ctx, lib.seccomp_arch_native()), "arch_remove native")
        for rule in rules:
            number = resolve(rule.name)
            if number is None:
                continue
            cmps = (_ArgCmp * max(1, len(rule.args)))(*(_ArgCmp(*a) for a in rule.args))
            _check(lib.seccomp_rule_add_array(ctx, rule.action, number, len(rule.args), cmps), f"rule {rule.name}")
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("rlvr-seccomp", os.MFD_CLOEXEC)
    try:
        _check(lib.seccomp_export_bpf(ctx, fd), "export_bpf")
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
