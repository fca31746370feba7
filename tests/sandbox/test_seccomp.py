"""seccomp on every architecture: the libseccomp filter and the x86_64 fallback table
refuse the same calls; namespace flags to clone are refused and clone3 is ENOSYS."""
from __future__ import annotations

import ctypes
import os
import socket

import pytest

from sandbox import _libseccomp, seccomp
from sandbox._syscalls import CLONE_NEWNET, CLONE_NEWUSER, MACHINE
from tests.sandbox.support import needs

_SIGCHLD = 17
_BACKENDS = [pytest.param(False, id="libseccomp", marks=pytest.mark.skipif(not _libseccomp.available(),
                                                                            reason=_libseccomp.load_error())),
             pytest.param(True, id="x86_64-table", marks=pytest.mark.skipif(MACHINE != "x86_64",
                                                                              reason="the table is x86_64 only"))]


def _errno_of(call) -> int:
    ctypes.set_errno(0)
    return ctypes.get_errno() if call() == -1 else 0


def _probe() -> dict[str, object]:
    """What a filtered process can and cannot do (runs in the filtered child)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    nr = {name: _libseccomp.resolve(name) or {"clone": 56, "clone3": 435}.get(name)
          for name in ("clone", "clone3")}
    out: dict[str, object] = {
        "unshare": _errno_of(lambda: libc.unshare(CLONE_NEWNET)),
        "ptrace": _errno_of(lambda: libc.ptrace(16, 1, 0, 0)),
        "mount": _errno_of(lambda: libc.mount(b"none", b"/", None, 0, None)),
        "clone3": _errno_of(lambda: libc.syscall(nr["clone3"], None, 0)),
    }
    for name, flag in (("clone_newuser", CLONE_NEWUSER), ("clone_newnet", CLONE_NEWNET)):
        ret = libc.syscall(nr["clone"], flag | _SIGCHLD, 0, 0, 0, 0)
        if ret == 0:
            os._exit(0)  # the child of a clone that should have been refused
        out[name] = ctypes.get_errno() if ret == -1 else "allowed"
    try:
        socket.socket(socket.AF_INET).close()
        out["inet"] = "allowed"
    except OSError as exc:
        out["inet"] = exc.errno
    socket.socket(socket.AF_UNIX).close()
    pid = os.fork()  # plain fork (clone without namespace flags) and threads still work
    if pid == 0:
        os._exit(7)
    out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return out


def _in_filtered_child(use_table: bool) -> dict[str, object]:
    import json
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            seccomp.install(use_table=use_table)
            os.write(write_fd, json.dumps(_probe()).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return json.loads(data)


@pytest.mark.parametrize("use_table", _BACKENDS)
def test_filter_refuses_namespaces_ptrace_mounts_and_inet_sockets(use_table):
    got = _in_filtered_child(use_table)
    assert got == {"unshare": 1, "ptrace": 1, "mount": 1, "clone3": 38, "clone_newuser": 1, "clone_newnet": 1,
                   "inet": 1, "fork": 7}


def test_every_denied_name_is_a_syscall_libseccomp_knows_somewhere():
    if not _libseccomp.available():
        pytest.skip(_libseccomp.load_error())
    known = [name for name in seccomp.DENIED if _libseccomp.resolve(name) is not None]
    assert len(known) >= len(seccomp.DENIED) - 8  # a few exist only on other architectures (umount, iopl, ...)


def test_libseccomp_is_preferred_and_named():
    if not _libseccomp.available():
        pytest.skip(_libseccomp.load_error())
    assert seccomp.backend().startswith("libseccomp ")


@needs("seccomp")
def test_a_program_cannot_clone_into_a_new_user_namespace(run):
    source = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
              f"ret = libc.syscall({_libseccomp.resolve('clone') or 56}, 0x10000011, 0, 0, 0, 0)\n"
              "if ret == 0:\n    os._exit(0)\nprint(ret, ctypes.get_errno())")
    assert run(source).stdout == "-1 1\n"


@pytest.mark.parametrize("arch, audit, numbers", [
    ("aarch64", 0xC00000B7, {"clone": 220, "clone3": 435, "unshare": 97, "socket": 198, "ptrace": 117}),
    ("ppc64le", 0xC0000015, {"clone": 120, "clone3": 435, "unshare": 282, "socket": 326, "ptrace": 26}),
])
def test_the_same_rules_compile_for_other_architectures(arch, audit, numbers):
    """What an ARM or POWER node would install: its own audit arch and syscall numbers."""
    import struct
    if not _libseccomp.available():
        pytest.skip(_libseccomp.load_error())
    raw = _libseccomp.compile_filter(seccomp.RULES, arch=arch)
    rows = [struct.unpack("HBBI", raw[i:i + 8]) for i in range(0, len(raw), 8)]
    constants = {k for code, _, _, k in rows if code == 0x15}  # BPF_JMP | BPF_JEQ | BPF_K
    assert rows[0] == (0x20, 0, 0, 4) and audit in constants  # loads the arch first, checks it
    assert set(numbers.values()) <= constants
