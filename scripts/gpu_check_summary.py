"""The GPU check's summary (scripts/gpu_check.sh): one row per configuration from its run's metrics.jsonl.

Input: the check's runs.tsv, one line per configuration: name, ran|skipped, exit status, seconds,
run directory, log, the failure's reason, the configuration's own overrides (tab-separated).
Figures: step time and generated tokens/s are means over the steps after the first (its CUDA
warm-up is not the steady state; with one step, that step); peak GPU memory is the largest
``memory/gpu_peak_gib`` of any step; the log-prob gap is the mean ``rollout/logprob_diff_mean``
(|learner - engine| per completion token) and the largest ``rollout/logprob_diff_max``;
``updates`` counts the steps that trained (``groups_trained`` > 0).

Prints the table; writes it as JSON (``--json``, and ``--out-dir/gpu_check.json`` with the runs'
log tails beside it in ``gpu_check_logs.txt``). Exit status 1 when a configuration that ran failed.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import re
import sys
from pathlib import Path
from typing import Any, Optional

FIELDS = ("name", "status", "exit", "seconds", "run_dir", "log", "reason", "overrides")
PACKAGES = ("torch", "transformers", "peft", "accelerate", "hydra-core", "deepspeed", "vllm")


def mean(values: list[float]) -> Optional[float]:
    return sum(values) / len(values) if values else None


def figures(run_dir: Path) -> dict[str, Any]:
    """The configuration's figures from its training rows (evaluation rows have no ``time/step``)."""
    path = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    train = [r for r in rows if "time/step" in r]
    steady = train[1:] or train
    peaks = [r["memory/gpu_peak_gib"] for r in train if "memory/gpu_peak_gib" in r]
    diffs = [r["rollout/logprob_diff_max"] for r in train if "rollout/logprob_diff_max" in r]
    return {"steps": len(train), "updates": sum(1 for r in train if r.get("groups_trained", 0) > 0),
            "step_s": mean([r["time/step"] for r in steady]),
            "tokens_per_s": mean([r["tokens_per_s"] for r in steady if "tokens_per_s" in r]),
            "gpu_peak_gib": max(peaks) if peaks else None,
            "logprob_diff_mean": mean([r["rollout/logprob_diff_mean"] for r in train
                                       if "rollout/logprob_diff_mean" in r]),
            "logprob_diff_max": max(diffs) if diffs else None,
            "zero_variance_frac": mean([r["zero_variance_frac"] for r in train if "zero_variance_frac" in r]),
            "metrics": train}


def failure_reason(log: Path) -> str:
    """The line that says why a run failed: rlvr's one-line ``error:``, Hydra's refused override, the last
    exception (not torchrun's wrapper), else the log's last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()] \
        if log.is_file() else []
    said = [line for line in lines if line.startswith("error:")]
    hydra = [line for line in lines if line.startswith(("Could not override", "Key '"))]
    raised = [line for line in lines if re.match(r"[\w.]*(Error|Exception)\b", line) and "ChildFailedError" not in line]
    for found in (said[:1], [" ".join(hydra[:2])] if hydra else [], raised[-1:], lines[-1:]):
        if found:
            return found[0][:300]
    return f"no log at {log}"


def read_runs(tsv: Path) -> list[dict[str, Any]]:
    runs = []
    for line in tsv.read_text().splitlines():
        row = dict(zip(FIELDS, line.split("\t")))
        if row.get("status") == "ran":
            row.update(figures(Path(row["run_dir"])))
            row["status"] = "ok" if row["exit"] == "0" else "failed"
            if row["status"] == "failed" and not row.get("reason"):
                row["reason"] = failure_reason(Path(row["log"]))
        runs.append(row)
    return runs


def cell(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(runs: list[dict[str, Any]]) -> str:
    head = f"{'configuration':<12} {'status':<8} {'s/step':>7} {'tok/s':>8} {'peak GiB':>9} {'lp gap mean':>12} " \
           f"{'lp gap max':>11} {'updates':>8}"
    lines = [head, "-" * len(head)]
    for r in runs:
        lines.append(f"{r['name']:<12} {r['status']:<8} {cell(r.get('step_s'), '.2f'):>7} "
                     f"{cell(r.get('tokens_per_s'), '.0f'):>8} {cell(r.get('gpu_peak_gib'), '.2f'):>9} "
                     f"{cell(r.get('logprob_diff_mean'), '.2e'):>12} {cell(r.get('logprob_diff_max'), '.2e'):>11} "
                     f"{str(r.get('updates', '-')) + '/' + str(r.get('steps', '-')):>8}")
        if r["status"] != "ok" and r.get("reason"):
            lines.append(f"{'':<12} {r['reason'][:200]}")
    lines.append("s/step, tok/s (generated): means of the steps after the first; peak GiB: the largest step's "
                 "torch.cuda.max_memory_allocated; lp gap: |learner - engine| log-prob per completion token; "
                 "updates: steps that trained / steps")
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import torch

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "absent"
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {"device": device, "python": sys.version.split()[0], **{n: version(n) for n in PACKAGES}}


def log_tails(runs: list[dict[str, Any]], lines: int = 60) -> str:
    out = []
    for r in runs:
        log = Path(r.get("log", "-"))
        if log.is_file():
            out.append(f"==== {r['name']} ({log}) ====\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
    return "\n\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="?", help="the check's runs.tsv")
    parser.add_argument("--reason", type=Path, default=None, help="only print why the run with this log failed")
    parser.add_argument("--mode", default="gpu", help="gpu | cpu-dry-run")
    parser.add_argument("--part-a-seconds", type=int, default=None)
    parser.add_argument("--part-b", default="")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--out-dir", type=Path, default=None)
    args = parser.parse_args()
    if args.reason:
        print(failure_reason(args.reason))
        return 0
    runs = read_runs(args.runs)
    report = {"mode": args.mode, **environment(), "part_a_seconds": args.part_a_seconds, "configurations": runs,
              "part_b": args.part_b}
    if args.mode != "gpu":
        print("GPU_CHECK_CPU=1: a dry run on the CPU with tiny sizes; these figures say nothing about a GPU")
    print(f"device: {report['device']}; Part A: {args.part_a_seconds}s")
    print(table(runs))
    print(f"Part B: {args.part_b}")
    text = json.dumps(report, indent=1, default=str)
    for path in filter(None, [args.json, args.out_dir and args.out_dir / "gpu_check.json"]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"written: {path}")
    if args.out_dir:
        (args.out_dir / "gpu_check_logs.txt").write_text(log_tails(runs))
    return 1 if any(r["status"] == "failed" for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
