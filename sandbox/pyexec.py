"""Runs a Python program inside the (already locked-down) program process.

The warm worker has the interpreter and the standard modules loaded, so a run costs
a fork instead of an interpreter start. The program gets a fresh ``__main__``
namespace, ``sys.argv == ["main.py"]`` and new ``sys.std*`` streams on descriptors
0-2, so it behaves like ``python main.py`` with two differences: ``atexit`` handlers
do not run, and the worker's own modules are already imported. As at an interpreter's
exit, the run ends only once every non-daemon thread the program started has finished
(competitive-programming solutions print their answer from a thread started for a deeper
stack), after the top level ends or raises ``SystemExit``; the time limits still apply to
the whole run. One deviation: an uncaught exception in the main thread ends the run at
once as a runtime error (the interpreter would wait), so a program that crashes with
threads still running costs no wall time beyond its own.

If the request carries a harness driver, it runs after the program's top level and
writes its records on the report descriptor, never on stdout.
"""
from __future__ import annotations

import io
import os
import sys
import traceback
import types
from typing import NoReturn

from sandbox.harness.driver import run_driver
from sandbox.result import ExecRequest
from sandbox.languages import LanguageSpec

__all__ = ["run_python", "prepare_streams"]


_STREAMS: list[io.TextIOWrapper] = []


def prepare_streams() -> None:
    """Build the program's stdin/stdout/stderr objects (on fds 0-2) ahead of the fork.

    A warm worker calls this once and never uses them; each forked program gets its own
    copy, still empty, instead of paying for three new wrappers.
    """
    _STREAMS[:] = [
        io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace"),
        io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
                         errors="backslashreplace", line_buffering=False),
        io.TextIOWrapper(io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
                         errors="backslashreplace", line_buffering=True),
    ]


def _fresh_streams() -> None:
    if not _STREAMS:
        prepare_streams()
    sys.stdin, sys.stdout, sys.stderr = _STREAMS
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def _join_program_threads() -> None:
    """Wait for the program's non-daemon threads, as the interpreter's shutdown does (threads they start too)."""
    import threading

    me = threading.current_thread()
    while True:
        running = [t for t in threading.enumerate() if t is not me and not t.daemon and t.is_alive()]
        if not running:
            return
        for thread in running:
            thread.join()


def _finish(code: int) -> NoReturn:
    """The program's own end (top level done, or SystemExit): its threads first, then exit."""
    try:
        _join_program_threads()
    except BaseException:  # noqa: BLE001 - a program that broke threading still ends
        pass
    _flush_and_exit(code)


def _flush_and_exit(code: int) -> NoReturn:
    for stream in {id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)}.values():
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001 - the program may have broken its streams
            pass
    os._exit(code)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    try:
        print(exc.code, file=sys.stderr)
    except BaseException:  # noqa: BLE001
        pass
    return 1


def _report_exception() -> int:
    etype, exc, tb = sys.exc_info()
    try:  # skip this module's own frame, as `python main.py` would show no harness frames
        traceback.print_exception(etype, exc, tb.tb_next if tb is not None else None)
    except BaseException:  # noqa: BLE001 - a hostile __str__ must not hide the failure
        pass
    return 1


def run_python(request: ExecRequest, spec: LanguageSpec, report_fd: int, setup_fd: int) -> NoReturn:
    """Execute the program (and its harness driver, if any); never returns."""
    source = request.program.files[spec.source_name].decode("utf-8", errors="replace")
    driver = dict(request.driver) if request.driver else None
    _fresh_streams()
    sys.argv = [spec.source_name]
    sys.path = [p for p in sys.path if p and os.path.isabs(p)]
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=spec.source_name, __builtins__=__builtins__)
    sys.modules["__main__"] = main
    try:  # compiling runs none of the program's code; a syntax error is its compile error
        code = compile(source, spec.source_name, "exec")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        os.write(setup_fd, b"ok compile_error")
        os.close(setup_fd)
        _flush_and_exit(_report_exception())
    os.write(setup_fd, b"ok")
    os.close(setup_fd)
    try:
        exec(code, main.__dict__)  # noqa: S102 - this is the sandbox
    except SystemExit as exc:
        _finish(_exit_code(exc))  # exiting before a driver ran means its tests never finished
    except BaseException:  # noqa: BLE001 - any failure of the program is its runtime error
        _flush_and_exit(_report_exception())
    if driver is not None:
        _finish(run_driver(driver, main.__dict__, report_fd))
    _finish(0)
