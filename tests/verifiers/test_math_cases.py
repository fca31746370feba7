"""The hand-written math case file: every case's verdict, one test per case.

Cases live in ``bench/cases/math_cases.jsonl`` (``id``, ``category``, ``completion``,
``reference``, ``expected``, ``note``, optional ``options`` for ``get_verifier``).
``python bench/math_accuracy.py --own-only`` prints the same results per category.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from verifiers import get_verifier

CASE_FILE = Path(__file__).resolve().parents[2] / "bench" / "cases" / "math_cases.jsonl"
CASES = [json.loads(line) for line in CASE_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]


@lru_cache(maxsize=None)
def _verifier(options_json: str):
    return get_verifier("math", **json.loads(options_json))


def test_case_file_is_well_formed():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 200
    by_category: dict[str, set[int]] = {}
    for case in CASES:
        assert case["expected"] in (0, 1), case["id"]
        by_category.setdefault(case["category"], set()).add(case["expected"])
    one_sided = [cat for cat, verdicts in by_category.items() if verdicts != {0, 1}]
    assert not one_sided, f"categories without both a correct and a wrong case: {one_sided}"


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_math_case(case):
    verifier = _verifier(json.dumps(case.get("options") or {}, sort_keys=True))
    verdict = verifier.verify(completion=case["completion"], reference=case["reference"])
    got = 1 if verdict.reward > 0 else 0
    assert got == case["expected"], (
        f"{case['note']}: completion={case['completion']!r} reference={case['reference']!r} "
        f"expected {case['expected']}, got reward={verdict.reward} reason={verdict.reason} details={verdict.details}"
    )
