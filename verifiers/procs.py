"""Starting, talking to and killing one verifier worker subprocess."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Iterable

import verifiers

STARTUP_TIMEOUT = 120.0  # seconds a new worker may take to import its modules


class WorkerStartError(RuntimeError):
    """A verifier worker could not start (bad environment, import error)."""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(verifiers.__file__)))
    paths = [root] + [p for p in sys.path if p and os.path.isdir(p)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


class WorkerProcess:
    def __init__(self, popen: subprocess.Popen, send_conn: Connection, recv_conn: Connection) -> None:
        self.popen, self.send_conn, self.recv_conn = popen, send_conn, recv_conn
        self.ready = False
        self.started = time.monotonic()

    @classmethod
    def start(cls, preload: Iterable[str], memory_limit_mb: int | None) -> "WorkerProcess":
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        argv = [
            sys.executable, "-m", "verifiers.worker",
            str(to_child_r), str(to_parent_w), str(os.getpid()),
            ",".join(preload), str(memory_limit_mb or 0),
        ]
        try:
            popen = subprocess.Popen(
                argv, pass_fds=(to_child_r, to_parent_w), stdin=subprocess.DEVNULL,
                start_new_session=True, env=_child_env(), close_fds=True,
            )
        finally:
            os.close(to_child_r)
            os.close(to_parent_w)
        return cls(popen, Connection(to_child_w, readable=False), Connection(to_parent_r, writable=False))

    def send_bytes(self, payload: bytes) -> bool:
        try:
            self.send_conn.send_bytes(payload)
            return True
        except (BrokenPipeError, OSError):
            return False

    def wait_ready(self) -> None:
        if not self.recv_conn.poll(STARTUP_TIMEOUT):
            self.raise_start_failure()
        try:
            message = self.recv_conn.recv()
        except (EOFError, OSError):
            self.raise_start_failure()
        self.ready = message[0] == "ready"

    def alive(self) -> bool:
        return self.popen.poll() is None

    def startup_expired(self) -> bool:
        return time.monotonic() - self.started > STARTUP_TIMEOUT

    def exit_description(self, wait: float = 0.0) -> str:
        """How the process ended; ``wait`` gives one whose pipe just closed time to be reaped."""
        try:
            code = self.popen.wait(timeout=wait) if wait > 0 else self.popen.poll()
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"

    def raise_start_failure(self) -> None:
        self.kill()
        raise WorkerStartError(
            f"verifier worker failed to start ({self.exit_description()}); "
            f"run `{sys.executable} -m verifiers.worker` by hand to see why"
        )

    def kill(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self.popen.kill()
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for conn in (self.send_conn, self.recv_conn):
            try:
                conn.close()
            except OSError:
                pass
