"""Math-Verify's own published regression cases, fetched at bench time.

Math-Verify's sdist on PyPI ships its ``tests/`` directory. Nothing of it is stored in
this repository: ``fetch_sdist`` downloads and unpacks it under ``bench/.cache/``
(git-ignored), and ``collect_cases`` reads the cases out of its test modules.

How the cases are collected
---------------------------
Each test module is imported (with a private ``tests`` package pointing at the
sdist's ``tests/`` so their ``from tests.test_all import ...`` lines resolve), and the
``pytest.mark.parametrize`` marks of every ``test_*`` function are read. A row is a
case when its argument names include ``gold`` and ``pred``; the verdict is the
``expected`` (or ``result``) argument. Other arguments (``precision``, ``strict``,
``allow_set_relation_comp``) are kept in ``params`` but NOT applied: the comparison we
report is Math-Verify with its DEFAULT settings, ``verify(parse(gold), parse(pred))``.

For math-verify 0.9.0 this gives 275 (gold, pred, expected) rows from 20 test
functions. The only other parametrized test, ``test_string_extraction.py``, has no
gold (it checks ``StringExtractionConfig`` letter extraction) and yields no rows.
Cross-check: ``pytest --collect-only tests`` in the unpacked sdist collects 291 items,
i.e. these 275, the 7 letter-extraction rows and 9 tests without parameters.

"Non-multiple-choice" drops the 5 rows whose gold answer is a lone answer letter
A-E (bare, in ``\\text{}``/``\\mathrm{}``, in parentheses or ``\\boxed{}``):
``test_math_extraction_additional_cases`` ``\\text{C}`` vs ``\\text{(C)}`` and
``\\text{E}`` vs ``E``, and ``test_numina_cases`` ``\\text{e}`` vs ``e``, ``\\text{E}``
vs ``E``, ``d`` vs ``\\text{E}``. That leaves N = 270 cases. Rows are kept as they are
even where two rows share a pair and differ only in a non-default parameter (the
``strict`` and ``allow_set_relation_comp`` tests), so no grader can score 270/270.

Run ``python bench/mv_cases.py`` to list every case with its id.
"""
from __future__ import annotations

import importlib.util
import itertools
import re
import subprocess
import sys
import tarfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MV_VERSION = "0.9.0"
CACHE = Path(__file__).resolve().parent / ".cache"
EXPECTED_ALL, EXPECTED_NON_MC = 275, 270  # for math-verify 0.9.0

_LETTER_STRIP = re.compile(r"\\(?:text|textbf|mathrm|mbox|boxed)|\\\(|\\\)|[\s${}().]")


@dataclass(frozen=True)
class MVCase:
    id: str  # module::function[index], as pytest would name it
    gold: str
    pred: str
    expected: int
    params: dict[str, Any] = field(default_factory=dict)  # non-default args, not applied

    @property
    def multiple_choice(self) -> bool:
        return is_choice_letter(self.gold)


def is_choice_letter(answer: str) -> bool:
    """True when ``answer`` is just an answer letter A-E once wrappers are removed."""
    return re.fullmatch(r"[A-Ea-e]", _LETTER_STRIP.sub("", answer)) is not None


def fetch_sdist(version: str = MV_VERSION, cache: Path = CACHE) -> Path:
    """Download and unpack the math-verify sdist once; return the unpacked root."""
    root = cache / f"math_verify-{version}"
    if (root / "tests").is_dir():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"math_verify-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
             f"math-verify=={version}", "-d", str(cache)],
            check=True, stdout=subprocess.DEVNULL,
        )
    with tarfile.open(archive) as tar:
        try:
            tar.extractall(cache, filter="data")
        except TypeError:  # Python < 3.11.4 has no extraction filters
            tar.extractall(cache)
    return root


def _import_test_modules(tests_dir: Path) -> list[types.ModuleType]:
    """Import every tests/test_*.py with ``tests`` bound to the sdist's directory."""
    saved = {k: v for k, v in sys.modules.items() if k == "tests" or k.startswith("tests.")}
    for k in saved:
        del sys.modules[k]
    package = types.ModuleType("tests")
    package.__path__ = [str(tests_dir)]  # type: ignore[attr-defined]
    sys.modules["tests"] = package
    modules = []
    try:
        for path in sorted(tests_dir.glob("test_*.py")):
            name = f"tests.{path.stem}"
            if name not in sys.modules:
                spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[name] = module
                spec.loader.exec_module(module)  # type: ignore[union-attr]
            modules.append(sys.modules[name])
    finally:
        for k in [k for k in sys.modules if k == "tests" or k.startswith("tests.")]:
            del sys.modules[k]
        sys.modules.update(saved)
    return modules


def _parametrized_rows(function: Any) -> list[dict[str, Any]]:
    """The argument dicts of a test function's (possibly stacked) parametrize marks."""
    tables = []
    for mark in getattr(function, "pytestmark", []):
        if mark.name != "parametrize":
            continue
        argnames = mark.args[0]
        names = [n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else list(argnames)
        rows = []
        for values in mark.args[1]:
            values = getattr(values, "values", values)  # pytest.param(...) -> ParameterSet
            values = values if len(names) > 1 else (values,)
            rows.append(dict(zip(names, values)))
        tables.append(rows)
    if not tables:
        return []
    return [dict(itertools.chain.from_iterable(d.items() for d in combo)) for combo in itertools.product(*tables)]


def collect_cases(root: Path | None = None) -> list[MVCase]:
    """Every (gold, pred, expected) parametrized row of Math-Verify's tests, in file order."""
    root = root or fetch_sdist()
    cases = []
    for module in _import_test_modules(root / "tests"):
        short = module.__name__.split(".", 1)[1] + ".py"
        for name, function in vars(module).items():
            if not (name.startswith("test_") and callable(function)):
                continue
            if getattr(function, "__module__", None) != module.__name__:
                continue  # imported from another module (e.g. compare_strings helpers)
            for index, row in enumerate(_parametrized_rows(function)):
                if "gold" not in row or "pred" not in row:
                    continue
                expected = row.get("expected", row.get("result"))
                params = {k: v for k, v in row.items() if k not in ("gold", "pred", "expected", "result")}
                cases.append(MVCase(f"{short}::{name}[{index}]", str(row["gold"]), str(row["pred"]), int(expected), params))
    return cases


def non_multiple_choice(cases: list[MVCase]) -> list[MVCase]:
    return [c for c in cases if not c.multiple_choice]


def load(version: str = MV_VERSION) -> tuple[list[MVCase], list[MVCase]]:
    """(all cases, the non-multiple-choice ones), with a loud note when counts drift."""
    cases = collect_cases(fetch_sdist(version))
    kept = non_multiple_choice(cases)
    if version == "0.9.0" and (len(cases), len(kept)) != (EXPECTED_ALL, EXPECTED_NON_MC):
        print(f"WARNING: expected {EXPECTED_ALL} rows / {EXPECTED_NON_MC} non-MC, got {len(cases)} / {len(kept)}", file=sys.stderr)
    return cases, kept


if __name__ == "__main__":
    all_cases, kept = load()
    for case in all_cases:
        tag = "MC  " if case.multiple_choice else "    "
        print(f"{tag}{case.id}  exp={case.expected}  gold={case.gold[:60]!r}  pred={case.pred[-60:]!r}  {case.params or ''}")
    print(f"{len(all_cases)} gold/pred rows; {len(all_cases) - len(kept)} multiple-choice dropped; N = {len(kept)}")
