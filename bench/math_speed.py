"""Time per call: Math-Verify 0.9.0 (default ``parse`` + ``verify``) vs our ``math`` verifier.

    python bench/math_speed.py               # MV's published cases (N=270), own case file, realistic set
    python bench/math_speed.py --rounds 3    # more samples per case (later rounds may hit caches)

Both graders see the same (gold/reference, pred/completion) pairs in the same process.
After a warm-up pass over a few cases of each set (imports, lazy tables), every case
is timed once per round for each grader, the two calls interleaved and their order
drawn at random per case (seeded), so neither grader systematically runs on a cache
the other filled. Math-Verify keeps its own default timeouts (SIGALRM; we call it from
the main thread). Ours is called directly: ``get_verifier("math").verify(...)`` with its
default options (a case's own ``options`` only change verdicts, not what is timed).
Prints mean / p50 / p99 / max in ms and the ratio of means, per case set, and a
``SUMMARY`` line. Targets from the issue: ours mean <= MV mean / 5, ours p99 < 50 ms.
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time

from math_common import load_own_cases, load_ours, load_realistic, mv_default, our_verdict, parse_opts, short


def _wrapped(reference: str) -> str:
    return reference if "$" in reference or "\\boxed" in reference else f"${reference}$"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def stats(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.fmean(values) * 1e3, "p50": percentile(values, 50) * 1e3,
            "p99": percentile(values, 99) * 1e3, "max": max(values) * 1e3}


def time_pairs(pairs: list[tuple[str, str]], ours, mv, rounds: int, seed: int,
               slow: list[tuple[float, int]] | None = None) -> tuple[list[float], list[float]]:
    """Per-call seconds for MV and ours over (reference, completion) pairs.

    ``slow`` (if given) receives (seconds, pair index) for every call of ours.
    """
    rng = random.Random(seed)
    t_mv: list[float] = []
    t_ours: list[float] = []

    def run_mv(ref: str, comp: str) -> None:
        start = time.perf_counter()
        mv(ref, comp)
        t_mv.append(time.perf_counter() - start)

    def run_ours(ref: str, comp: str) -> None:
        start = time.perf_counter()
        our_verdict(ours, comp, ref, guard_s=60.0)
        t_ours.append(time.perf_counter() - start)
        if slow is not None:
            slow.append((t_ours[-1], current[0]))

    current = [0]
    for _ in range(rounds):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for i in order:
            current[0] = i
            ref, comp = pairs[i]
            first, second = (run_mv, run_ours) if rng.random() < 0.5 else (run_ours, run_mv)
            first(ref, comp)
            second(ref, comp)
    return t_mv, t_ours


def report(name: str, t_mv: list[float], t_ours: list[float]) -> tuple[float, float]:
    s_mv, s_ours = stats(t_mv), stats(t_ours)
    ratio = s_mv["mean"] / s_ours["mean"] if s_ours["mean"] else float("inf")
    print(f"\n== {name}: {len(t_mv)} timed calls per grader")
    print(f"  {'grader':<22}{'mean ms':>10}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for label, s in (("Math-Verify default", s_mv), ("ours", s_ours)):
        print(f"  {label:<22}{s['mean']:>10.2f}{s['p50']:>10.2f}{s['p99']:>10.2f}{s['max']:>10.2f}")
    print(f"  MV mean / ours mean = {ratio:.1f}x   (target >= 5x: {'yes' if ratio >= 5 else 'NO'};"
          f" ours p99 < 50 ms: {'yes' if s_ours['p99'] < 50 else 'NO'})")
    return ratio, s_ours["p99"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slowest", type=int, default=5, help="list this many slowest calls of ours per set")
    parser.add_argument("--skip-mv-cases", action="store_true", help="no Math-Verify published cases (no download)")
    parser.add_argument("--skip-realistic", action="store_true", help="no realistic-completion set")
    parser.add_argument("--opt", action="append", default=[], help="option for get_verifier('math'), key=value")
    args = parser.parse_args()

    wrapper, why = load_ours(parse_opts(args.opt))
    if wrapper is None:
        print(f"our math verifier is unavailable: {why}")
        print("SUMMARY speed=unavailable")
        return 1
    ours, mv = wrapper.default, mv_default()

    sets: list[tuple[str, list[tuple[str, str]], list[str]]] = []
    if not args.skip_mv_cases:
        import mv_cases

        _, cases = mv_cases.load()
        sets.append((f"Math-Verify published cases (N={len(cases)})", [(c.gold, c.pred) for c in cases], [c.id for c in cases]))
    own = load_own_cases()
    sets.append((f"own case file ({len(own)} cases)", [(c.reference, c.completion) for c in own], [c.id for c in own]))
    if not args.skip_realistic:  # long completions; the reference in $...$ as Math-Verify expects it (both graders)
        real = load_realistic()
        sets.append((f"realistic completions ({len(real)} cases)", [(_wrapped(c.reference), c.completion) for c in real],
                     [c.id for c in real]))

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (wall-clock timings; other load inflates both graders)")
    # start our deadline helper process (about 1 s, once per process) outside the timing,
    # as Math-Verify's imports are; then a warm-up pass over a few cases of each set
    getattr(ours, "warm_up", lambda: None)()
    warm = [p for _, pairs, _ in sets for p in pairs[:15]]
    time_pairs(warm, ours, mv, 1, args.seed + 1)
    gc.collect()

    summary = []
    for index, (name, pairs, ids) in enumerate(sets):
        slow: list[tuple[float, int]] = []
        t_mv, t_ours = time_pairs(pairs, ours, mv, args.rounds, args.seed, slow)
        ratio, p99 = report(name, t_mv, t_ours)
        for seconds, i in sorted(slow, reverse=True)[: args.slowest]:
            print(f"    slow (ours) {seconds * 1e3:8.1f} ms  {ids[i]}  ref={short(pairs[i][0], 50)} completion={short(pairs[i][1], 60)}")
        key = "realistic" if name.startswith("realistic") else "own_cases" if name.startswith("own") else "mv_cases"
        summary.append(f"{key}: mv_mean={statistics.fmean(t_mv) * 1e3:.2f}ms ours_mean={statistics.fmean(t_ours) * 1e3:.2f}ms"
                       f" ratio={ratio:.1f}x ours_p99={p99:.2f}ms")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print("\nSUMMARY " + " | ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
