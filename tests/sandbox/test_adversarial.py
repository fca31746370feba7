"""The attack suite: one hostile program per test.

Each test asserts the verdict *and* that the host is unharmed: the ``run`` fixture
fails the test if a worker died or any process forked for the run is still alive.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

import pytest

from sandbox import ExecRequest, Limits, capabilities
from tests.sandbox.support import leftovers, needs, python

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# How far past its wall limit a program that is killed there may be reported to end: the
# supervisor kills it at the deadline, which a loaded 2-core machine delays by far less.
DEADLINE_SLACK_S = 10.0


def test_fork_bomb_is_contained(run):
    result = run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", wall_s=2.0,
                 processes=32)
    assert result.status in ("timeout", "cpu_limit")


def test_memory_bomb_is_a_memory_limit(run):
    result = run("blocks = []\nwhile True:\n    blocks.append(bytearray(50 << 20))", memory_bytes=256 << 20)
    assert result.status == "memory_limit"


def test_infinite_loop_is_a_timeout(run):
    result = run("while True:\n    pass", wall_s=1.0)
    # the enforced deadline: killed at its 1 s wall (or CPU) limit, not left running
    assert result.status in ("timeout", "cpu_limit") and result.wall_s < 1.0 + DEADLINE_SLACK_S


def test_cpu_limit_below_wall_limit_is_reported_as_cpu_limit(run):
    result = run("while True:\n    pass", wall_s=10.0, cpu_s=1.0)
    assert result.status == "cpu_limit" and 0.7 <= result.cpu_s < 1.5  # rusage reads a little under the rlimit


def test_sleep_is_a_timeout_not_a_cpu_limit(run):
    result = run("import time\ntime.sleep(60)", wall_s=0.5)
    assert result.status == "timeout" and result.cpu_s < 0.5


def test_blocking_stdin_read_gets_end_of_file(run):
    result = run("import sys\ndata = sys.stdin.read()\nprint(len(data))\ninput()", wall_s=5.0)
    # an EOFError, not a `timeout`: the read ended instead of blocking until the wall limit
    assert result.status == "runtime_error" and "EOFError" in result.stderr


def test_output_flood_is_an_output_limit_not_a_timeout(run):
    result = run("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(chunk)",
                 wall_s=20.0)
    assert result.status == "output_limit" and result.stdout_truncated  # killed for its output, not its time
    assert len(result.stdout) == 1 << 20


def test_stderr_flood_is_an_output_limit(run):
    result = run("import os\nwhile True:\n    os.write(2, b'e' * 65536)", wall_s=20.0)
    assert result.status == "output_limit" and result.stderr_truncated


def test_flood_while_stdin_is_still_being_fed_does_not_deadlock(run):
    source = "import sys\nsys.stdout.write('y' * (4 << 20))\nsys.stdout.flush()\nprint(len(sys.stdin.read()))"
    result = run(source, stdin=b"z" * (8 << 20), wall_s=10.0, output_bytes=8 << 20)
    assert result.status == "ok" and result.stdout.endswith(str(8 << 20) + "\n")


@needs("tmpfs")
def test_disk_fill_is_stopped_by_the_tmpfs_cap(run):
    source = ("i = 0\nwhile True:\n    with open(f'f{i}', 'wb') as fh:\n        fh.write(b'0' * (1 << 20))\n    i += 1")
    result = run(source, disk_bytes=8 << 20, wall_s=10.0)
    assert result.status == "runtime_error" and "No space left" in result.stderr


def test_one_huge_file_is_stopped_by_the_file_size_limit(run):
    result = run("with open('big', 'wb') as fh:\n    fh.write(b'0' * (8 << 20))", file_bytes=1 << 20)
    assert result.status == "runtime_error" and "File too large" in result.stderr


def test_thread_explosion_is_contained(run):
    source = ("import threading, time\nn = 0\nwhile True:\n    threading.Thread(target=time.sleep, args=(60,)).start()\n"
              "    n += 1")
    result = run(source, processes=32, wall_s=5.0)
    assert result.status == "runtime_error" and "can't start new thread" in result.stderr


@pytest.fixture()
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted = []

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    yield server.getsockname()[1], accepted
    thread.join()
    server.close()


def test_network_connect_to_localhost_is_refused(run, listener):
    port, accepted = listener
    result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).send(b'hi')\nprint('sent')")
    assert result.status == "runtime_error" and "sent" not in result.stdout
    time.sleep(0.3)
    assert accepted == []


def test_reading_a_world_readable_file_outside_the_sandbox_is_denied(run, outside):
    secret = outside / "secret.txt"
    secret.write_text("s3cr3t-" + uuid.uuid4().hex)
    secret.chmod(0o644)
    outside.chmod(0o755)
    result = run(f"print(open({str(secret)!r}).read())")
    assert result.status == "runtime_error" and "s3cr3t" not in result.stdout


def test_host_environment_is_not_visible(run):
    os.environ["RLVR_SANDBOX_CANARY"] = "canary-value"
    try:
        source = ("import os\nprint(dict(os.environ))\nfor pid in ('1', str(os.getppid()), 'self'):\n"
                  "    try:\n        print(open(f'/proc/{pid}/environ').read())\n    except OSError as e:\n"
                  "        print('denied', e)")
        result = run(source)
    finally:
        del os.environ["RLVR_SANDBOX_CANARY"]
    assert result.status == "ok" and "canary-value" not in result.stdout


def test_parent_environ_in_proc_is_unreadable(run):
    result = run(f"print(open('/proc/{os.getpid()}/environ', 'rb').read())")
    assert result.status == "runtime_error"
    assert "PermissionError" in result.stderr or "FileNotFoundError" in result.stderr  # Landlock, or no /proc


def test_writing_outside_the_working_directory_fails(run, outside):
    outside.chmod(0o777)
    target = outside / "pwned"
    result = run(f"open({str(target)!r}, 'w').write('x')\nprint('wrote')")
    assert result.status == "runtime_error" and not target.exists()


def test_killing_the_parent_leaves_the_worker_alive(run):
    result = run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nprint('still here')")
    assert result.status in ("ok", "runtime_error", "killed")


def test_kill_minus_one_harms_nobody_outside(run):
    result = run("import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError as e:\n    print(e)")
    assert result.status in ("ok", "runtime_error", "killed")
    assert os.getpid() > 0  # still running: the test process survived


def test_ignoring_sigterm_does_not_outlive_the_deadline(run):
    result = run("import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass", wall_s=1.0)
    # the enforced deadline: SIGKILL at the 1 s limit, which ignoring SIGTERM cannot stretch
    assert result.status in ("timeout", "cpu_limit") and result.wall_s < 1.0 + DEADLINE_SLACK_S


def test_double_forked_daemon_does_not_survive(run, pool):
    source = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(30)\n"
              "        os._exit(0)\n    os._exit(0)\ntime.sleep(0.2)\nprint('parent done')")
    result = run(source)
    assert result.status == "ok" and result.stdout == "parent done\n"
    # the fixture asserts that no process forked for this run remains


def test_recursion_crash_is_a_runtime_error(run):
    source = "import sys\nsys.setrecursionlimit(10**7)\nnested = []\nfor _ in range(3 * 10**5):\n    nested = [nested]\nrepr(nested)"
    result = run(source, wall_s=10.0)
    assert result.status == "runtime_error" and result.signal == 11  # C stack overflow: SIGSEGV


def test_python_recursion_error_is_a_runtime_error(run):
    result = run("def f(n):\n    return f(n + 1)\nf(0)")
    assert result.status == "runtime_error" and "RecursionError" in result.stderr


def test_ctypes_segfault_is_a_runtime_error_with_the_signal(run):
    result = run("import ctypes\nctypes.string_at(0)")
    assert result.status == "runtime_error" and result.signal == 11


@needs("seccomp")
def test_ptrace_and_unshare_are_refused(run):
    source = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
              "print(libc.unshare(0x40000000), ctypes.get_errno())\nprint(libc.ptrace(16, 1, 0, 0), ctypes.get_errno())")
    result = run(source)
    assert result.status == "ok" and result.stdout == "-1 1\n-1 1\n"


def _weaker_pool(*disable: str):
    from sandbox import SandboxPool
    from sandbox.isolation import refusal
    plan = frozenset(n for n, i in capabilities().items() if i["active"]) - set(disable)
    if refusal(plan):
        pytest.skip(f"this host refuses that configuration: {refusal(plan)}")
    return SandboxPool(workers=1, disable=disable)


def test_without_tmpfs_a_disk_fill_is_stopped_by_the_watchdog():
    source = "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'0' * (1 << 20))\n    i += 1"
    with _weaker_pool("tmpfs") as weak:
        result = weak.run(ExecRequest(python(source), limits=Limits(disk_bytes=8 << 20, wall_s=10.0)))
        assert result.status == "output_limit"  # the watchdog stopped it, not the 10 s wall limit (`timeout`)
        assert leftovers(weak) == []


def test_without_a_pid_namespace_a_daemon_is_still_swept():
    source = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(30)\n"
              "        os._exit(0)\n    os._exit(0)\ntime.sleep(0.2)\nprint('parent done')")
    with _weaker_pool("pidns") as weak:
        assert weak.run(ExecRequest(python(source))).stdout == "parent done\n"
        assert leftovers(weak) == []
