"""``rlvr-verify NAME``: score every row of a dataset file with a registered verifier.

    rlvr-verify math --input examples/math_answers.jsonl --output runs/verified.jsonl
    rlvr-verify choice --dataset ./mmlu_dir --split test --opt letters=ABCD --summary-only
    rlvr-verify code --input humaneval_completions.jsonl --format humaneval --output scored.jsonl

Each output row is the input row, untouched and in input order, plus ``reward``
(float), ``verdict`` (the reason code) and ``verdict_details`` (a dict; a JSON string
in CSV and Parquet). Rows stream through worker processes (`verifiers.runtime`), so
memory stays bounded on inputs of any length. Exit status: 0 on success, 2 for a
usage error (unknown verifier, bad option, missing file or field), 1 if the verifier
workers cannot start, 130 on Ctrl-C; an output file exists only after a complete run.
See docs/verify.md.
"""
from __future__ import annotations

import argparse
import collections
import itertools
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from verifiers.base import OptionsError, Verdict
from verifiers.datafiles import DataFileError, RowSource, check_writable, open_dataset, open_rows, write_rows
from verifiers.formats import FORMATS, GENERIC, Format, FormatError, detect_format, get_format
from verifiers.registry import UnknownVerifierError, get_factory, get_verifier

__all__ = ["main", "build_parser"]

ADDED_FIELDS = ("reward", "verdict", "verdict_details")
_CHUNK = 2048  # rows handed to the pool at a time (bounds memory together with the pool's own window)
_PROGRESS_EVERY = 2.0  # seconds between progress lines on stderr


class UsageError(Exception):
    """Bad arguments or input; printed as one line, exit status 2."""


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rlvr-verify", description="Score a dataset file with a registered verifier.")
    p.add_argument("verifier", metavar="NAME", nargs="?",
                   help="verifier name (rlvr-verify --list shows them all, plugins included)")
    p.add_argument("--list", action="store_true", help="list the verifiers with their options, and the formats")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", metavar="FILE", help="a .jsonl, .json, .csv or .parquet file")
    src.add_argument("--dataset", metavar="PATH_OR_NAME", help="anything datasets.load_dataset reads offline")
    p.add_argument("--split", default="train", help="split of --dataset (default: train)")
    p.add_argument("--output", metavar="FILE", help="where to write scored rows; format by extension")
    p.add_argument("--summary-only", action="store_true", help="score and print the summary without writing rows")
    p.add_argument("--prediction-field", default="completion", help="column holding the completion (default: completion)")
    p.add_argument("--reference-field", default=None,
                   help="column holding the reference (default: reference; '' passes no reference)")
    p.add_argument("--format", default="auto", metavar="NAME",
                   help=f"the dataset's row shape, which builds each row's reference: auto (default: the "
                        f"'reference' column if there is one, else the format the columns fit), "
                        f"{', '.join(sorted(FORMATS))}")
    p.add_argument("--extra-field", action="append", default=[], metavar="NAME",
                   help="also pass this column to the verifier as a keyword field (repeatable)")
    p.add_argument("--opt", action="append", default=[], metavar="KEY=VALUE", help="verifier option (repeatable)")
    p.add_argument("--workers", type=_positive(int), default=2, help="verifier worker processes (default: 2)")
    p.add_argument("--timeout", type=_positive(float), default=10.0, help="per-sample deadline in seconds (default: 10)")
    p.add_argument("--limit", type=_positive(int), metavar="N", help="score only the first N rows")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def parse_opts(pairs: Iterable[str]) -> dict[str, str]:
    opts = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--opt expects KEY=VALUE, got {pair!r}")
        opts[key.strip()] = value
    return opts


@dataclass
class Summary:
    """Running totals; latencies go into log-spaced buckets (2% wide) so memory stays bounded."""

    rows: int = 0
    reward_sum: float = 0.0
    reasons: collections.Counter = field(default_factory=collections.Counter)
    buckets: collections.Counter = field(default_factory=collections.Counter)
    scored: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, verdict: Verdict, seconds: float | None) -> None:
        self.rows += 1
        self.reward_sum += verdict.reward
        self.reasons[verdict.reason] += 1
        if seconds is not None:
            self.scored += 1
            self.buckets[max(0, math.ceil(math.log(max(seconds, 1e-7) / 1e-6, 1.02)))] += 1

    def latency(self, q: float) -> float:
        target, seen = q * self.scored, 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= target:
                return 1e-6 * 1.02**bucket
        return 0.0

    def mean(self) -> float:
        return self.reward_sum / self.rows if self.rows else float("nan")

    def progress_line(self) -> str:
        rate = self.rows / max(time.monotonic() - self.started, 1e-9)
        return f"rlvr-verify: {self.rows:,} rows, {rate:,.0f} rows/s, mean reward {self.mean():.4f}"

    def render(self, name: str, output: str | None, workers: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        counts = ", ".join(f"{r} {n:,} ({100 * n / self.rows:.1f}%)" for r, n in self.reasons.most_common())
        lines = [
            f"verifier     {name} ({workers} workers)",
            f"rows         {self.rows:,} in {elapsed:.2f}s ({self.rows / elapsed:,.1f} rows/s)",
            f"mean reward  {self.mean():.4f}",
            f"verdicts     {counts or '(none)'}",
            f"latency      p50 {1000 * self.latency(0.5):.2f} ms, p99 {1000 * self.latency(0.99):.2f} ms per sample",
            f"output       {output or '(not written: --summary-only)'}",
        ]
        return "\n".join(lines)


@dataclass
class Job:
    """Everything needed to turn rows into scored rows."""

    verifier: str
    options: dict[str, str]
    prediction: str
    reference: str
    extra: list[str]
    summary: Summary
    fmt: Format | None = None  # builds each row's reference (None: the reference column as it is)
    preload: tuple[str, ...] = ()  # modules workers import (and warm up) before the first sample


def _local_verdict(row: dict[str, Any], job: Job) -> Verdict | None:
    """A verdict for rows whose prediction is missing or not text, or whose format cannot build a reference;
    None for rows to verify."""
    value = row.get(job.prediction)
    if value is None:
        return Verdict(0.0, "no_prediction", {"error": f"field {job.prediction!r} is missing or null"})
    if not isinstance(value, str):
        return Verdict(0.0, "bad_prediction", {"error": f"field {job.prediction!r} is {type(value).__name__}, not a string"})
    if job.fmt is not None:
        try:
            job.fmt.reference(row)
        except FormatError as exc:
            return Verdict(0.0, "bad_reference", {"error": f"format {job.fmt.name}: {exc}"})
    return None


def _reference(row: dict[str, Any], job: Job) -> Any:
    if job.fmt is not None:
        return job.fmt.reference(row)
    return row.get(job.reference) if job.reference else None


def _finish(row: dict[str, Any], verdict: Verdict, seconds: float | None, job: Job) -> dict[str, Any]:
    job.summary.add(verdict, seconds)
    row["reward"], row["verdict"], row["verdict_details"] = float(verdict.reward), verdict.reason, dict(verdict.details)
    return row


def score_rows(rows: Iterable[dict[str, Any]], job: Job, pool: Any) -> Iterator[dict[str, Any]]:
    """Scored rows in input order; rows without a text prediction never reach the pool."""
    from verifiers.runtime import VerifyTask

    it = iter(rows)
    while chunk := list(itertools.islice(it, _CHUNK)):
        tasks = (
            VerifyTask(job.verifier, row[job.prediction], _reference(row, job),
                       {name: row.get(name) for name in job.extra}, job.options)
            for row in chunk if _local_verdict(row, job) is None
        )
        results = pool.imap(tasks)
        for row in chunk:
            local = _local_verdict(row, job)
            if local is not None:
                yield _finish(row, local, None, job)
            else:
                result = next(results)
                yield _finish(row, result.verdict, result.seconds, job)
        for _ in results:  # finish the generator (releases the pool for the next chunk)
            raise RuntimeError("the verifier pool returned more results than tasks")


def _with_progress(rows: Iterator[dict[str, Any]], summary: Summary, quiet: bool) -> Iterator[dict[str, Any]]:
    last = None  # the clock starts at the first row, after the workers have started
    for row in rows:
        yield row
        last = last or time.monotonic()
        if not quiet and time.monotonic() - last >= _PROGRESS_EVERY:
            last = time.monotonic()
            print(summary.progress_line(), file=sys.stderr, flush=True)


def _choose_format(source: RowSource, args: argparse.Namespace) -> Format | None:
    """The format that builds references (None: the reference column as it is), said out loud when chosen
    automatically; an explicit --reference-field always wins over auto."""
    try:
        if args.format == "auto":
            if args.reference_field is not None or not source.fields:
                return None
            fmt, why = detect_format(source.fields)
            if fmt.name != GENERIC:
                print(f"rlvr-verify: format {fmt.name} ({why}; --format to choose another)", file=sys.stderr)
        else:
            fmt = get_format(args.format)
            if source.fields and not fmt.matches(source.fields):
                raise UsageError(f"--format {fmt.name} needs the columns {fmt.required()}; "
                                 f"available fields: {', '.join(source.fields)}")
    except FormatError as exc:
        raise UsageError(str(exc)) from None
    if fmt.name == GENERIC:
        return None
    if fmt.verifier != args.verifier:
        print(f"rlvr-verify: warning: format {fmt.name} is checked by the {fmt.verifier!r} verifier, "
              f"not {args.verifier!r}", file=sys.stderr)
    return fmt


def _check_fields(source: RowSource, args: argparse.Namespace, fmt: Format | None) -> None:
    if not source.fields:
        return  # no rows at all
    reference = [] if fmt is not None or not args.reference_field else [args.reference_field]
    wanted = [args.prediction_field, *reference, *args.extra_field]
    missing = [name for name in wanted if name not in source.fields]
    if missing:
        where = args.input or args.dataset
        raise UsageError(f"{where}: no field {', '.join(map(repr, missing))}; available fields: {', '.join(source.fields)}")
    clash = [name for name in ADDED_FIELDS if name in source.fields]
    if clash:
        print(f"rlvr-verify: warning: overwriting existing field(s) {', '.join(clash)}", file=sys.stderr)


def listing() -> str:
    """Every registered verifier (plugins included) with one line and its options, then the dataset formats."""
    import dataclasses

    from verifiers.registry import available_verifiers

    lines = ["verifiers (rlvr-verify NAME --opt KEY=VALUE):"]
    for name in available_verifiers():
        try:
            factory = get_factory(name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is listed with its error, not a crash
            lines.append(f"  {name:<16} (cannot load: {type(exc).__name__}: {exc})")
            continue
        doc = (factory.__doc__ or "").strip().splitlines()
        lines.append(f"  {name:<16} {doc[0] if doc else ''}")
        options = getattr(factory, "Options", None)
        if options is not None and dataclasses.is_dataclass(options):
            shown = [f"{f.name}={f.default!r}" if f.default is not dataclasses.MISSING else f.name
                     for f in dataclasses.fields(options)]
            lines.append(f"  {'':<16} options: {', '.join(shown) or '(none)'}")
    lines += ["", "dataset formats (--format NAME; default auto):"]
    lines += [f"  {fmt.name:<16} {fmt.description} [verifier: {fmt.verifier or 'each row names its own'}]"
              for fmt in FORMATS.values()]
    return "\n".join(lines)


def _prepare(args: argparse.Namespace) -> tuple[Job, RowSource]:
    """Validate everything that can be checked before scoring starts."""
    if not args.verifier:
        raise UsageError("name a verifier: rlvr-verify NAME --input FILE ... (rlvr-verify --list shows them)")
    if not args.input and not args.dataset:
        raise UsageError("give --input FILE or --dataset PATH_OR_NAME")
    if not args.output and not args.summary_only:
        raise UsageError("give --output FILE, or --summary-only to print only the summary")
    options = parse_opts(args.opt)
    try:
        get_verifier(args.verifier, **options)
    except (UnknownVerifierError, OptionsError) as exc:
        raise UsageError(str(exc)) from None
    if args.output:
        check_writable(args.output)
    source = open_rows(args.input) if args.input else open_dataset(args.dataset, args.split)
    fmt = _choose_format(source, args)
    if args.reference_field is None:
        args.reference_field = "reference"
    _check_fields(source, args, fmt)
    if args.limit:
        source.rows = itertools.islice(source.rows, args.limit)
    job = Job(args.verifier, options, args.prediction_field, args.reference_field, args.extra_field, Summary(), fmt)
    module = getattr(get_factory(args.verifier), "__module__", "")
    job.preload = (module,) if module and module != "__main__" else ()  # only what this verifier needs
    return job, source


def _run(args: argparse.Namespace) -> int:
    from verifiers.runtime import VerifierPool, WorkerStartError

    job, source = _prepare(args)
    job.summary.started = time.monotonic()  # rows/s counts worker start-up, not argument checks
    try:
        with VerifierPool(workers=args.workers, timeout=args.timeout, preload=job.preload) as pool:
            scored = _with_progress(score_rows(source.rows, job, pool), job.summary, args.quiet)
            if args.output:
                write_rows(args.output, scored)
            else:
                collections.deque(scored, maxlen=0)
    except WorkerStartError as exc:
        print(f"rlvr-verify: error: verifier workers could not start: {exc}", file=sys.stderr)
        return 1
    print(job.summary.render(args.verifier, args.output, args.workers), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed the message (or --help)
        return int(exc.code or 0)
    if args.list:
        print(listing())
        return 0
    try:
        return _run(args)
    except (UsageError, DataFileError) as exc:
        print(f"rlvr-verify: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rlvr-verify: interrupted; no output written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
