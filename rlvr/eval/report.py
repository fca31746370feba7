"""`rlvr-report RUN_DIR`: what a run did to every quality dimension, and what the watch saw.
`rlvr-report BEFORE_DIR AFTER_DIR`: the same comparison between two evaluations - two `rlvr-eval`
runs (a model before and after training, two checkpoints) or two training runs - from BEFORE's
last evaluation to AFTER's, paired by prompt; the report is written into AFTER_DIR.

Every reward source's label is a *dimension*. From the held-out records of the first and
the last evaluation (``RUN_DIR/eval/step_<N>.jsonl``, written by the loop) the report
takes, per dimension, the mean start and end score and the change, with a 95% bootstrap
interval paired over prompts (the same prompt before and after; 2000 resamples, seed 0),
and a verdict: *improved* (the interval lies above 0), *regressed* (below 0) or *flat*
(it contains 0). Two dimensions with opposite verdicts are a *trade-off*. Reward vs
length: the held-out mean length before and after (same interval) and each dimension's
correlation with length at the end. The watch's alerts come from metrics.jsonl's
``alert/*`` flags (first and last step, steps flagged) and their messages from
alerts.jsonl.

Writes ``report.html`` (self-contained: the figure is embedded, no links, no scripts),
``report.png``, and merges ``dimensions``, ``tradeoffs``, ``length``, ``alerts`` and
``report`` into ``summary.json`` (its other keys stay). A run without per-sample records
falls back to the logged held-out means, without intervals (verdict ``no_records``).
Exit status: 0, or 2 with one line for a missing or unreadable run directory.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence

from rlvr.data.chat import DataError
from rlvr.eval.heldout import EVAL_DIR, read_eval_records
from rlvr.eval.stats import paired_bootstrap, pearson

__all__ = ["verdict", "pair_by_prompt", "dimension_table", "tradeoffs", "alert_timeline", "length_table",
           "build_report", "write_report", "main"]

SAMPLES, SEED, LEVEL = 2000, 0, 0.95


def verdict(low: float, high: float) -> str:
    """improved when the interval lies above 0, regressed below, flat when it contains 0."""
    if low > 0:
        return "improved"
    if high < 0:
        return "regressed"
    return "flat"


def _key(row: dict[str, Any]) -> Any:
    return row.get("uid") or row.get("index")


def pair_by_prompt(first: Sequence[dict], last: Sequence[dict], value) -> tuple[list[float], list[float]]:
    """Values of the prompts both evaluations scored, in the same order (matched by uid, else index)."""
    before = {_key(r): value(r) for r in first}
    pairs = [(before[_key(r)], value(r)) for r in last if _key(r) in before]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    return [float(a) for a, _ in pairs], [float(b) for _, b in pairs]


def _change(before: list[float], after: list[float], seed: int) -> dict[str, Any]:
    change, low, high = paired_bootstrap(before, after, samples=SAMPLES, level=LEVEL, seed=seed)
    return {"start": sum(before) / len(before), "end": sum(after) / len(after), "change": change, "ci_low": low,
            "ci_high": high, "verdict": verdict(low, high), "n": len(before)}


def dimension_table(first: Sequence[dict], last: Sequence[dict], seed: int = SEED) -> dict[str, dict[str, Any]]:
    """label -> start, end, change, ci_low, ci_high, verdict, n (prompts paired)."""
    labels = list(dict.fromkeys(k for r in list(first) + list(last) for k in r.get("scores", {})))
    out = {}
    for label in labels:
        before, after = pair_by_prompt(first, last, lambda r, k=label: r.get("scores", {}).get(k))
        if before:
            out[label] = _change(before, after, seed)
    return out


def fallback_dimensions(rows: Sequence[dict]) -> dict[str, dict[str, Any]]:
    """Without records: the logged held-out means (eval/reward/<label>/mean), no interval."""
    evals = [r for r in rows if "eval/reward/mean" in r]
    if not evals:
        return {}
    prefix, out = "eval/reward/", {}
    for key in [k for k in evals[-1] if k.startswith(prefix) and k.endswith("/mean") and k.count("/") == 3]:
        start, end = evals[0].get(key), evals[-1].get(key)
        if start is not None and end is not None:
            out[key[len(prefix):-len("/mean")]] = {"start": start, "end": end, "change": end - start, "ci_low": None,
                                                   "ci_high": None, "verdict": "no_records", "n": None}
    return out


def tradeoffs(dimensions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every (improved, regressed) pair of dimensions."""
    up = [k for k, d in dimensions.items() if d["verdict"] == "improved"]
    down = [k for k, d in dimensions.items() if d["verdict"] == "regressed"]
    return [{"improved": a, "regressed": b, "changes": [dimensions[a]["change"], dimensions[b]["change"]]}
            for a in up for b in down]


def alert_timeline(rows: Sequence[dict], events: Sequence[dict] = ()) -> dict[str, dict[str, Any]]:
    """alert name -> first_step, last_step, steps (flagged), episodes ([start, end] runs), message."""
    steps: dict[str, list[int]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith("alert/") and value:
                steps.setdefault(key[len("alert/"):], []).append(int(row["step"]))
    messages = {}
    for e in events:
        messages.setdefault(e["name"], e.get("message", ""))
    out = {}
    for name, flagged in sorted(steps.items(), key=lambda kv: min(kv[1])):
        flagged = sorted(set(flagged))
        episodes, start = [], flagged[0]
        for prev, cur in zip(flagged, flagged[1:] + [None]):
            if cur is None or cur != prev + 1:
                episodes.append([start, prev])
                start = cur
        out[name] = {"first_step": flagged[0], "last_step": flagged[-1], "steps": len(flagged), "episodes": episodes,
                     "message": messages.get(name, "")}
    return out


def length_table(first: Sequence[dict], last: Sequence[dict], seed: int = SEED) -> Optional[dict[str, Any]]:
    """Held-out completion length start/end/change (paired interval) and each dimension's r with length."""
    before, after = pair_by_prompt(first, last, lambda r: r.get("length"))
    if not before:
        return None
    out = _change(before, after, seed)
    labels = list(dict.fromkeys(k for r in last for k in r.get("scores", {})))
    corr = {}
    for label in labels:
        pts = [(r["scores"][label], r["length"]) for r in last if r.get("scores", {}).get(label) is not None]
        r_value = pearson([p[0] for p in pts], [p[1] for p in pts]) if len(pts) > 1 else float("nan")
        corr[label] = None if r_value != r_value else r_value
    out["reward_length_corr_end"] = corr
    return out


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    rows = []
    for n, line in enumerate(path.read_text().splitlines()):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a torn last line
    return rows


def load_run(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory; pass the directory rlvr-train wrote (runs/<run_name>)")
    metrics = _read_jsonl(run_dir / "metrics.jsonl")
    try:
        records = read_eval_records(run_dir)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    if not metrics and not records:
        raise DataError(f"{run_dir}: no metrics.jsonl and no eval/ records: not a run directory, or the run "
                        f"stopped before its first evaluation")
    sources_file = run_dir / EVAL_DIR / "sources.json"
    sources = json.loads(sources_file.read_text()) if sources_file.is_file() else {}
    return {"metrics": metrics, "records": records, "sources": sources,
            "events": _read_jsonl(run_dir / "alerts.jsonl")}


def build_report(run_dir: str | Path, seed: int = SEED, before: Optional[str | Path] = None) -> dict[str, Any]:
    """The report's numbers (what summary.json gets), plus what the figure needs; with ``before``, the start
    is that run's last evaluation instead of this run's first."""
    run = load_run(Path(run_dir))
    steps = sorted(run["records"])
    first, last = (run["records"][steps[0]], run["records"][steps[-1]]) if steps else ([], [])
    if before is not None:
        earlier = load_run(Path(before))["records"]
        if not earlier or not steps:
            raise DataError(f"comparing {before} with {run_dir} needs per-prompt evaluation records (eval/) in both")
        first = earlier[max(earlier)]
        if not pair_by_prompt(first, last, lambda r: r.get("reward"))[0]:
            raise DataError(f"{before} and {run_dir} share no prompt (matched by uid): evaluate the same dataset")
    dims = dimension_table(first, last, seed) if steps else fallback_dimensions(run["metrics"])
    for label, d in dims.items():
        info = run["sources"].get(label, {})
        d.update({"kind": info.get("kind"), "learned": info.get("learned")})
    return {"run_dir": str(run_dir), "before_dir": str(before) if before is not None else None,
            "eval_steps": [steps[0], steps[-1]] if steps else [],
            "dimensions": dims, "tradeoffs": tradeoffs(dims), "length": length_table(first, last, seed),
            "alerts": alert_timeline(run["metrics"], run["events"]), "_run": run, "_first": first, "_last": last}


def merge_summary(run_dir: Path, report: dict[str, Any], files: dict[str, str]) -> Path:
    target = run_dir / "summary.json"
    summary = json.loads(target.read_text()) if target.is_file() else {}
    summary.update({k: report[k] for k in ("dimensions", "tradeoffs", "length", "alerts", "eval_steps", "before_dir")})
    summary["report"] = files
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    os.replace(tmp, target)
    return target


def write_report(run_dir: str | Path, seed: int = SEED, before: Optional[str | Path] = None) -> Path:
    """report.png, report.html and the summary.json merge; returns the HTML's path."""
    from rlvr.eval.report_render import render_html, render_png

    run_dir = Path(run_dir)
    report = build_report(run_dir, seed, before)
    png = render_png(report, run_dir / "report.png")
    html = run_dir / "report.html"
    html.write_text(render_html(report, png))
    merge_summary(run_dir, report, {"html": str(html), "png": str(png)})
    return html


def main(argv: Optional[Sequence[str]] = None) -> None:
    from rlvr.errors import exit_on_user_error

    p = argparse.ArgumentParser(prog="rlvr-report", description="Per-dimension report of a training run, or the "
                                "change between two evaluations (BEFORE_DIR AFTER_DIR).")
    p.add_argument("dirs", metavar="RUN_DIR", nargs="+",
                   help="a run directory (rlvr-train), or two: BEFORE_DIR AFTER_DIR (rlvr-eval or rlvr-train runs)")
    p.add_argument("--seed", type=int, default=SEED, help="bootstrap seed (default 0)")
    args = p.parse_args(argv)
    if len(args.dirs) > 2:
        p.error("give one run directory, or two: BEFORE_DIR AFTER_DIR")
    before, run_dir = (args.dirs[0], args.dirs[1]) if len(args.dirs) == 2 else (None, args.dirs[0])
    with exit_on_user_error():
        html = write_report(Path(run_dir), args.seed, before)
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
        for label, d in summary["dimensions"].items():
            ci = "" if d["ci_low"] is None else f" [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
            print(f"{label:>20}: {d['start']:.3f} -> {d['end']:.3f} ({d['change']:+.3f}{ci}) {d['verdict']}")
        for t in summary["tradeoffs"]:
            print(f"trade-off: {t['improved']} improved while {t['regressed']} regressed")
        for name, a in summary["alerts"].items():
            print(f"alert {name}: steps {a['first_step']}-{a['last_step']} ({a['steps']} flagged)")
        if not summary["dimensions"]:
            print("no held-out evaluation in this run: no dimensions to report")
        print(f"report: {html}")


if __name__ == "__main__":
    main()
