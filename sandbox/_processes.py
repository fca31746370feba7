"""The program process: forked from the warm worker for every run.

It sets its session, descriptors, rlimits, environment and credentials, then locks
itself with Landlock and seccomp, says ``ok`` on the setup pipe, closes it, and only
then runs untrusted code (in-process Python, or ``execve``). With the PID-namespace
layer it is PID 1 of a fresh namespace, so every process it creates dies with it.
It only ever leaves through ``os._exit``.
"""
from __future__ import annotations

import math
import os
import resource
import signal
from dataclasses import dataclass
from typing import Any, NoReturn

from sandbox import _syscalls as sc
from sandbox import landlock, seccomp
from sandbox.languages import LanguageSpec
from sandbox.pyexec import prepare_streams, run_python
from sandbox.result import ExecRequest

__all__ = ["RunSetup", "program_main", "stage_files", "prepare_worker", "keeps_read_search"]

REPORT_FD, SETUP_FD = 3, 4
_CAP_DAC_READ_SEARCH = 2
_MAX_FD = 4096


@dataclass
class RunSetup:
    """Everything the program process needs, fixed before the fork."""

    request: ExecRequest
    spec: LanguageSpec
    plan: frozenset[str]
    uid: int
    workdir: str
    stdin_r: int
    stdout_w: int
    stderr_w: int
    report_w: int
    setup_w: int
    ruleset_fd: int | None = None  # a Landlock ruleset the worker built for this language
    cgroup: Any = None  # the worker's sandbox.cgroup.WorkerCgroup, when that layer is on


def stage_files(setup: RunSetup) -> None:
    """Write the program's files into its working directory (owned by the sandbox uid)."""
    for name, data in setup.request.program.files.items():
        path = os.path.join(setup.workdir, os.path.basename(name))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o755 if name == setup.spec.artifact else 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if "drop_uid" in setup.plan:
            os.chown(path, setup.uid, setup.uid)


def _set_descriptors(setup: RunSetup) -> None:
    for src, dst in ((setup.stdin_r, 0), (setup.stdout_w, 1), (setup.stderr_w, 2), (setup.report_w, REPORT_FD),
                     (setup.setup_w, SETUP_FD)):
        os.dup2(src, dst)
    os.closerange(SETUP_FD + 1, _MAX_FD)


def _set_rlimits(setup: RunSetup) -> None:
    limits = setup.request.limits
    cpu = max(1, math.ceil(limits.cpu_seconds))
    # soft == hard: the kernel's SIGKILL at the limit; a SIGXCPU would be ignored by a PID 1
    for res, value in ((resource.RLIMIT_CPU, cpu), (resource.RLIMIT_AS, limits.memory_bytes),
                       (resource.RLIMIT_NPROC, limits.processes), (resource.RLIMIT_FSIZE, limits.file_bytes),
                       (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0)):
        try:
            resource.setrlimit(res, (value, value))
        except (ValueError, OSError):  # an unprivileged caller cannot raise a lower inherited hard limit
            hard = resource.getrlimit(res)[1]
            resource.setrlimit(res, (min(value, hard), hard) if hard != resource.RLIM_INFINITY else (value, value))


def _environment(workdir: str) -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8", "PYTHONDONTWRITEBYTECODE": "1"}


def _set_credentials(setup: RunSetup) -> None:
    if "drop_uid" in setup.plan:
        # Keep only CAP_DAC_READ_SEARCH, so a runtime under a private home stays importable;
        # Landlock or the private root still confines reads to the runtime paths, and
        # seccomp blocks open_by_handle_at (which would otherwise reach any file).
        keep = keeps_read_search(setup.plan)
        if keep:
            sc.prctl(sc.PR_SET_KEEPCAPS, 1)
        os.setgroups([])
        os.setresgid(setup.uid, setup.uid, setup.uid)
        os.setresuid(setup.uid, setup.uid, setup.uid)
        sc.capset(1 << _CAP_DAC_READ_SEARCH if keep else 0)
    elif "userns" in setup.plan:
        sc.capset(0)


def keeps_read_search(plan: frozenset[str]) -> bool:
    """Whether the program keeps CAP_DAC_READ_SEARCH (see ``_set_credentials``)."""
    return "drop_uid" in plan and "seccomp" in plan and bool({"landlock", "fsroot"} & plan)


def _landlock(setup: RunSetup) -> None:
    if "landlock" not in setup.plan:
        return
    if setup.ruleset_fd is not None:
        landlock.enforce(setup.ruleset_fd)
    else:
        landlock.restrict(read=setup.spec.read_paths, write=(setup.workdir, "/dev/null"),
                          execute=setup.spec.exec_paths)


_DEFAULT_SIGNALS = (signal.SIGXCPU, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1, signal.SIGUSR2,
                    signal.SIGCHLD, signal.SIGQUIT)


_PREPARED: list[str] = []  # the run directory prepare_worker set the environment for


def prepare_worker(workdir: str) -> None:
    """Once per warm worker, what would otherwise cost every fork: default signal
    dispositions (whatever the worker inherited, e.g. an ignored SIGXCPU), the programs'
    environment (the worker needs nothing else) and Python's standard streams."""
    for sig in _DEFAULT_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(_environment(workdir))
    prepare_streams()
    _PREPARED[:] = [workdir]


def program_main(setup: RunSetup) -> NoReturn:
    """Body of the program process: isolate, then run untrusted code."""
    try:
        if _PREPARED != [setup.workdir]:
            for sig in _DEFAULT_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        if setup.cgroup is not None:
            setup.cgroup.join()  # while still the worker's uid: the leaf's files are its own
        _landlock(setup)  # before the descriptors are rearranged: the ruleset fd is still open
        _set_descriptors(setup)
        os.chdir(setup.workdir)
        _set_rlimits(setup)
        env = _environment(setup.workdir)
        if _PREPARED != [setup.workdir]:
            os.environ.clear()
            os.environ.update(env)
        _set_credentials(setup)
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        sc.set_no_new_privs()  # whatever layers are on: no setuid binary regains privileges
        if "seccomp" in setup.plan:
            seccomp.install()
    except BaseException as exc:  # noqa: BLE001 - reported as sandbox_error
        os.write(SETUP_FD, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:2000])
        os._exit(125)
    argv = setup.request.argv or setup.spec.run_argv
    if argv is None:
        run_python(setup.request, setup.spec, REPORT_FD, SETUP_FD)
    _exec(list(argv), env)


def _exec(argv: list[str], env: dict[str, str]) -> NoReturn:
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    os.close(REPORT_FD)
    os.write(SETUP_FD, b"ok")
    os.close(SETUP_FD)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        os.write(2, f"cannot execute {argv[0]}: {exc}\n".encode())
    os._exit(127)
