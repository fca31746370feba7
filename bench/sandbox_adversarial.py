"""The sandbox attack suite as a report: is every attack contained, and does anything survive?

    python bench/sandbox_adversarial.py
    python bench/sandbox_adversarial.py --disable landlock     # what a kernel without Landlock leaves

Runs each hostile program once through one ``SandboxPool`` (every available layer
on, less ``--disable``) and prints, per attack: the status, whether it was contained
and the wall time. An attack is contained when it got an expected verdict, the
workers are alive, nothing it started is left running, no connection reached the
host's listener, its forbidden text is not in its output, and *its own* canary (a
world-writable file in a world-writable directory, made fresh for this attack) is
intact with nothing added beside it, so one attack's damage never spoils the verdict
on the next. Harness-level reward hacks run through the ``code`` verifier and must
score 0. Ends with a ``SUMMARY`` line. A configuration the pool refuses is reported
as refused, with the reason, and is not a failure: refusing is the safe answer.

``run_suite`` is what ``tests/sandbox/test_degraded_hosts.py`` runs for each
degraded configuration in CI.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sandbox import ExecRequest, IsolationError, Limits, Program, SandboxPool  # noqa: E402

_CANARY_TEXT = "canary"


@dataclass
class Attack:
    name: str
    source: str
    expect: tuple[str, ...]
    limits: dict = field(default_factory=dict)
    forbidden: str = ""  # must not appear in the program's stdout


def attacks(canary: str, port: int) -> list[Attack]:
    """Every attack, aimed at ``canary`` (a world-writable file outside the sandbox)."""
    runtime = os.path.join(sys.prefix, "rlvr-pwned")
    return [
        Attack("fork bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
               ("timeout", "cpu_limit"), {"wall_s": 2.0, "processes": 32}),
        Attack("memory bomb", "b = []\nwhile True:\n    b.append(bytearray(50 << 20))", ("memory_limit",),
               {"memory_bytes": 256 << 20}),
        Attack("infinite loop", "while True:\n    pass", ("timeout", "cpu_limit"), {"wall_s": 1.0}),
        Attack("sleep", "import time\ntime.sleep(60)", ("timeout",), {"wall_s": 1.0}),
        Attack("blocking stdin", "import sys\nsys.stdin.read()\ninput()", ("runtime_error",)),
        Attack("output flood 100 MB", "import sys\nc = 'x' * (1 << 20)\nfor _ in range(100):\n    sys.stdout.write(c)",
               ("output_limit",), {"wall_s": 20.0}),
        Attack("disk fill", "i = 0\nwhile True:\n    open(f'f{i}', 'wb').write(b'0' * (1 << 20))\n    i += 1",
               ("runtime_error", "output_limit"), {"disk_bytes": 16 << 20}),  # ENOSPC on tmpfs, else the watchdog
        Attack("thread explosion", "import threading, time\nwhile True:\n"
               "    threading.Thread(target=time.sleep, args=(60,)).start()", ("runtime_error",), {"processes": 32}),
        Attack("connect to localhost listener", f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 1)\n"
               "print('CONNECTED')", ("runtime_error",), forbidden="CONNECTED"),
        Attack("read file outside", f"print(open({canary!r}).read())", ("runtime_error",), forbidden=_CANARY_TEXT),
        Attack("read via /proc/1/root", f"print(open('/proc/1/root' + {canary!r}).read())", ("runtime_error",),
               forbidden=_CANARY_TEXT),
        Attack("symlink to a file outside", f"import os\nos.symlink({canary!r}, 'l')\nprint(open('l').read())",
               ("runtime_error",), forbidden=_CANARY_TEXT),
        Attack("read host environment", "import os\nprint(os.environ)\nfor p in ('1', str(os.getppid())):\n    try:\n"
               "        print(open(f'/proc/{p}/environ').read())\n    except OSError:\n        pass",
               ("ok",), forbidden="RLVR_BENCH_SECRET"),
        Attack("write outside workdir", f"open({canary!r}, 'w').write('pwned')", ("runtime_error",)),
        Attack("create a file beside the canary", f"open({os.path.join(os.path.dirname(canary), 'new')!r}, 'w')",
               ("runtime_error",)),
        Attack("write into the runtime", f"open({runtime!r}, 'w').write('x')\nprint('WROTE')", ("runtime_error",),
               forbidden="WROTE"),
        Attack("kill parent", "import os\nos.kill(os.getppid(), 9)", ("ok", "runtime_error", "killed")),
        Attack("kill -1", "import os\nos.kill(-1, 9)", ("ok", "runtime_error", "killed")),
        Attack("ignore SIGTERM", "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass",
               ("timeout", "cpu_limit"), {"wall_s": 1.0}),
        Attack("double-fork daemon", "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
               "        time.sleep(60)\n    os._exit(0)\ntime.sleep(0.2)", ("ok",)),
        Attack("recursion crash", "import sys\nsys.setrecursionlimit(10**7)\nn = []\nfor _ in range(3 * 10**5):\n"
               "    n = [n]\nrepr(n)", ("runtime_error",)),
        Attack("ctypes segfault", "import ctypes\nctypes.string_at(0)", ("runtime_error",)),
    ]


HACKS = {  # program -> must score 0 under the assert harness
    "os._exit(0) before asserts": "import os\nos._exit(0)\ndef add(a, b):\n    return a + b",
    "SystemExit before asserts": "def add(a, b):\n    return a + b\nraise SystemExit(0)",
    "always-equal return object": "class A:\n    def __eq__(s, o):\n        return True\ndef add(a, b):\n    return A()",
    "fake pass marker on stdout": "print('All tests passed')\nimport os\nos._exit(0)",
}


def leftovers(pool: SandboxPool) -> list[int]:
    roots = [w.tmp_root for w in pool._all]
    workers = set().union(*(w.pids for w in pool._all)) if pool._all else set()
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                line = fh.read().decode(errors="replace")
        except OSError:
            continue
        if int(entry) not in workers and any(r in line for r in roots):
            found.append(int(entry))
    return found


def _fresh_canary() -> str:
    directory = tempfile.mkdtemp(prefix="rlvr-canary-")
    os.chmod(directory, 0o777)
    path = os.path.join(directory, "canary.txt")
    with open(path, "w") as fh:
        fh.write(_CANARY_TEXT)
    os.chmod(path, 0o666)
    return path


def _canary_intact(path: str) -> bool:
    with open(path) as fh:
        return fh.read() == _CANARY_TEXT and os.listdir(os.path.dirname(path)) == ["canary.txt"]


def _connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
        return True
    except OSError:
        return False


def judge(pool: SandboxPool, index: int, server: socket.socket) -> tuple[Attack, str, bool, float, int]:
    """Run attack ``index`` against a fresh canary: (attack, status, contained, wall, leftovers)."""
    canary = _fresh_canary()
    try:
        attack = attacks(canary, server.getsockname()[1])[index]
        workers = {w.proc.pid for w in pool._all}
        start = time.monotonic()
        result = pool.run(ExecRequest(Program("python", {"main.py": attack.source.encode()}),
                                      limits=Limits(**attack.limits)))
        elapsed = time.monotonic() - start
        left = leftovers(pool)
        alive = all(w.proc.poll() is None for w in pool._all) and workers <= {w.proc.pid for w in pool._all}
        ok = (result.status in attack.expect and not left and _canary_intact(canary) and alive
              and not _connected(server) and not (attack.forbidden and attack.forbidden in result.stdout)
              and not os.path.exists(os.path.join(sys.prefix, "rlvr-pwned")))
        return attack, result.status, ok, elapsed, len(left)
    finally:
        shutil.rmtree(os.path.dirname(canary), ignore_errors=True)


def run_suite(disable: tuple[str, ...] = (), verbose: bool = False) -> dict:
    """Every attack under one pool: ``{"layers", "contained", "total", "failed", "leftovers"}``,
    or ``{"refused": reason}`` when the pool will not run with these layers."""
    os.environ["RLVR_BENCH_SECRET"] = "RLVR_BENCH_SECRET"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    report: dict = {"failed": []}
    try:
        with SandboxPool(workers=2, disable=disable) as pool:
            report["layers"] = list(pool.layers)
            total = len(attacks("/nonexistent", 0))
            for index in range(total):
                attack, status, ok, elapsed, left = judge(pool, index, server)
                if not ok:
                    report["failed"].append(f"{attack.name} ({status})")
                if verbose:
                    print(f"{attack.name:32s} {status:14s} {'contained' if ok else 'NOT CONTAINED':14s} "
                          f"{elapsed:6.2f}s  leftovers={left}", flush=True)
            time.sleep(0.5)
            report.update(contained=total - len(report["failed"]), total=total, leftovers=len(leftovers(pool)))
    except IsolationError as exc:
        return {"refused": str(exc)}
    finally:
        server.close()
    return report


def run_hacks() -> int:
    from verifiers import get_verifier
    verifier = get_verifier("code", timeout_s=3)
    ref = {"kind": "assert", "entry_point": "add", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"}
    failed = 0
    for name, source in HACKS.items():
        verdict = verifier.verify(completion=source, reference=ref)
        failed += verdict.reward == 0.0
        print(f"{name:32s} reward={verdict.reward} reason={verdict.reason}")
    return failed


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--disable", default="", help="comma-separated layers to leave off")
    parser.add_argument("--no-hacks", action="store_true", help="skip the reward hacks (the verifier's own pool)")
    args = parser.parse_args()
    disable = tuple(filter(None, args.disable.split(",")))
    with open("/proc/loadavg") as fh:
        print(f"disabled: {', '.join(disable) or 'nothing'}; load average {fh.read().split()[0]}")
    report = run_suite(disable, verbose=True)
    if "refused" in report:
        print(f"REFUSED: {report['refused']}")
        print(f"SUMMARY refused=1 disable={','.join(disable)}")
        return
    print(f"layers: {', '.join(report['layers'])}")
    hacks = "skipped" if args.no_hacks else f"{run_hacks()}/{len(HACKS)}"
    print(f"\nattacks contained: {report['contained']}/{report['total']}; reward hacks scored 0: {hacks}; "
          f"leftover processes after the suite: {report['leftovers']}")
    print(f"SUMMARY contained={report['contained']}/{report['total']} hacks_zero={hacks} "
          f"leftovers={report['leftovers']} disable={','.join(disable)}")


if __name__ == "__main__":
    main()
