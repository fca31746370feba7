"""Hostile cells through the rollout's tool path: is every one contained, and does the batch go on?

    python bench/tool_safety.py                  # the whole set, once as ```python cells, once as <tool_call> JSON
    python bench/tool_safety.py --workers 4 --timeout 2

Every cell is a model turn ending in a tool call, sent with benign cells in ONE batch to
``ToolEnvironment.respond`` (what `rlvr.rollout.multiturn` calls between model turns): the call is
parsed, run by the ``python`` tool in a ``sandbox.SandboxPool`` with every layer the host offers (the
pool refuses to start without the ones it requires), and the output truncated as the rollout would
insert it. Prints, per cell: the tool status, the last line of the text the rollout inserts (the
error; its first 80 characters), and whether it was contained: an error or timeout status,
nothing forbidden in its output, its canaries (a world-writable file under /tmp, a file in $HOME)
untouched, no connection reaching a listener on localhost, a sentinel process of ours still alive
after ``os.kill(-1, 9)``, the pool's workers alive, and the benign cells of the same batch
answered correctly. Then it counts processes
left behind: forked from the pool's workers (their command line names the worker's directory) or
owned by one of the pool's sandbox uids. Ends with a ``SUMMARY`` line.

Attack code only ever runs inside the sandbox: this script runs nothing of the cells itself.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.sandbox_adversarial import leftovers  # noqa: E402
from rlvr.tools.calls import render_call  # noqa: E402
from rlvr.tools.env import ToolEnvironment, Turn  # noqa: E402
from sandbox import SandboxPool  # noqa: E402
from sandbox.isolation import SANDBOX_UID_BASE  # noqa: E402

_SECRET = "root:x:0:0"  # the first line of the host's /etc/passwd
_CANARY = "canary-text-7f3a"  # what the canary file holds


@dataclass(frozen=True)
class Cell:
    name: str
    code: str
    expect: tuple[str, ...] = ("error", "timeout")  # tool statuses that count as contained
    forbidden: str = ""  # must not be in what the rollout inserts
    output: str = ""  # benign cells: the exact output expected


def hostile_cells(canary: str, home_canary: str, port: int) -> list[Cell]:
    """The attack set, aimed at ``canary`` (a world-writable file under /tmp), ``home_canary`` (a path in $HOME
    that must not come to exist) and a listener on localhost ``port``."""
    return [
        Cell("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"),
        Cell("kill -1", "import os\nos.kill(-1, 9)\nprint('still here')", ("ok", "error", "timeout")),
        Cell("endless loop", "while True:\n    pass"),
        Cell("1 GB string printed", "print('x' * 10**9)"),
        Cell("print forever", "while True:\n    print('x' * 1000)"),
        Cell("1 GB written in chunks", "import sys\nfor _ in range(1000):\n    sys.stdout.write('x' * 10**6)"),
        Cell("memory hog", "b = []\nwhile True:\n    b.append(bytearray(50 << 20))"),
        Cell("connect 1.1.1.1", "import socket\nsocket.create_connection(('1.1.1.1', 80), 2)\nprint('CONNECTED')",
             forbidden="CONNECTED"),
        Cell("connect localhost", f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\n"
             "print('CONNECTED')", forbidden="CONNECTED"),
        Cell("read /etc/passwd", "print(open('/etc/passwd').read())", forbidden=_SECRET),
        Cell("read the canary", f"print(open({canary!r}).read())", forbidden=_CANARY),
        Cell("write the canary", f"open({canary!r}, 'w').write('pwned')"),
        Cell("write in /tmp", "open('/tmp/rlvr-tool-pwned', 'w').write('pwned')"),
        Cell("write in $HOME", f"open({home_canary!r}, 'w').write('pwned')"),
        Cell("double-fork daemon", "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
             "        time.sleep(60)\n    os._exit(0)\nprint('parent done')", ("ok", "error", "timeout")),
    ]


BENIGN = [Cell("benign: arithmetic", "print(123 * 456)", ("ok",), output="56088\n"),
          Cell("benign: loop", "print(sum(i * i for i in range(100)))", ("ok",), output="328350\n"),
          Cell("benign: stdlib", "import math, json\nprint(json.dumps([math.factorial(10)]))", ("ok",),
               output="[3628800]\n"),
          Cell("benign: files in its dir", "open('a.txt', 'w').write('hi')\nprint(open('a.txt').read())", ("ok",),
               output="hi\n")]


def sandbox_uid_processes(pool: SandboxPool) -> list[int]:
    """Processes owned by this pool's sandbox uids (each worker runs its programs as SANDBOX_UID_BASE + its pid;
    other pools on the machine, other runs' included, have uids of their own)."""
    uids = {SANDBOX_UID_BASE + pid for w in pool._all for pid in w.pids}
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/status") as fh:
                uid = int(next(line for line in fh if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
        if uid in uids:
            found.append(int(entry))
    return found


def _left_behind(pool: SandboxPool, grace_s: float = 3.0) -> list[int]:
    """The pool's processes still alive ``grace_s`` after the batches: a killed process tree is torn down by the
    kernel after its run's result comes back, which under load takes a moment."""
    deadline = time.monotonic() + grace_s
    while True:
        left = sorted(set(leftovers(pool)) | set(sandbox_uid_processes(pool)))
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def run_set(pool: SandboxPool, cells: list[Cell], fmt: str, timeout_s: float) -> tuple[list, float]:
    """One batch through the rollout's tool path: [(cell, reply)], wall seconds."""
    env = ToolEnvironment(["python"], call_format=fmt, timeout_s=timeout_s, max_output_chars=1024,
                          tool_options={"python": {"pool": pool}})
    states = [env.reset(None) for _ in cells]
    turns = [Turn("Let me run it.\n" + render_call(fmt, "python", {"code": c.code}), False, 0) for c in cells]
    start = time.perf_counter()
    replies = env.respond(states, turns)
    elapsed = time.perf_counter() - start
    env.close()
    return list(zip(cells, replies)), elapsed


def _accepted(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except OSError:
        return False


def run(workers: int = 4, timeout_s: float = 2.0, formats: tuple[str, ...] = ("fenced", "json"),
        cells: list[str] | None = None, verbose: bool = True) -> dict:
    """The set through one pool, once per call format. ``cells``: names to keep (None: all).
    Returns {"rows": [(fmt, name, status, text, contained)], "contained", "total", "leftovers", "seconds"}."""
    directory = tempfile.mkdtemp(prefix="rlvr-tool-canary-")
    os.chmod(directory, 0o777)
    canary = os.path.join(directory, "canary.txt")
    home_canary = os.path.join(os.path.expanduser("~"), f"rlvr-tool-pwned-{os.getpid()}")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    sentinel = subprocess.Popen(["sleep", "600"])  # kill -1 must not reach it
    rows, seconds = [], 0.0
    try:
        with open(canary, "w") as fh:
            fh.write(_CANARY)
        os.chmod(canary, 0o666)
        hostile = [c for c in hostile_cells(canary, home_canary, server.getsockname()[1])
                   if cells is None or c.name in cells]
        with SandboxPool(workers=workers) as pool:
            for fmt in formats:
                workers_before = {w.proc.pid for w in pool._all}
                results, elapsed = run_set(pool, hostile + BENIGN, fmt, timeout_s)
                seconds += elapsed
                alive = (all(w.proc.poll() is None for w in pool._all) and sentinel.poll() is None
                         and workers_before <= {w.proc.pid for w in pool._all})
                intact = (open(canary).read() == _CANARY and os.listdir(directory) == ["canary.txt"]
                          and not os.path.exists(home_canary) and not _accepted(server))
                for cell, reply in results:
                    status = reply.records[0]["status"] if reply.records else "none"
                    text = reply.text or ""
                    ok = status in cell.expect and not (cell.forbidden and cell.forbidden in text)
                    ok = ok and (text == cell.output if cell.output else True) and alive and intact
                    rows.append((fmt, cell.name, status, text, ok))
                    if verbose:
                        shown = (text.strip().splitlines() or [""])[-1][:80]
                        print(f"{fmt:6s} {cell.name:26s} {status:8s} {'yes' if ok else 'NO ':3s}  {shown}", flush=True)
            left = _left_behind(pool)
    finally:
        sentinel.kill()
        sentinel.wait()
        server.close()
        shutil.rmtree(directory, ignore_errors=True)
        if os.path.exists(home_canary):
            os.remove(home_canary)
    return {"rows": rows, "contained": sum(r[4] for r in rows), "total": len(rows), "leftovers": len(left),
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=2.0, help="rollout.tools.timeout_s: wall seconds per call")
    args = parser.parse_args()
    with open("/proc/loadavg") as fh:
        print(f"cores: {os.cpu_count()}  load average at start: {fh.read().split()[0]}  workers: {args.workers}")
    print(f"{'format':6s} {'cell':26s} {'status':8s} {'ok':3s}  the last line the rollout inserts (80 characters)")
    report = run(args.workers, args.timeout)
    hostile = [r for r in report["rows"] if not r[1].startswith("benign")]
    benign = [r for r in report["rows"] if r[1].startswith("benign")]
    print(f"\nhostile cells contained: {sum(r[4] for r in hostile)}/{len(hostile)}; benign cells correct: "
          f"{sum(r[4] for r in benign)}/{len(benign)}; leftover processes: {report['leftovers']}; "
          f"batches took {report['seconds']:.1f} s")
    print(f"SUMMARY contained={sum(r[4] for r in hostile)}/{len(hostile)} benign={sum(r[4] for r in benign)}/"
          f"{len(benign)} leftovers={report['leftovers']} completed=1")


if __name__ == "__main__":
    main()
