"""The sandbox attack suite as a report: is every attack contained, and does anything survive?

    python bench/sandbox_adversarial.py
    python bench/sandbox_adversarial.py --disable pidns,netns   # what a weaker kernel leaves

Runs each hostile program once through a fresh ``SandboxPool`` (every available
layer on) and prints, per attack: the status, whether it was contained (the expected
verdict, the workers alive, the host canaries intact, nothing left running), and the
wall time. Harness-level reward hacks run through the ``code`` verifier and must
score 0. Ends with the number of leftover processes and a ``SUMMARY`` line.
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

from sandbox import ExecRequest, Limits, Program, SandboxPool  # noqa: E402


@dataclass
class Attack:
    name: str
    source: str
    expect: tuple[str, ...]
    limits: dict = field(default_factory=dict)
    forbidden: str = ""  # must not appear in the program's stdout


def attacks(canary_file: str, port: int) -> list[Attack]:
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
        Attack("read file outside", f"print(open({canary_file!r}).read())", ("runtime_error",), forbidden="canary"),
        Attack("read host environment", "import os\nprint(os.environ)\nfor p in ('1', str(os.getppid())):\n    try:\n"
               "        print(open(f'/proc/{p}/environ').read())\n    except OSError:\n        pass",
               ("ok",), forbidden="RLVR_BENCH_SECRET"),
        Attack("write outside workdir", f"open({canary_file!r}, 'w').write('pwned')", ("runtime_error",)),
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


def run_attacks(pool: SandboxPool, canary_file: str, server: socket.socket) -> int:
    contained_count, workers = 0, {w.proc.pid for w in pool._all}
    for attack in attacks(canary_file, server.getsockname()[1]):
        start = time.monotonic()
        result = pool.run(ExecRequest(Program("python", {"main.py": attack.source.encode()}),
                                      limits=Limits(**attack.limits)))
        elapsed = time.monotonic() - start
        left = leftovers(pool)
        with open(canary_file) as fh:
            canary_ok = fh.read() == "canary"
        try:
            server.accept()
            connected = True
        except OSError:
            connected = False
        alive = all(w.proc.poll() is None for w in pool._all) and workers <= {w.proc.pid for w in pool._all}
        ok = (result.status in attack.expect and not left and canary_ok and alive and not connected
              and not (attack.forbidden and attack.forbidden in result.stdout))
        contained_count += ok
        print(f"{attack.name:32s} {result.status:14s} {'contained' if ok else 'NOT CONTAINED':14s} "
              f"{elapsed:6.2f}s  leftovers={len(left)}")
    return contained_count


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
    disable = tuple(filter(None, parser.parse_args().disable.split(",")))
    os.environ["RLVR_BENCH_SECRET"] = "RLVR_BENCH_SECRET"
    canary_dir = tempfile.mkdtemp(prefix="rlvr-canary-")
    os.chmod(canary_dir, 0o777)
    canary_file = os.path.join(canary_dir, "canary.txt")
    with open(canary_file, "w") as fh:
        fh.write("canary")
    os.chmod(canary_file, 0o666)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    try:
        with SandboxPool(workers=2, disable=disable) as pool:
            print(f"layers: {', '.join(pool.layers)}\n")
            contained = run_attacks(pool, canary_file, server)
            total = len(attacks(canary_file, 0))
            time.sleep(0.5)
            left = leftovers(pool)
        print()
        hacks_failed = run_hacks()
    finally:
        server.close()
        shutil.rmtree(canary_dir, ignore_errors=True)
    print(f"\nattacks contained: {contained}/{total}; reward hacks scored 0: {hacks_failed}/{len(HACKS)}; "
          f"leftover processes after the suite: {len(left)}")
    print(f"SUMMARY contained={contained}/{total} hacks_zero={hacks_failed}/{len(HACKS)} leftovers={len(left)}")


if __name__ == "__main__":
    main()
