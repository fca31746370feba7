"""Hostile inputs for the ``math`` verifier: every pair must score 0 within its deadline.

    python bench/math_hostile.py                  # direct, thread, VerifierPool, CLI
    python bench/math_hostile.py --modes direct,thread --deadline 5

Each hostile answer is tried as the completion (against a plain reference) and as the
reference (against a plain completion); all pairs are built so the right reward is 0
(the two sides are never equal). Every pair runs four ways, and the wall time of each
is measured:

  direct  ``get_verifier("math").verify(...)`` in the main thread
  thread  the same call from a ``threading.Thread`` (where SIGALRM-based timeouts break)
  pool    ``VerifierPool(workers=2, timeout=DEADLINE).verify([VerifyTask(...)])``, one
          pair per call on an already started pool
  cli     ``rlvr-verify math --input one_row.jsonl --timeout DEADLINE --workers 2``, one
          process per pair (wall time includes interpreter start-up)

A pair passes when reward is 0 and the wall time is within DEADLINE + slack (slack
covers process start-up for cli and killing a stuck worker for pool). Prints a table
and a ``SUMMARY`` line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from math_common import CACHE, REPO, BenchTimeout, guard, load_ours, parse_opts

MODES = ("direct", "thread", "pool", "cli")
SLACK = {"direct": 1.0, "thread": 1.0, "pool": 2.0, "cli": 6.0}


def _nested_braces(depth: int) -> str:
    return "{" * depth + "1" + "}" * depth


def _nested_fraction(depth: int) -> str:
    text = "1"
    for _ in range(depth):
        text = r"\frac{1}{1+" + text + "}"
    return text


def hostile_answers() -> list[tuple[str, str, str]]:
    """(name, hostile answer, a plain answer it is NOT equal to)."""
    return [
        ("tower 9^{9^{9^9}}", r"9^{9^{9^9}}", "0"),
        ("(10^{10^{10}})!", r"(10^{10^{10}})!", "1"),
        ("10^{10^{10}} vs +1", r"10^{10^{10}}", r"10^{10^{10}}+1"),
        ("2^{2^{2^{2^{2^2}}}}", r"2^{2^{2^{2^{2^{2}}}}}", "2"),
        ("1000000! vs +1", r"1000000!", r"1000000!+1"),
        ("100,000-digit integer", "7" * 100_000, "7"),
        ("100,000-char sum x+x+..", "+".join(["x"] * 50_000), "x"),
        ("100,000-char text", r"\text{" + "a" * 99_990 + "}", r"\text{a}"),
        ("500 nested braces", _nested_braces(500), "2"),
        ("300 nested \\frac", _nested_fraction(300), "0"),
        ("NUL bytes", "\x00" * 1000 + "5\x00" + "\x00" * 1000, "6"),
        ("only NUL", "\x00", "0"),
        ("unclosed \\boxed{ x10k", r"\boxed{" * 10_000 + "1", "2"),
        ("(x+1)^{100000} expand", r"(x+1)^{100000}", r"(x+1)^{100000}+1"),
        ("\\sum to 10^{100}", r"\sum_{n=1}^{10^{100}} n", "0"),
        ("20,000-element list", ",".join(["1"] * 20_000), "2"),
        ("huge repeating decimal", "0." + r"\overline{" + "12" * 25_000 + "3}", "0"),
        ("e^{e^{e^{e^{10}}}}", r"e^{e^{e^{e^{10}}}}", "1"),
        # the answer-marker and answer-form scans (issue 13)
        ("'answer' + 100k spaces", "answer" + " " * 100_000 + "x", "1"),
        ("20k 'the answer is'", "the answer is " * 20_000, "1"),
        ("set-builder, 5k bars", "\\{x | " + "x|" * 5_000 + "\\}", "1"),
        ("trig of a 9k-digit angle^", "\\sin " + "1" * 9_000 + "^", "0"),
    ]


def hostile_pairs() -> list[tuple[str, str, str]]:
    """(label, completion, reference): each hostile answer on both sides."""
    pairs = []
    for name, evil, plain in hostile_answers():
        pairs.append((f"{name} [completion]", rf"The answer is \boxed{{{evil}}}" if not evil.startswith(r"\boxed") else evil, plain))
        pairs.append((f"{name} [reference]", rf"\boxed{{{plain}}}", evil))
    return pairs


def run_direct(verifier, completion: str, reference: str, deadline: float) -> tuple[float, str]:
    try:
        with guard(deadline * 10 + 30):
            verdict = verifier.verify(completion=completion, reference=reference)
        return verdict.reward, verdict.reason
    except BenchTimeout:
        return -1.0, "HUNG(bench guard)"
    except Exception as exc:
        return -1.0, f"RAISED {type(exc).__name__}"


def run_thread(verifier, completion: str, reference: str, deadline: float) -> tuple[float, str]:
    box: dict[str, object] = {}

    def target() -> None:
        try:
            verdict = verifier.verify(completion=completion, reference=reference)
            box["out"] = (verdict.reward, verdict.reason)
        except Exception as exc:
            box["out"] = (-1.0, f"RAISED {type(exc).__name__}")

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(deadline * 10 + 30)
    if thread.is_alive():
        return -1.0, "HUNG(thread still running)"
    return box["out"]  # type: ignore[return-value]


def cli_command() -> list[str]:
    exe = shutil.which("rlvr-verify") or (str(Path(sys.executable).parent / "rlvr-verify")
                                          if (Path(sys.executable).parent / "rlvr-verify").exists() else None)
    return [exe] if exe else [sys.executable, "-m", "verifiers.cli"]


def run_cli(completion: str, reference: str, deadline: float, workdir: Path, opts: list[str]) -> tuple[float, str]:
    src, dst = workdir / "in.jsonl", workdir / "out.jsonl"
    src.write_text(json.dumps({"completion": completion, "reference": reference}) + "\n", encoding="utf-8")
    dst.unlink(missing_ok=True)
    cmd = cli_command() + ["math", "--input", str(src), "--output", str(dst), "--workers", "2",
                           "--timeout", f"{deadline:g}", "--quiet"] + [f"--opt={o}" for o in opts]
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=deadline * 10 + 60)
    except subprocess.TimeoutExpired:
        return -1.0, "HUNG(cli)"
    if proc.returncode != 0 or not dst.exists():
        return -1.0, f"EXIT {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-120:]}"
    row = json.loads(dst.read_text(encoding="utf-8").splitlines()[0])
    return float(row["reward"]), str(row["verdict"])


def start_pool(deadline: float, options: dict):
    """A started ``VerifierPool(workers=2)``, or None (with the reason printed)."""
    from verifiers.runtime import VerifierPool, VerifyTask

    pool = VerifierPool(workers=2, timeout=deadline)
    try:
        pool.verify([VerifyTask("math", r"\boxed{1}", "1", options=options)])  # start the workers
        return pool
    except Exception as exc:
        print(f"VerifierPool unavailable: {type(exc).__name__}: {exc}")
        pool.close()
        return None


def run_mode(mode: str, verifier, pool, options: dict, completion: str, reference: str,
             args: argparse.Namespace, workdir: Path) -> tuple[float, str]:
    """(reward, reason) of one pair through one mode; -1 and a reason when it breaks."""
    try:
        if mode == "direct":
            return run_direct(verifier, completion, reference, args.deadline)
        if mode == "thread":
            return run_thread(verifier, completion, reference, args.deadline)
        if mode == "pool":
            from verifiers.runtime import VerifyTask

            verdict = pool.verify([VerifyTask("math", completion, reference, options=options)])[0]
            return verdict.reward, verdict.reason
        return run_cli(completion, reference, args.deadline, workdir, args.opt)
    except Exception as exc:
        return -1.0, f"RAISED {type(exc).__name__}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deadline", type=float, default=5.0, help="per-sample deadline / --timeout (s)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--only", default="", help="run only pairs whose label contains this text")
    parser.add_argument("--opt", action="append", default=[], help="option for get_verifier('math'), key=value")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]

    options = parse_opts(args.opt)
    wrapper, why = load_ours(options)
    if wrapper is None and {"direct", "thread"} & set(modes):
        print(f"our math verifier is unavailable for direct/thread calls: {why}")
        modes = [m for m in modes if m not in ("direct", "thread")]
    verifier = wrapper.default if wrapper else None
    pairs = [p for p in hostile_pairs() if args.only in p[0]]

    pool = start_pool(args.deadline, options) if "pool" in modes else None
    if pool is None:
        modes = [m for m in modes if m != "pool"]
    CACHE.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="hostile-", dir=CACHE))
    if "cli" in modes:
        print(f"cli: {' '.join(cli_command())} math ... --workers 2 --timeout {args.deadline:g}")

    print(f"{'pair':<42}" + "".join(f"{m:>24}" for m in modes))
    failures, worst = 0, {m: 0.0 for m in modes}
    try:
        for label, completion, reference in pairs:
            cells = []
            for mode in modes:
                start = time.perf_counter()
                reward, reason = run_mode(mode, verifier, pool, options, completion, reference, args, workdir)
                wall = time.perf_counter() - start
                worst[mode] = max(worst[mode], wall)
                ok = reward == 0 and wall <= args.deadline + SLACK[mode]
                failures += not ok
                cells.append(f"{'' if ok else '!!'}{reason[:12]} {wall:6.2f}s")
            print(f"{label[:41]:<42}" + "".join(f"{c:>24}" for c in cells), flush=True)
    finally:
        if pool is not None:
            pool.close()
        shutil.rmtree(workdir, ignore_errors=True)
    total = len(pairs) * len(modes)
    print("(cell: verdict reason and wall time; '!!' marks reward != 0, a crash/hang, or time past deadline + slack)")
    print("\nSUMMARY hostile " + f"pass={total - failures}/{total} deadline={args.deadline:g}s "
          + " ".join(f"worst_{m}={worst[m]:.2f}s" for m in modes))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
