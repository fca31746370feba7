"""Helpers for the sandbox tests: layer-dependent skips and the leftover-process census."""
from __future__ import annotations

import os

import pytest

from sandbox import Program, SandboxPool, capabilities


def layer_active(name: str) -> bool:
    return bool(capabilities()[name]["active"])


def refused() -> str | None:
    """Why this host cannot run the sandbox safely at all (then every run-based test skips)."""
    from sandbox.isolation import refusal
    return refusal(frozenset(n for n, info in capabilities().items() if info["active"]))


def needs(*layers: str):
    """Skip (with the kernel's reason) unless every named layer is active here."""
    missing = [f"{n}: {capabilities()[n]['reason']}" for n in layers if not layer_active(n)]
    return pytest.mark.skipif(bool(missing), reason="isolation layer unavailable - " + "; ".join(missing))


def leftovers(pool: SandboxPool) -> list[int]:
    """Processes forked from this pool's workers that are not the workers themselves.

    A program forked from a warm worker inherits its command line, which names the
    worker's private directory, so this finds daemons wherever they were reparented.
    """
    roots = [w.tmp_root for w in pool._all]
    workers = set().union(*(w.pids for w in pool._all)) if pool._all else set()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in workers:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
        except OSError:
            continue
        if any(root in cmdline for root in roots):
            found.append(int(entry))
    return found


def python(source: str) -> Program:
    return Program("python", {"main.py": source.encode()})
