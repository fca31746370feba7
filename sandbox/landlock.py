"""Landlock: restrict which paths a process (and its descendants) may read, write or run.

The sandboxed process gets read access to the language runtime's directories,
read/write access to its working directory, execute access only where its language
spec says, and nothing else. On kernels with Landlock ABI >= 4 TCP bind/connect are
denied too, and with ABI >= 6 the process may neither signal processes outside its
domain nor connect to abstract unix sockets created outside it.

A domain only ever narrows: once applied it cannot be undone by the process.
"""
from __future__ import annotations

import ctypes
import os
from typing import Iterable

from sandbox._syscalls import set_no_new_privs, syscall

__all__ = ["abi_version", "build_ruleset", "enforce", "restrict"]

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # same number on every arch
_RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_WRITE_TREE = sum(1 << b for b in range(4, 13))  # remove/make dir, file, sock, fifo, dev, symlink
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI version, or 0 when Landlock is unavailable."""
    try:
        return syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except OSError:
        return 0


def _handled_fs(abi: int) -> int:
    handled = EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | _WRITE_TREE
    if abi >= 2:
        handled |= REFER
    if abi >= 3:
        handled |= TRUNCATE
    if abi >= 5:
        handled |= IOCTL_DEV
    return handled


def _add_path(ruleset: int, path: str, access: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a runtime path that does not exist on this machine needs no rule
    try:
        if not os.path.isdir(path):
            access &= _FILE_ONLY
        rule = _PathBeneath(access & handled, fd)
        syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        os.close(fd)


def build_ruleset(read: Iterable[str], write: Iterable[str], execute: Iterable[str]) -> int:
    """A ruleset fd: ``read`` paths get read access (files and listings), ``write`` paths
    full access, ``execute`` paths read and execute. Building one restricts nothing;
    a warm worker builds it once and each program process ``enforce``s it."""
    abi = abi_version()
    if abi < 1:
        raise OSError(38, "Landlock is not available on this kernel")
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled, 0, 0)
    if abi >= 4:
        attr.net = _NET_BIND_TCP | _NET_CONNECT_TCP
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        reading = READ_FILE | READ_DIR
        for path in read:
            _add_path(ruleset, path, reading, handled)
        for path in execute:
            _add_path(ruleset, path, reading | EXECUTE, handled)
        for path in write:
            _add_path(ruleset, path, handled, handled)
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def enforce(ruleset: int) -> None:
    """Apply a ruleset to the calling process and its future children (irreversible)."""
    set_no_new_privs()
    syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))


def restrict(read: Iterable[str], write: Iterable[str], execute: Iterable[str]) -> None:
    """Build and enforce a ruleset in one go (see ``build_ruleset``)."""
    ruleset = build_ruleset(read, write, execute)
    try:
        enforce(ruleset)
    finally:
        os.close(ruleset)
