"""The degraded-host matrix: each configuration's attack suite and HumanEval-style checks.

A configuration is the set of layers left off, standing for a kind of host:

- ``container``: no PID, network or mount namespaces (no CAP_SYS_ADMIN), so no tmpfs
  and no private root either;
- ``no-landlock``: a kernel older than 5.13, or Landlock not in the LSM list (RHEL 8);
- ``no-seccomp``: no seccomp filter (a kernel or container that forbids it);
- ``no-landlock-no-seccomp``: both, the case in which programs once lost ``import socket``.

``not-root`` runs the whole check as an unprivileged uid (see ``unprivileged``).
``check_config`` runs one configuration in this process and returns a JSON-able report.
"""
from __future__ import annotations

import os
import sys

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from bench.sandbox_adversarial import run_suite  # noqa: E402
from sandbox import IsolationError, SandboxPool, capabilities  # noqa: E402
from tests.sandbox.humaneval_style import PROBLEMS, score  # noqa: E402

CONFIGS = {
    "all-layers": (),
    "container": ("pidns", "netns", "tmpfs", "fsroot"),
    "no-landlock": ("landlock",),
    "no-seccomp": ("seccomp",),
    "no-landlock-no-seccomp": ("landlock", "seccomp"),
}


def check_config(disable: tuple[str, ...]) -> dict:
    """``{"refused": reason}``, or the suite's report plus HumanEval-style scores and the
    layers capabilities() reported active (so the caller can compare them)."""
    active = sorted(n for n, info in capabilities().items() if info["active"])
    report = run_suite(disable)
    if "refused" in report:
        return report
    try:
        with SandboxPool(workers=2, disable=disable) as pool:
            canonical, failures = score(pool)
            wrong, _ = score(pool, wrong=True)
            layers = list(pool.layers)
    except IsolationError as exc:  # pragma: no cover - the suite's pool started a moment ago
        return {"refused": str(exc)}
    report.update(active=active, pool_layers=layers, humaneval=canonical, humaneval_total=len(PROBLEMS),
                  humaneval_failures=failures, humaneval_wrong_passed=wrong, uid=os.geteuid())
    return report


def main_json() -> None:
    """Print ``check_config`` of every active layer as one JSON line (the not-root row)."""
    import json
    print(json.dumps(check_config(())))
