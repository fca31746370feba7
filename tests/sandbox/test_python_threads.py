"""A Python program's threads finish before its run ends, as under ``python main.py``.

Competitive-programming solutions raise the recursion limit and run `main` in a thread with a
bigger stack; the output they print from that thread is the answer. Run many times, because
losing it was a race (some runs kept it, some did not).
"""
from __future__ import annotations

from sandbox import ExecRequest, Program

DEEP_STACK = """\
import sys, threading
def depth(n):
    return 0 if n == 0 else 1 + depth(n - 1)
def main():
    n = int(sys.stdin.readline())
    print(depth(n))
sys.setrecursionlimit(1 << 16)
threading.stack_size(1 << 26)
threading.Thread(target=main).start()
"""


def _run(pool, source: str, stdin: str = "", n: int = 1):
    program = Program("python", {"main.py": source.encode()})
    return pool.run_batch([ExecRequest(program, stdin=stdin.encode()) for _ in range(n)])


def test_output_printed_from_a_thread_with_a_bigger_stack_is_kept_every_time(pool):
    results = _run(pool, DEEP_STACK, "20000\n", n=20)
    assert [(r.status, r.stdout) for r in results] == [("ok", "20000\n")] * 20, results[0].stderr


def test_threads_finish_after_sys_exit_but_a_crash_of_the_main_thread_ends_the_run_at_once(run):
    late = "import threading, time\ndef late():\n    time.sleep(0.05)\n    print('late', flush=True)\n"
    exits = run(late + "threading.Thread(target=late).start()\nraise SystemExit(3)\n")
    assert exits.stdout == "late\n" and exits.exit_code == 3
    crash = run("import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n1/0\n", wall_s=30)
    assert crash.status == "runtime_error" and "ZeroDivisionError" in crash.stderr


def test_a_daemon_thread_does_not_hold_the_run(run):
    result = run("import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True)"
                 ".start()\nprint('done')\n", wall_s=30)
    assert result.status == "ok" and result.stdout == "done\n"


def test_a_thread_that_never_ends_is_stopped_by_the_time_limit(run):
    result = run("import threading\ndef spin():\n    while True:\n        pass\n"
                 "threading.Thread(target=spin).start()\nprint('started', flush=True)\n", wall_s=2)
    assert result.status in ("timeout", "cpu_limit") and result.stdout == "started\n"
