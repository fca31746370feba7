"""The degraded-host matrix (issue 14): every configuration contains every attack and
passes the HumanEval-style checks, or refuses to start with a reason - never runs
silently weaker than ``capabilities()`` reports.

Each configuration leaves some optional layers off, standing for a kind of host (see
``tests/sandbox/degraded.py``); "not root" runs the same check as an unprivileged uid.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sandbox import IsolationError, SandboxPool
from tests.sandbox.degraded import CONFIGS, check_config
from tests.sandbox.support import refused

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"), pytest.mark.timeout(300)]
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_UNPRIVILEGED_UID = 1_699_999  # owns no process on the host: a sandbox escape could harm nothing


def _assert_contained(report: dict, disable: tuple[str, ...]) -> None:
    if "refused" in report:
        assert report["refused"].startswith("refusing"), report["refused"]
        return
    assert report["failed"] == [] and report["contained"] == report["total"], report["failed"]
    assert report["leftovers"] == 0
    assert report["humaneval"] == report["humaneval_total"], report["humaneval_failures"]
    assert report["humaneval_wrong_passed"] == 0
    # never weaker than reported: the pool applies every active layer that was not disabled
    assert set(report["pool_layers"]) == set(report["active"]) - set(disable)


@pytest.mark.skipif(bool(refused()), reason=f"sandbox refuses this host: {refused()}")
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_configuration_contains_every_attack_or_refuses(name):
    _assert_contained(check_config(CONFIGS[name]), CONFIGS[name])


@pytest.mark.skipif(os.geteuid() != 0, reason="already unprivileged: the configurations above are the not-root row")
def test_not_root_contains_every_attack_or_refuses():
    code = f"import sys; sys.path.insert(0, {_ROOT!r}); from tests.sandbox.degraded import main_json; main_json()"
    out = subprocess.run([sys.executable, os.path.join(_ROOT, "tests", "sandbox", "unprivileged.py"),
                          str(_UNPRIVILEGED_UID), "--", "-c", code], capture_output=True, text=True, timeout=240,
                         cwd="/tmp")
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report.get("uid", _UNPRIVILEGED_UID) == _UNPRIVILEGED_UID
    _assert_contained(report, ())
    if "refused" not in report:
        assert "userns" in report["pool_layers"] and "pidns" in report["pool_layers"]


@pytest.mark.parametrize("disable, words", [(("landlock", "fsroot"), "filesystem boundary"),
                                            (("netns", "seccomp"), "network boundary")])
def test_a_plan_without_a_boundary_is_refused_naming_it(disable, words):
    with pytest.raises(IsolationError, match=words):
        SandboxPool(workers=1, disable=disable)
