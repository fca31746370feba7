"""Accuracy of the ``math`` verifier: the own case file, the realistic completions (tuned
and held-out), and Math-Verify's published cases, each beside Math-Verify.

    python bench/math_accuracy.py                 # all parts
    python bench/math_accuracy.py --own-only      # no download needed
    python bench/math_accuracy.py --realistic-only
    python bench/math_accuracy.py --mv-only --opt tolerance=1e-9

(a) ``bench/cases/math_cases.jsonl``: pass count per category and every failure.
(b) Math-Verify 0.9.0's own test cases, fetched into bench/.cache at run time (see
    bench/mv_cases.py for exactly which N=270 cases count): agreement with the expected
    verdict of Math-Verify with default settings, ``verify(parse(gold), parse(pred))``,
    and of ours, ``verify(completion=pred, reference=gold)`` with reward > 0 meaning 1;
    then every case where we disagree with the expected verdict.
(c) ``bench/cases/realistic_completions.jsonl`` (long completions in the endings of the
    common model families, see bench/math_realistic_gen.py) and
    ``bench/cases/realistic_heldout.jsonl`` (phrasings the rules were not tuned on, see
    bench/math_realistic_heldout.py): agreement with the labels, ours and Math-Verify
    default (``verify(parse("$reference$"), parse(completion))``: a bare reference is put
    in ``$...$`` as Math-Verify's documentation writes gold answers), per ending
    convention, and every case where ours disagrees with the label. The own case file
    (a) is scored by Math-Verify the same way, for comparison.
The last line is ``SUMMARY own=.. own_mv=.. realistic=.. realistic_mv=.. heldout=.. heldout_mv=..
mv_default=.. ours_on_mv=..``.
"""
from __future__ import annotations

import argparse
import collections
import sys
import time

from math_common import (HELDOUT_FILE, REALISTIC_FILE, load_own_cases, load_ours, load_realistic, mv_default,
                         mv_on_reference, our_verdict, parse_opts, short)


def _mv_or_none():
    try:
        return mv_on_reference(mv_default())
    except ImportError:
        return None


def run_own(ours, guard_s: float, mv=None) -> tuple[int, int, int | None]:
    cases = load_own_cases()
    per_cat: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    failures = []
    for case in cases:
        got, reason, details = our_verdict(ours.with_options(case.options), case.completion, case.reference, guard_s)
        per_cat[case.category][1] += 1
        if mv is not None:
            per_cat[case.category][2] += mv(case.reference, case.completion) == case.expected
        if got == case.expected:
            per_cat[case.category][0] += 1
        else:
            failures.append((case, got, reason, details))
    passed = sum(p for p, _, _ in per_cat.values())
    mv_passed = sum(m for _, _, m in per_cat.values()) if mv is not None else None
    print(f"== own case file: ours {passed}/{len(cases)} pass" + (f", Math-Verify default {mv_passed}/{len(cases)}" if mv else ""))
    for cat, (p, n, m) in per_cat.items():
        print(f"  {cat:<20} {p:>3}/{n:<3}" + (f"  MV {m:>3}/{n:<3}" if mv else "") + ("" if p == n else "  <--"))
    if failures:
        print(f"-- {len(failures)} own-case failures (id | completion | reference | expected | got reason details)")
    for case, got, reason, details in failures:
        opts = f" options={case.options}" if case.options else ""
        print(f"  {case.id}: {short(case.completion, 70)} | {short(case.reference, 50)} | exp {case.expected}"
              f" | got {got} {reason} {short(details, 160)}{opts}  [{case.note}]")
    return passed, len(cases), mv_passed


def run_realistic(ours, guard_s: float, mv=None, path=REALISTIC_FILE, title="realistic completions"):
    cases = load_realistic(path)
    per_cat: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0])
    failures = []
    t0 = time.perf_counter()
    for case in cases:
        got, reason, details = our_verdict(ours.default, case.completion, case.reference, guard_s)
        got_mv = mv(case.reference, case.completion) if mv is not None else None
        row = per_cat[case.category]
        row[0], row[1], row[2] = row[0] + (got == case.label), row[1] + 1, row[2] + (got_mv == case.label)
        if got != case.label:
            failures.append((case, got, reason, details, got_mv))
    n = len(cases)
    ours_ok = sum(r[0] for r in per_cat.values())
    mv_ok = sum(r[2] for r in per_cat.values()) if mv is not None else None
    false_pos = sum(1 for case, got, *_ in failures if got == 1)
    print(f"\n== {title}: {n} labelled ({sum(c.label for c in cases)} correct), {time.perf_counter() - t0:.1f}s")
    print(f"  ours agrees with the label: {ours_ok}/{n} ({100 * ours_ok / n:.1f}%), {false_pos} false positives")
    if mv_ok is not None:
        mv_fp = sum(1 for c in cases if mv(c.reference, c.completion) == 1 and c.label == 0)
        print(f"  Math-Verify default:        {mv_ok}/{n} ({100 * mv_ok / n:.1f}%), {mv_fp} false positives")
    for cat, (p, k, m) in sorted(per_cat.items()):
        print(f"  {cat:<20} ours {p:>3}/{k:<3}" + (f"  MV {m:>3}/{k:<3}" if mv else ""))
    if failures:
        print(f"-- {len(failures)} realistic cases where ours disagrees with the label (id | label | ours reason details | MV)")
    for case, got, reason, details, got_mv in failures:
        print(f"  {case.id}: label {case.label} | ours {got} {reason} {short(details, 160)} | mv {got_mv}")
    return ours_ok, n, mv_ok


def run_mv(ours, guard_s: float) -> tuple[int, int, int | None]:
    import mv_cases

    all_cases, cases = mv_cases.load()
    mv = mv_default()
    mv_ok, ours_ok, mv_wrong, our_wrong = 0, 0, [], []
    t0 = time.perf_counter()
    for case in cases:
        got_mv = mv(case.gold, case.pred)
        mv_ok += got_mv == case.expected
        if got_mv != case.expected:
            mv_wrong.append(case)
        if ours is not None:
            got, reason, details = our_verdict(ours.default, case.pred, case.gold, guard_s)
            ours_ok += got == case.expected
            if got != case.expected:
                our_wrong.append((case, got, reason, details, got_mv))
    n = len(cases)
    print(f"\n== Math-Verify {mv_cases.MV_VERSION} published cases: {len(all_cases)} gold/pred rows, "
          f"{len(all_cases) - n} multiple-choice dropped, N = {n}  ({time.perf_counter() - t0:.1f}s)")
    print(f"  Math-Verify default agrees with expected: {mv_ok}/{n}")
    for case in mv_wrong:
        print(f"    MV wrong: {case.id} exp {case.expected} gold={short(case.gold, 60)} pred={short(case.pred, 60)} {case.params or ''}")
    if ours is None:
        print("  ours: unavailable")
        return mv_ok, n, None
    print(f"  ours agrees with expected:                {ours_ok}/{n}")
    print(f"-- {len(our_wrong)} cases where ours disagrees with the expected verdict"
          " (id | pred | gold | expected | ours reason details | MV default)")
    for case, got, reason, details, got_mv in our_wrong:
        print(f"  {case.id}: pred={short(case.pred, 90)} | gold={short(case.gold, 70)} | exp {case.expected}"
              f" | ours {got} {reason} {short(details, 200)} | mv {got_mv} {case.params or ''}")
    return mv_ok, n, ours_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--own-only", action="store_true")
    parser.add_argument("--mv-only", action="store_true")
    parser.add_argument("--realistic-only", action="store_true")
    parser.add_argument("--opt", action="append", default=[], help="option for get_verifier('math'), key=value")
    parser.add_argument("--guard", type=float, default=30.0, help="bench-side limit per call of ours (s)")
    args = parser.parse_args()

    ours, why = load_ours(parse_opts(args.opt))
    if ours is None:
        print(f"our math verifier is unavailable: {why}")
    summary = []
    mv = _mv_or_none()
    only = args.own_only or args.mv_only or args.realistic_only
    if args.own_only or not only:
        if ours is not None:
            passed, total, mv_passed = run_own(ours, args.guard, mv)
            summary += [f"own={passed}/{total}", f"own_mv={mv_passed}/{total}"]
        else:
            summary.append(f"own=unavailable/{len(load_own_cases())}")
    if (args.realistic_only or not only) and ours is not None:
        ok, n, mv_ok = run_realistic(ours, args.guard, mv)
        summary += [f"realistic={ok}/{n}", f"realistic_mv={mv_ok}/{n}"]
        ok, n, mv_ok = run_realistic(ours, args.guard, mv, HELDOUT_FILE, "realistic held-out (phrasings not tuned on)")
        summary += [f"heldout={ok}/{n}", f"heldout_mv={mv_ok}/{n}"]
    if args.mv_only or not only:
        mv_ok, n, ours_ok = run_mv(ours, args.guard)
        summary.append(f"mv_default={mv_ok}/{n}")
        summary.append(f"ours_on_mv={'unavailable' if ours_ok is None else ours_ok}/{n}")
    print("\nSUMMARY " + " ".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
