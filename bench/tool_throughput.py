"""Tool-call throughput: trivial cells through the rollout's tool path vs the sandbox pool alone, in one run.

    python bench/tool_throughput.py                       # 3 rounds of 640 calls each way, workers = CPU count
    python bench/tool_throughput.py --runs 1280 --rounds 5 --workers 2

The tool path is what `rlvr.rollout.multiturn` calls between model turns: ``ToolEnvironment.respond`` on
batches of ``--batch`` turns, each a model turn ending in a ```python cell ``print(1)``: find the
call, build the cell's program (the stateful driver), run the batch in the ``python`` tool's
`sandbox.SandboxPool`, truncate the outputs. The baseline is ``SandboxPool.run_batch`` of the
program ``print(1)`` itself (``measure_pool`` of bench/sandbox_throughput.py), with the same number
of workers and every available layer. The two are measured back to back in alternating order, round
by round, so load from elsewhere on the machine hits both alike; the medians (and the median of
the per-round ratios) are compared (target: the tool path at least 80% of the
pool's executions per second). Also: the rate for the 3rd cell of an episode (the stateful tool
replays the episode's 2 earlier cells first, so later cells cost more), and stateless calls.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.sandbox_throughput import _cpu_of, measure_pool  # noqa: E402
from rlvr.tools.base import ToolCall  # noqa: E402
from rlvr.tools.calls import render_call  # noqa: E402
from rlvr.tools.env import ToolEnvironment, Turn  # noqa: E402
from sandbox import SandboxPool  # noqa: E402

TURN = "I will check.\n" + render_call("fenced", "python", {"code": "print(1)"})
EARLIER = ("x = 1", "y = x + 1")  # the 3rd-cell case: two earlier cells of the episode, replayed


def measure_tools(runs: int, workers: int, batch: int, stateful: bool = True, cell: int = 1) -> dict[str, float]:
    """Executions/s of ``print(1)`` cells through ToolEnvironment.respond, in batches of ``batch`` turns;
    ``cell``: which cell of its episode each call is (its earlier ones are replayed when stateful)."""
    with SandboxPool(workers=workers) as pool:
        env = ToolEnvironment(["python"], call_format="fenced", tool_options={"python": {"pool": pool,
                                                                                         "stateful": stateful}})

        def fresh_states(n: int) -> list:
            states = [env.reset(None) for _ in range(n)]
            for state in states:  # the episode's earlier cells, as if they had run ok
                for code in EARLIER[:cell - 1]:
                    state.record(ToolCall("python", {"code": code}), 0.01)
            return states

        turns = [Turn(TURN, False, cell - 1)] * batch
        env.respond(fresh_states(workers * 10), [turns[0]] * (workers * 10))  # start and warm every worker
        pids = [w.proc.pid for w in pool._all]
        cpu0, own0 = sum(_cpu_of(p) for p in pids), time.process_time()
        done, elapsed = 0, 0.0
        while done < runs:
            states = fresh_states(batch)
            start = time.perf_counter()
            replies = env.respond(states, turns)
            elapsed += time.perf_counter() - start
            bad = [r.text for r in replies if r.text != "1\n"]
            assert not bad, f"{len(bad)} calls failed: {bad[:2]}"
            done += batch
        cpu = sum(_cpu_of(p) for p in pids) - cpu0 + time.process_time() - own0
        env.close()
        return {"per_s": done / elapsed, "cpu_ms": cpu / done * 1e3, "layers": ",".join(pool.layers)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=640, help="calls per round, each way")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64, help="turns per ToolEnvironment.respond call")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with open("/proc/loadavg") as fh:
        print(f"cores: {os.cpu_count()}  workers: {args.workers}  load average at start: {fh.read().split()[0]}")
    rows: dict[str, list[dict]] = {"pool.run_batch print(1)": [], "tool path, 1st cell": [],
                                   "tool path, 3rd cell (2 replayed)": [], "tool path, stateless": []}
    layers = ""
    for r in range(args.rounds):  # the pair compared is measured back to back, in alternating order
        if r % 2:
            first = measure_tools(args.runs, args.workers, args.batch)
            pool = measure_pool(args.runs, args.workers, ())
        else:
            pool = measure_pool(args.runs, args.workers, ())
            first = measure_tools(args.runs, args.workers, args.batch)
        third = measure_tools(args.runs // 2, args.workers, args.batch, cell=3)
        stateless = measure_tools(args.runs // 2, args.workers, args.batch, stateful=False)
        layers = pool["layers"]
        for name, row in zip(rows, (pool, first, third, stateless)):
            rows[name].append(row)
        print(f"round {r + 1}: pool {pool['per_s']:.0f}/s  tool 1st cell {first['per_s']:.0f}/s  "
              f"3rd cell {third['per_s']:.0f}/s  stateless {stateless['per_s']:.0f}/s", flush=True)
    rate = {name: statistics.median(row["per_s"] for row in values) for name, values in rows.items()}
    cpu = {name: statistics.median(row["cpu_ms"] for row in values) for name, values in rows.items()}
    base = rate["pool.run_batch print(1)"]
    print(f"\nlayers: {layers}")
    print(f"{'path':34s} {'exec/s':>8s} {'vs pool':>8s} {'CPU/call':>9s} {'capacity':>9s}   "
          f"(medians of {args.rounds} rounds)")
    for name in rows:
        print(f"{name:34s} {rate[name]:8.0f} {rate[name] / base:8.0%} {cpu[name]:7.2f}ms "
              f"{(os.cpu_count() or 1) / cpu[name] * 1e3:7.0f}/s")
    with open("/proc/loadavg") as fh:
        load = fh.read().split()[0]
    tool, third = rate["tool path, 1st cell"], rate["tool path, 3rd cell (2 replayed)"]
    pairs = [t["per_s"] / p["per_s"] for t, p in zip(rows["tool path, 1st cell"], rows["pool.run_batch print(1)"])]
    print(f"tool path / pool, round by round: {' '.join(f'{x:.2f}' for x in pairs)}; "
          f"median {statistics.median(pairs):.2f}")
    print(f"SUMMARY pool_per_s={base:.0f} tool_per_s={tool:.0f} ratio={tool / base:.2f} "
          f"paired_ratio={statistics.median(pairs):.2f} third_cell_per_s={third:.0f} "
          f"cpu_ratio={cpu['pool.run_batch print(1)'] / cpu['tool path, 1st cell']:.2f} target_ratio=0.80 "
          f"load_at_end={load}")


if __name__ == "__main__":
    main()
