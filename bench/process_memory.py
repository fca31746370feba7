"""What the memory benches share: run a command and measure the peak memory of its whole process tree.

Two figures per run, both in MiB:

- ``tree_peak_mib``: the largest sum of RSS over the process and all its descendants (verifier
  workers, a GGUF import, ...), polled from ``/proc`` every ``interval`` seconds. Pages shared
  between processes count once per process, and a spike shorter than the interval can be missed.
- ``largest_mib``: the kernel's own peak RSS (``ru_maxrss``) of the largest single process in the
  tree, from ``wait4`` on this child: exact, never missed, but one process only.
- ``peak_mib``: the larger of the two (the tree's peak is at least its largest process's): the figure.

Also ``load()``: the machine's load averages as one printable string (times on a shared
machine mean little without it).
"""
from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

__all__ = ["run_measured", "tree_rss_mib", "load"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def load() -> str:
    """``load 1/5/15 min: a b c`` from /proc/loadavg."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load {one} {five} {fifteen}"


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the name may hold spaces and parentheses
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree_rss_mib(root: int) -> float:
    """The summed RSS of ``root`` and its descendants, now."""
    tree, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(tree.get(pid, []))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass  # exited between the listing and the read
    return total / 2**20


def run_measured(cmd: list[str], env: Optional[dict] = None, cwd: Optional[Path] = None, interval: float = 0.1,
                 stdout=None, stderr=None) -> dict:
    """Run ``cmd`` to its end; returns ``returncode``, ``wall_s``, ``tree_peak_mib``, ``largest_mib``, ``peak_mib``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=stdout, stderr=stderr)
    peak, stop = [0.0], threading.Event()

    def poll() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss_mib(proc.pid))
            stop.wait(interval)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    _, status, usage = os.wait4(proc.pid, 0)
    stop.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    largest = usage.ru_maxrss / 1024
    return {"returncode": proc.returncode, "wall_s": time.perf_counter() - start, "tree_peak_mib": peak[0],
            "largest_mib": largest, "peak_mib": max(peak[0], largest)}


def measured_stage(name: str, cmd: list[str], run_dir: Path, log: Path, env: Optional[dict] = None,
                   cwd: Optional[Path] = None) -> tuple[dict, list[dict]]:
    """One training command run to its end with its output in ``log``, measured (`run_measured`), the machine's load
    read before and after; exits with the log's tail when it fails. Returns (the measures plus ``load_start``,
    ``load_end``, ``log`` and ``summary`` (RUN/summary.json), the run's step rows of metrics.jsonl)."""
    import json
    import sys

    load_start = load()
    print(f"-- {name}: rlvr-train {' '.join(cmd[3:])} ({load_start})", flush=True)
    with open(log, "w") as out:
        r = run_measured(cmd, env=env, cwd=cwd, stdout=out, stderr=out)
    if r["returncode"]:
        sys.exit(f"{name}: rlvr-train failed (exit {r['returncode']}); log: {log}\n" + log.read_text()[-3000:])
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    r.update({"summary": json.loads((run_dir / "summary.json").read_text()), "load_start": load_start,
              "load_end": load(), "log": str(log)})
    return r, [x for x in rows if "time/step" in x]
