"""Throughput and memory of ``rlvr-verify math`` on typical numeric answers.

    python bench/verify_throughput.py            # 100,000 rows
    python bench/verify_throughput.py --big      # also 1,000,000 rows (memory must stay flat)
    python bench/verify_throughput.py --rows 20000 --workers 2

Generates model-like rows into bench/.cache/ (seeded, so every run sees the same data):
completions that end in ``\\boxed{...}``, ``#### n``, "The final answer is n." or
"Answer: n"; references such as ``42``, ``3/4``, ``0.5``, ``\\frac{3}{4}``, ``-7``, ``2.25``;
about 70% of the rows are correct (the right value, sometimes written in an equivalent
form). Each row also carries ``expected`` (0/1), so the run doubles as an accuracy check.

Runs ``rlvr-verify math --input IN --output OUT --workers W --timeout 5`` as a
subprocess and reports rows/s (rows / wall time of the whole command, start-up
included, and the CLI's own figure), the peak RSS of the process tree (sampled from
/proc every 0.2 s: the CLI plus its workers) and of its largest single process
(its VmHWM, from the same samples). Prints a ``SUMMARY`` line.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

from math_common import CACHE, REPO

PREAMBLES = [
    "Let's think step by step.",
    "First, we set up the equation from the problem statement.",
    "We start by simplifying the expression.",
    "Let x be the unknown quantity.",
    "Working through the arithmetic carefully:",
]


def _forms(value: Fraction, rng: random.Random) -> tuple[str, str]:
    """(reference text, an equivalent answer text) for a value."""
    if value.denominator == 1:
        n = value.numerator
        answer = rng.choice([str(n), str(n), f"{n}.0", f"{n:,}" if abs(n) >= 1000 else str(n)])
        return str(n), answer
    as_decimal = value.denominator in (2, 4, 5, 8, 10, 20, 25)
    slash = f"{value.numerator}/{value.denominator}"
    frac = rf"\frac{{{value.numerator}}}{{{value.denominator}}}" if value > 0 else rf"-\frac{{{-value.numerator}}}{{{value.denominator}}}"
    decimal = f"{float(value):g}"
    reference = rng.choice([slash, frac] + ([decimal] if as_decimal else []))
    answer = rng.choice([slash, frac] + ([decimal, decimal] if as_decimal else []))
    return reference, answer


def _value(rng: random.Random) -> Fraction:
    kind = rng.random()
    if kind < 0.55:
        return Fraction(rng.randint(-20, 2000))
    if kind < 0.8:
        return Fraction(rng.randint(1, 40), rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 10, 12]))
    return Fraction(rng.randint(1, 999), rng.choice([2, 4, 5, 8, 10, 20, 25, 100]))


def _wrong(value: Fraction, rng: random.Random) -> Fraction:
    while True:
        other = value + rng.choice([1, -1, 2, 10, Fraction(1, 2), Fraction(1, 4)]) if rng.random() < 0.7 else _value(rng)
        if other != value:
            return other


def make_row(rng: random.Random, index: int) -> dict:
    value = _value(rng)
    reference, answer = _forms(value, rng)
    correct = rng.random() < 0.7
    if not correct:
        _, answer = _forms(_wrong(value, rng), rng)
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    body = f"{rng.choice(PREAMBLES)} We have {a} + {b} = {a + b}, and multiplying by {rng.randint(2, 9)} gives the next step."
    style = rng.random()
    if style < 0.6:
        completion = f"{body} Therefore the answer is $\\boxed{{{answer}}}$."
    elif style < 0.8:
        completion = f"{body}\n#### {answer}"
    elif style < 0.9:
        completion = f"{body} The final answer is ${answer}$."
    else:
        completion = f"{body}\nAnswer: {answer}"
    return {"id": index, "completion": completion, "reference": reference, "expected": int(correct)}


def generate(rows: int, seed: int = 0) -> Path:
    path = CACHE / f"throughput_{rows}.jsonl"
    if path.exists() and path.stat().st_size > 0:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        for i in range(rows):
            handle.write(json.dumps(make_row(rng, i)) + "\n")
    tmp.replace(path)
    return path


def _tree_rss_kib(root: int) -> tuple[int, int]:
    """(sum of VmRSS, largest VmHWM) over ``root`` and its descendants, in KiB."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    hwm: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as handle:
                text = handle.read()
        except OSError:
            continue
        ppid = re.search(r"^PPid:\s+(\d+)", text, re.M)
        vm = re.search(r"^VmRSS:\s+(\d+)", text, re.M)
        high = re.search(r"^VmHWM:\s+(\d+)", text, re.M)
        hwm[int(entry)] = int(high.group(1)) if high else 0
        parents[int(entry)] = int(ppid.group(1)) if ppid else 0
        rss[int(entry)] = int(vm.group(1)) if vm else 0
    total, largest, stack = 0, 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        largest = max(largest, hwm.get(pid, 0))
        stack.extend(child for child, parent in parents.items() if parent == pid)
    return total, largest


def cli_command() -> list[str]:
    local = Path(sys.executable).parent / "rlvr-verify"
    exe = shutil.which("rlvr-verify") or (str(local) if local.exists() else None)
    return [exe] if exe else [sys.executable, "-m", "verifiers.cli"]


def run(path: Path, workers: int, timeout: float) -> dict:
    out = path.with_name(path.stem + ".scored.jsonl")
    cmd = cli_command() + ["math", "--input", str(path), "--output", str(out), "--workers", str(workers),
                           "--timeout", f"{timeout:g}", "--quiet"]
    peak = {"tree": 0, "proc": 0}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            tree, largest = _tree_rss_kib(proc.pid)
            peak["tree"], peak["proc"] = max(peak["tree"], tree), max(peak["proc"], largest)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - start
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    rows = agree = rewarded = 0
    reasons: dict[str, int] = {}
    with open(out, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            rows += 1
            got = int(row["reward"] > 0)
            rewarded += got
            agree += got == row["expected"]
            reasons[row["verdict"]] = reasons.get(row["verdict"], 0) + 1
    cli_rate = re.search(r"\(([\d,.]+) rows/s\)", stdout)
    return {
        "rows": rows, "wall": wall, "rate": rows / wall, "cli_rate": cli_rate.group(1) if cli_rate else "?",
        "tree_mib": peak["tree"] / 1024, "max_proc_mib": peak["proc"] / 1024,
        "agree": agree, "rewarded": rewarded, "reasons": reasons, "stdout": stdout.strip(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--big", action="store_true", help="also run 1,000,000 rows")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()

    sizes = [args.rows] + ([1_000_000] if args.big and args.rows != 1_000_000 else [])
    print(f"cli: {' '.join(cli_command())} math --workers {args.workers} --timeout {args.timeout:g}; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    summary = []
    for size in sizes:
        t0 = time.perf_counter()
        path = generate(size)
        print(f"\n== {size:,} rows: {path} ({path.stat().st_size / 2**20:.1f} MiB, ready in {time.perf_counter() - t0:.1f}s)")
        r = run(path, args.workers, args.timeout)
        print(r["stdout"])
        print(f"  bench: {r['rows']:,} rows in {r['wall']:.1f}s wall = {r['rate']:,.0f} rows/s (CLI says {r['cli_rate']} rows/s)")
        print(f"  peak RSS: process tree {r['tree_mib']:.0f} MiB (sampled), largest single process {r['max_proc_mib']:.0f} MiB")
        print(f"  rewarded {r['rewarded'] / r['rows']:.1%}; agrees with the generator's label on {r['agree']:,}/{r['rows']:,}; "
              f"verdicts {r['reasons']}")
        summary.append(f"rows={r['rows']} rate={r['rate']:.0f}/s tree_rss={r['tree_mib']:.0f}MiB agree={r['agree']}/{r['rows']}")
    print("\nSUMMARY throughput " + " | ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
