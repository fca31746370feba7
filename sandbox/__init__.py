"""Runs untrusted programs fast, contained, and judged outside their own process.

    >>> from sandbox import SandboxPool, run_tests
    >>> with SandboxPool(workers=2) as pool:
    ...     report = run_tests(pool, "print(int(input()) * 2)", "python", "stdio",
    ...                        {"cases": [{"input": "21", "output": "42"}]})
    >>> report.outcome
    'passed'

Importable without torch or anything else of rlvr; it knows nothing of verifiers or RL.

Threat model
------------
The adversary is the program: model-written code that may be buggy, greedy or
written to game its reward. Every run gets, where the kernel allows (``capabilities()``
says which are active; ``SandboxPool(strict=True)`` refuses to run without them):

- its own session and process group, and rlimits on CPU seconds, address space,
  processes/threads (per sandbox uid), file size, open files; no core dumps;
- a private working directory (on a size-capped tmpfs in a private mount namespace),
  removed after the run; a minimal explicit environment - the worker itself starts
  from a near-empty environment, so the host's variables are not even in its memory;
- a private root in that mount namespace (``sandbox.fsroot``, ``pivot_root``): only
  the runtime's directories, read-only, a few device nodes and the run directory
  exist; no /tmp, /home, /proc or /sys. The filesystem boundary where Landlock is
  missing, a second one where it is not;
- an unprivileged uid private to its worker (when started as root) or an unprivileged
  user namespace (otherwise), so it cannot signal, trace or read the host's processes;
- a network namespace with nothing but a down loopback, and seccomp refusing every
  socket that is not AF_UNIX - no network, not even to localhost;
- a PID namespace of its own, whose PID 1 is the program: when it ends, the kernel
  kills every descendant, double-forked daemons included (without one: a subreaper
  sweep plus ``kill(-1)`` as the sandbox uid);
- Landlock: reads only under the language runtime's directories, writes only in its
  working directory, execution only of the runtime and its own binary, no TCP, no
  signals or abstract-socket connections outside its own domain;
- seccomp, compiled by libseccomp for the native architecture (a hand-written table
  on x86_64 without it): no ptrace, mount, namespace changes (``clone`` with
  ``CLONE_NEW*`` flags included; ``clone3`` gets ENOSYS), kernel-module/bpf/kexec
  loading, io_uring, perf events, userfaultfd, keyrings, open_by_handle_at, clock changes;
- per-run memory and pids limits over the whole process tree by cgroup v2 where a
  delegated cgroup exists (``sandbox.cgroup``); elsewhere the rlimits stand in.

Some plans are refused outright, whatever ``strict`` says (``isolation.refusal``): as
root without ``drop_uid`` the program would be root, and unprivileged without a PID
namespace its ``kill(-1)`` would reach every process of the calling user; without
Landlock or the private root it could overwrite any world-writable file; without a
network namespace or seccomp it would have the network; and when the sandbox uid
cannot read the interpreter's modules every program would fail (``runtime_access``,
plus an import-only program run when the pool starts). Without the tmpfs layer a
watchdog measures the working directory every 0.1 s instead.

What legitimate programs lose with it: no /proc, /sys or /dev/shm (so no
``multiprocessing`` semaphores), no executing other binaries from Python when Landlock
is on (compiled languages run their own binary), no network.

Outputs are drained concurrently with a hard byte cap, runs have a wall deadline, and
harness verdicts never travel through the program's stdout (see ``sandbox.harness``).

What it does not stop:

- kernel exploits: this is a set of Linux isolation features, not a virtual machine.
  For hostile-by-design code from untrusted users, run the workers inside a VM or
  gVisor as well;
- CPU-timing and cache side channels, and contention: a run can slow its neighbours
  within its CPU and memory limits;
- a program that targets the in-process ``assert`` harness itself (finding the run's
  token in its own memory and forging records); ``stdio`` and ``call`` verdicts are
  judged in the parent and do not depend on that secret;
- reads of world-readable files inside the runtime's directories (the standard
  library, installed packages; under the private root without Landlock, every file
  there and executing its binaries), and of leftover memory of earlier requests in the
  warm worker (programs and ``assert`` test code, never ``stdio``/``call`` expected
  outputs, which never enter the worker);
- total memory across processes where no delegated cgroup v2 exists (``capabilities()``
  reports ``cgroup`` not applicable): RLIMIT_AS caps each process, and RLIMIT_NPROC the
  number of processes, so the worst case is their product;
- abstract unix sockets of the host, where both the network namespace and Landlock's
  scoping (ABI 6) are missing;
- exact POSIX signal semantics: the program is PID 1 of its namespace, so a signal
  it sends *itself* whose action is the default (``os.kill(os.getpid(), SIGTERM)``)
  is ignored; faults (SIGSEGV, ...) and signals with handlers behave as usual;
- layers the kernel lacks: on such machines they are reported inactive and skipped
  (or refused with ``strict=True``), never silently; seccomp needs libseccomp outside
  x86_64.
"""
from __future__ import annotations

import importlib
from typing import Any

# Public names -> the module defining them. Loaded on first use (PEP 562), so a warm
# worker that imports ``sandbox.worker`` does not drag in asyncio, threads or the harnesses:
# every module it holds makes each fork a little more expensive.
_EXPORTS = {
    "Limits": "sandbox.limits", "ExecRequest": "sandbox.result", "ExecResult": "sandbox.result",
    "Program": "sandbox.result", "STATUSES": "sandbox.result", "SandboxPool": "sandbox.pool",
    "Prepared": "sandbox.pool", "capabilities": "sandbox.isolation", "missing_layers": "sandbox.isolation",
    "IsolationError": "sandbox.isolation", "LanguageSpec": "sandbox.languages",
    "register_language": "sandbox.languages", "get_language": "sandbox.languages",
    "available_languages": "sandbox.languages", "run_tests": "sandbox.harness", "get_harness": "sandbox.harness",
    "HarnessOptions": "sandbox.harness", "HarnessReport": "sandbox.harness", "CaseResult": "sandbox.harness",
    "BadTests": "sandbox.harness",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'sandbox' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
