"""SandboxPool: results, statuses, batch and asyncio APIs, bounded concurrency, worker replacement."""
from __future__ import annotations

import asyncio
import os
import signal
import time

from sandbox import STATUSES, ExecRequest, ExecResult, Limits, SandboxPool
from tests.sandbox.support import python


def test_ok_run_reports_output_times_and_memory(run):
    result = run("import sys\nprint('out')\nprint('err', file=sys.stderr)")
    assert (result.status, result.exit_code, result.signal) == ("ok", 0, None)
    assert (result.stdout, result.stderr) == ("out\n", "err\n")
    # in seconds, and within the wall limit it ran under (it ended `ok`): a unit check, not a speed bound
    assert 0 < result.wall_s < Limits().wall_s and result.cpu_s >= 0 and result.peak_memory_bytes > 0


def test_nonzero_exit_is_a_runtime_error_with_the_code(run):
    result = run("raise SystemExit(3)")
    assert (result.status, result.exit_code) == ("runtime_error", 3)


def test_uncaught_exception_shows_only_the_programs_traceback(run):
    result = run("def f():\n    raise ValueError('boom')\nf()")
    assert result.status == "runtime_error" and "ValueError: boom" in result.stderr
    assert "pyexec" not in result.stderr


def test_stdin_reaches_the_program(run):
    assert run("print(input()[::-1])", stdin=b"abc\n").stdout == "cba\n"


def test_program_sees_a_fresh_main_module_and_argv(run):
    result = run("import sys\nprint(__name__, sys.argv, sorted(k for k in globals() if not k.startswith('__')))")
    assert result.stdout == "__main__ ['main.py'] ['sys']\n"


def test_statuses_are_the_documented_ones():
    assert set(STATUSES) == {"ok", "runtime_error", "timeout", "cpu_limit", "memory_limit", "output_limit", "killed",
                             "sandbox_error"}


def test_batch_returns_results_in_input_order(pool):
    requests = [ExecRequest(python(f"print({i})")) for i in range(12)]
    assert [r.stdout for r in pool.run_batch(requests)] == [f"{i}\n" for i in range(12)]


def test_asyncio_api_runs_concurrently(pool):
    # each program prints the (host-wide) monotonic clock as its sleep starts and as it ends
    source = "import time\nprint(time.monotonic())\ntime.sleep(2.0)\nprint(time.monotonic())"
    requests = [ExecRequest(python(source)) for _ in range(pool.size)]

    async def main() -> list[ExecResult]:
        return await pool.arun_batch(requests)

    results = asyncio.run(main())
    assert [r.status for r in results] == ["ok"] * pool.size
    spans = [[float(t) for t in r.stdout.split()] for r in results]
    # overlapped: run one after another, no sleep could start before the previous one ended; run
    # concurrently, every sleep starts before any ends (the programs may start up to 2 s apart)
    assert max(start for start, _ in spans) < min(end for _, end in spans), spans


def test_concurrency_is_bounded_by_the_worker_count():
    with SandboxPool(workers=1) as single:
        requests = [ExecRequest(python("import time\ntime.sleep(0.2)")) for _ in range(3)]
        start = time.monotonic()
        single.run_batch(requests)
        assert time.monotonic() - start >= 0.6


def test_a_dead_worker_is_replaced_and_its_run_is_a_sandbox_error():
    with SandboxPool(workers=1) as single:
        assert single.run(ExecRequest(python("print(1)"))).ok
        victim = single._all[0].proc.pid
        os.kill(victim, signal.SIGKILL)
        assert single.run(ExecRequest(python("print(1)"))).status == "sandbox_error"
        assert single.run(ExecRequest(python("print(2)"))).stdout == "2\n"
        assert single._all[0].proc.pid != victim


def test_closed_pool_leaves_no_worker_directories():
    single = SandboxPool(workers=1)
    single.run(ExecRequest(python("open('f', 'w').write('x')")))
    roots = [w.tmp_root for w in single._all]
    single.close()
    assert roots and not any(os.path.exists(r) for r in roots)


def test_working_directory_is_private_writable_and_fresh(run):
    first = run("import os\nopen('note', 'w').write('x')\nprint(os.getcwd(), os.listdir('.'))")
    second = run("import os\nprint(os.getcwd(), os.listdir('.'))")
    assert first.status == second.status == "ok"
    assert "'note'" in first.stdout and "note" not in second.stdout
    assert not os.path.exists(first.stdout.split()[0])


def test_limits_travel_with_each_request(pool):
    result = pool.run(ExecRequest(python("print('x' * 100)"), limits=Limits(output_bytes=10)))
    assert result.status == "output_limit" and result.stdout == "x" * 10
