"""Hostile cells through the rollout's tool path end as error results in their own rollout; the batch's
benign cells are answered; nothing is left running (bench/tool_safety.py runs the whole set)."""
from __future__ import annotations

import pytest

from tests.sandbox.support import refused

pytestmark = pytest.mark.skipif(bool(refused()), reason=f"sandbox refuses to run on this host: {refused()}")

SMALL_SET = ("fork bomb", "kill -1", "endless loop", "1 GB string printed", "print forever")


def test_hostile_cells_are_contained_and_the_batch_goes_on():
    from bench.tool_safety import run

    report = run(workers=2, timeout_s=2.0, formats=("fenced",), cells=list(SMALL_SET), verbose=False)
    rows = {name: (status, text, ok) for _, name, status, text, ok in report["rows"]}
    assert [(name, status, text[-200:]) for name, (status, text, ok) in rows.items() if not ok] == []
    assert rows["fork bomb"][0] == rows["endless loop"][0] == "timeout"
    assert rows["1 GB string printed"][0] == rows["print forever"][0] == "error"
    assert "output limit" in rows["print forever"][1] and len(rows["print forever"][1]) <= 1024
    assert {name for name in rows if name.startswith("benign")} == {"benign: arithmetic", "benign: loop",
                                                                    "benign: stdlib", "benign: files in its dir"}
    assert report["leftovers"] == 0
