import multiprocessing
import os
import threading
import time

import pytest

from tests.verifiers import hostile_verifiers  # noqa: F401  (registers the test verifiers)
from verifiers import Verdict
from verifiers.runtime import DeadlineExceeded, VerifierPool, VerifyTask, call_with_deadline


@pytest.fixture(scope="module")
def pool():
    with VerifierPool(workers=2, timeout=2.0, chunk_size=4, preload=()) as p:
        yield p


def _echo(i):
    return VerifyTask("test_echo", str(i), str(i if i % 3 else -1), fields={"row": i})


def test_results_come_back_in_input_order(pool):
    verdicts = pool.verify(_echo(i) for i in range(200))
    assert [v.details["row"] for v in verdicts] == list(range(200))
    assert [v.reward for v in verdicts] == [0.0 if i % 3 == 0 else 1.0 for i in range(200)]
    # both workers take part (on a loaded machine one may finish its chunks before the other starts)
    more = verdicts if len({v.details["pid"] for v in verdicts}) == 2 else pool.verify(_echo(i) for i in range(2000))
    assert len({v.details["pid"] for v in more}) == 2


def test_hung_sample_times_out_and_nothing_is_lost(pool):
    tasks = [VerifyTask("test_hang", "hang" if i == 5 else "ok", None) for i in range(20)]
    start = time.monotonic()
    verdicts = pool.verify(tasks)
    # the enforced deadline: the busy-looping worker is killed after the pool's 2 s timeout (it would
    # never return); the slack covers starting its replacement on a loaded machine
    assert time.monotonic() - start < pool.timeout + 20
    assert verdicts[5].reason == "timeout" and verdicts[5].reward == 0.0
    assert all(v.reason == "correct" for i, v in enumerate(verdicts) if i != 5)
    # the pool replaced the killed worker and keeps working
    assert pool.verify([VerifyTask("test_hang", "ok", None)])[0].reason == "correct"


def test_exception_becomes_error_verdict(pool):
    verdicts = pool.verify([VerifyTask("test_raise", c, None) for c in ("ok", "raise", "ok")])
    assert [v.reason for v in verdicts] == ["correct", "error", "correct"]
    assert "boom" in verdicts[1].details["error"]


def test_crashing_worker_costs_one_sample(pool):
    verdicts = pool.verify([VerifyTask("test_crash", c, None) for c in ("ok", "crash", "ok", "ok")])
    assert [v.reason for v in verdicts] == ["correct", "crash", "correct", "correct"]
    assert "exit code 3" in verdicts[1].details["error"]


def test_bad_options_fail_fast_in_the_caller(pool):
    with pytest.raises(ValueError, match="valid options"):
        pool.verify([VerifyTask("math", "1", "1", options={"no_such": 1})])


def test_usable_from_a_thread(pool):
    out = []
    thread = threading.Thread(target=lambda: out.extend(pool.verify([_echo(1), _echo(2)])))
    thread.start()
    thread.join(30)
    assert [v.reward for v in out] == [1.0, 1.0]


def _in_daemon(queue):
    with VerifierPool(workers=1, timeout=5.0, preload=()) as p:
        queue.put([v.reason for v in p.verify([VerifyTask("exact", "a", "a"), VerifyTask("exact", "a", "b")])])


def test_usable_inside_a_daemon_process():
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_in_daemon, args=(queue,), daemon=True)
    proc.start()
    assert queue.get(timeout=60) == ["correct", "wrong_answer"]
    proc.join(10)


def test_imap_streams_with_bounded_lookahead():
    consumed = []

    def tasks():
        for i in range(10_000):
            consumed.append(i)
            yield VerifyTask("exact", "x", "x")

    with VerifierPool(workers=1, timeout=5.0, chunk_size=8, max_ahead=64, preload=()) as p:
        results = p.imap(tasks())
        first = next(results)
        assert isinstance(first.verdict, Verdict) and len(consumed) <= 65
        assert sum(1 for _ in results) == 9_999


def test_call_with_deadline_kills_runaway_work():
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        call_with_deadline("time:sleep", (60,), timeout=1.0)
    # the enforced deadline: the helper is killed at 1 s instead of sleeping 60; the slack covers
    # starting the helper process on a loaded machine
    assert time.monotonic() - start < 1.0 + 20
    assert call_with_deadline("os:getpid", (), timeout=10.0) != os.getpid()


def test_no_worker_outlives_the_pool():
    p = VerifierPool(workers=2, timeout=5.0, preload=())
    p.verify([VerifyTask("exact", "a", "a")] * 4)
    pids = [slot.proc.popen.pid for slot in p._slots]
    p.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
