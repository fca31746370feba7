"""Sandbox throughput: executions per second of a trivial Python program.

    python bench/sandbox_throughput.py               # 2000 runs, workers = CPU count
    python bench/sandbox_throughput.py --runs 500 --workers 2

Prints which isolation layers were active, then for each configuration (every
available layer; only the layers the pool will not run without; a fresh ``python -c``
per run via subprocess for reference): executions/s through ``SandboxPool.run_batch``, the latency of a single
run on an idle pool, and the CPU time spent per run (workers and their children, read
from /proc), which says what the machine could sustain were it not shared:
``capacity = cores / cpu_per_run``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sandbox import ExecRequest, Program, SandboxPool, capabilities  # noqa: E402

TRIVIAL = Program("python", {"main.py": b"print(1)"})
# Layers the baseline leaves off: every optional one except what the pool insists on
# (see isolation.refusal): a private uid as root, a user plus PID namespace otherwise;
# a filesystem boundary (the private root: Landlock is the one left off) and a network
# boundary (seccomp).
_REQUIRED = ("drop_uid", "fsroot", "seccomp") if os.geteuid() == 0 else ("userns", "pidns", "fsroot", "seccomp")
OPTIONAL = tuple(n for n in ("drop_uid", "userns", "netns", "pidns", "tmpfs", "fsroot", "cgroup", "landlock",
                             "seccomp") if n not in _REQUIRED)


def _cpu_of(pid: int) -> float:
    """utime + stime + reaped children's, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def measure_pool(runs: int, workers: int, disable: tuple[str, ...]) -> dict[str, float]:
    with SandboxPool(workers=workers, disable=disable) as pool:
        pool.run_batch([ExecRequest(TRIVIAL)] * (workers * 10))  # start and warm every worker
        latencies = []
        for _ in range(50):
            start = time.perf_counter()
            assert pool.run(ExecRequest(TRIVIAL)).ok
            latencies.append(time.perf_counter() - start)
        pids = [w.proc.pid for w in pool._all]
        cpu0, own0 = sum(_cpu_of(p) for p in pids), time.process_time()
        start = time.perf_counter()
        results = pool.run_batch([ExecRequest(TRIVIAL)] * runs)
        elapsed = time.perf_counter() - start
        cpu = sum(_cpu_of(p) for p in pids) - cpu0 + time.process_time() - own0
        bad = [r.status for r in results if not r.ok]
        assert not bad, f"{len(bad)} runs failed: {bad[:3]}"
        return {"per_s": runs / elapsed, "latency_ms": statistics.median(latencies) * 1e3,
                "program_wall_ms": statistics.median(r.wall_s for r in results) * 1e3,
                "cpu_ms": cpu / runs * 1e3, "layers": ",".join(pool.layers)}


def measure_subprocess(runs: int) -> dict[str, float]:
    start, cpu0 = time.perf_counter(), os.times()
    for _ in range(runs):
        subprocess.run([sys.executable, "-I", "-c", "print(1)"], capture_output=True, check=True)
    elapsed, cpu1 = time.perf_counter() - start, os.times()
    cpu = (cpu1.children_user + cpu1.children_system) - (cpu0.children_user + cpu0.children_system)
    return {"per_s": runs / elapsed, "latency_ms": elapsed / runs * 1e3, "program_wall_ms": float("nan"),
            "cpu_ms": cpu / runs * 1e3, "layers": "none (no sandbox)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    report = capabilities()
    print("isolation layers on this machine:")
    for name, info in report.items():
        print(f"  {'ON ' if info['active'] else 'off'} {name:10s} {info['what'] if info['active'] else info['reason']}")
    with open("/proc/loadavg") as fh:
        print(f"cores: {os.cpu_count()}  load average at start: {fh.read().split()[0]}")
    rows = [("every available layer", measure_pool(args.runs, args.workers, ())),
            ("only the required layers", measure_pool(args.runs, args.workers, OPTIONAL)),
            ("subprocess python -c (1 at a time)", measure_subprocess(max(50, args.runs // 20)))]
    cores = os.cpu_count() or 1
    print(f"\n{'configuration':36s} {'exec/s':>8s} {'latency':>9s} {'prog wall':>10s} {'CPU/run':>8s} {'capacity':>9s}")
    for name, row in rows:
        print(f"{name:36s} {row['per_s']:8.0f} {row['latency_ms']:7.2f}ms {row['program_wall_ms']:8.2f}ms "
              f"{row['cpu_ms']:6.2f}ms {cores / row['cpu_ms'] * 1e3:7.0f}/s")
    full, bare = rows[0][1], rows[1][1]
    print(f"\nlayers active in the first row: {full['layers']}")
    print(f"isolation overhead per run: {full['cpu_ms'] - bare['cpu_ms']:.2f} ms CPU, "
          f"{full['latency_ms'] - bare['latency_ms']:.2f} ms latency")
    print(f"SUMMARY exec/s={full['per_s']:.0f} capacity/s={cores / full['cpu_ms'] * 1e3:.0f} "
          f"latency_ms={full['latency_ms']:.2f} target=300")


if __name__ == "__main__":
    main()
