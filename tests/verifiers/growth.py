"""Linear-time guarantees tested as a growth ratio, not as a wall-clock bound.

``growth_ratio(fn, make, n)`` is the cost of ``fn(make(8 * n))`` over the cost of
``fn(make(n))``: about 8 for a linear scan, about 64 for a quadratic one, whatever the
machine's speed or load. Costs are the calling thread's CPU time (other processes on a busy
machine do not count) with the garbage collector paused, each the least of a few
interleaved repeats, over enough calls that the smaller input costs at least ``floor_s``.
Speed itself is measured in ``bench/``.
"""
from __future__ import annotations

import gc
import time
from typing import Any, Callable

FACTOR = 8
LINEAR_MAX = 30.0  # the ratio a linear scan stays far below: linear gives ~8 (n log n ~10), quadratic ~64


def _cost(fn: Callable[[Any], Any], arg: Any, number: int) -> float:
    enabled = gc.isenabled()
    gc.disable()  # as timeit does: a collection of the whole heap costs what the heap holds, not what fn does
    try:
        start = time.thread_time()
        for _ in range(number):
            fn(arg)
        return time.thread_time() - start
    finally:
        if enabled:
            gc.enable()


def growth_ratio(fn: Callable[[Any], Any], make: Callable[[int], Any], n: int, *, floor_s: float = 0.002,
                 repeats: int = 3) -> float:
    """Cost of ``fn(make(FACTOR * n))`` / cost of ``fn(make(n))``."""
    small, large = make(n), make(FACTOR * n)
    fn(small)  # warm-up: lazy imports, compiled patterns
    number = 1
    while (cost := _cost(fn, small, number)) < floor_s:
        number *= 2 if cost <= 0 else max(2, min(100, int(1.5 * floor_s / cost) + 1))
    best_small, best_large = cost, float("inf")
    for _ in range(repeats):
        best_large = min(best_large, _cost(fn, large, number))
        best_small = min(best_small, _cost(fn, small, number))
    return best_large / best_small


def assert_linear(fn: Callable[[Any], Any], make: Callable[[int], Any], n: int, **kw: Any) -> float:
    """Fail when the cost grows far faster than the input (a quadratic scan); returns the ratio."""
    ratio = growth_ratio(fn, make, n, **kw)
    print(f"growth ratio {ratio:.1f} for {FACTOR}x the input")  # shown with pytest -s
    assert ratio < LINEAR_MAX, (f"{FACTOR}x the input cost {ratio:.1f}x the time "
                                f"(linear ~{FACTOR}, quadratic ~{FACTOR ** 2})")
    return ratio
