"""The hand-written x86_64 seccomp program: the fallback when libseccomp is missing.

It denies the same calls as ``sandbox.seccomp.RULES`` by number (x86_64 only, the one
table kept by hand), kills any other ABI (x32, 32-bit ``int 0x80``), refuses
``clone`` with namespace flags and answers ``clone3`` with ``ENOSYS``. The tests
install both programs and check they refuse the same things.
"""
from __future__ import annotations

__all__ = ["MACHINES", "program"]

MACHINES = ("x86_64",)
_AUDIT_ARCH_X86_64 = 0xC000003E
_SOCKET, _CLONE, _CLONE3 = 41, 56, 435
_DENIED = (
    101, 310, 311,  # ptrace, process_vm_readv/writev
    165, 166, 155, 161, 272, 308,  # mount, umount2, pivot_root, chroot, unshare, setns
    428, 429, 430, 431, 432, 433, 442,  # open_tree, move_mount, fsopen, fsconfig, fsmount, fspick, mount_setattr
    321, 175, 313, 176, 246, 320,  # bpf, init/finit/delete_module, kexec_load, kexec_file_load
    425, 426, 427, 298, 323,  # io_uring_setup/enter/register, perf_event_open, userfaultfd
    248, 249, 250, 303, 304,  # add_key, request_key, keyctl, name_to_handle_at, open_by_handle_at
    164, 227, 159, 305, 169, 167, 168,  # settimeofday, clock_settime, adjtimex, clock_adjtime, reboot, swapon/off
    163, 103, 179, 443, 172, 173, 153, 135,  # acct, syslog, quotactl(_fd), iopl, ioperm, vhangup, personality
)
_AF_UNIX, _EPERM, _ENOSYS = 1, 1, 38
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO, _RET_KILL_PROCESS = 0x7FFF0000, 0x00050000, 0x80000000
_X32_BIT = 0x40000000


def program(namespace_flags: int) -> list[tuple[int, int, int, int]]:
    """BPF rows ``(code, jt, jf, k)``; ``namespace_flags`` are the clone flags refused."""
    deny = (_RET_K, 0, 0, _RET_ERRNO | _EPERM)
    allow = (_RET_K, 0, 0, _RET_ALLOW)
    kill = (_RET_K, 0, 0, _RET_KILL_PROCESS)
    prog = [(_LD_W_ABS, 0, 0, 4), (_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64), kill, (_LD_W_ABS, 0, 0, 0),
            (_JGE_K, 0, 1, _X32_BIT), kill]
    for nr in _DENIED:
        prog += [(_JEQ_K, 0, 1, nr), deny]
    prog += [(_JEQ_K, 0, 1, _CLONE3), (_RET_K, 0, 0, _RET_ERRNO | _ENOSYS)]
    # clone(flags, ...): the low 32 bits of flags hold every namespace flag.
    prog += [(_JEQ_K, 0, 4, _CLONE), (_LD_W_ABS, 0, 0, 16), (_JSET_K, 0, 1, namespace_flags), deny, allow]
    # socket(family, ...): allow AF_UNIX only; everything else is EPERM.
    prog += [(_LD_W_ABS, 0, 0, 0), (_JEQ_K, 0, 4, _SOCKET), (_LD_W_ABS, 0, 0, 16), (_JEQ_K, 1, 0, _AF_UNIX), deny,
             allow, allow]
    return prog
