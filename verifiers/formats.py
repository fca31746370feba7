"""Dataset formats: the row shapes of the standard datasets, read without a conversion script.

A format turns one row of a dataset, exactly as it is published, into what the rest of the
project needs: the prompt text, the reference its verifier checks, the verifier it declares,
and the SFT target (a reference solution) where the dataset has one. One registry serves
every command that reads rows: ``rlvr-verify --format NAME`` and ``data.format`` of the
trainer's stages.

    gsm8k      question, answer ("...<<48/2=24>>24...\\n#### 72")      -> math; reference "72"
    math       problem, solution ("... \\boxed{3}"), answer? (MATH-500) -> math; reference the answer (or solution)
    humaneval  prompt, test, entry_point, canonical_solution?         -> code (assert: check(entry_point));
               the prompt is put before the completion, so a body or a whole function both run
    mbpp       text (or prompt), test_list, test_setup_code?, test_imports?, code? -> code (assert); the setup
               code and imports run before the solution, visible to it and to the tests
    apps       question, input_output (JSON: inputs/outputs, fn_name?), starter_code?, solutions? -> code;
               TACO rows have the same shape. Call-based outputs that APPS wrapped in a one-element
               list also match that element; stdio output is compared line by line (trailing spaces
               and leading/trailing blank lines ignored), numbers as numbers within 1e-6 relative
    generic    prompt (or messages), reference                        -> the row's own verifier

``auto`` (`detect_format`) looks at a file's columns: where the generic columns are present
it keeps them; otherwise it picks the one format whose columns the file has, says why, and
refuses an ambiguous match, naming the candidates. Adding a format is one `register_format`
call (docs/verify.md).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

from verifiers.math.extract import hash_final_answer

__all__ = ["Format", "FormatError", "FORMATS", "register_format", "get_format", "detect_format", "GENERIC",
           "APPS_FLOAT_TOLERANCE"]

Row = Mapping[str, Any]
GENERIC = "generic"
APPS_FLOAT_TOLERANCE = 1e-6  # relative (absolute below 1): numbers in APPS/TACO stdout compared as numbers


class FormatError(ValueError):
    """A row or a file that does not fit the format asked for; the message names the fix."""


@dataclass(frozen=True)
class Format:
    name: str
    verifier: str  # the verifier the dataset's answers are checked by
    columns: tuple[tuple[str, ...], ...]  # each inner tuple: alternatives, one of which a row must have
    prompt: Callable[[Row], str]  # the user message
    reference: Callable[[Row], Any]  # what `verifier` checks a completion against
    target: Callable[[Row], Optional[str]]  # the SFT target, or None where the row has none
    description: str

    def matches(self, fields: Iterable[str]) -> bool:
        have = set(fields)
        return all(any(name in have for name in alternatives) for alternatives in self.columns)

    def required(self) -> str:
        return ", ".join(" or ".join(alternatives) for alternatives in self.columns)


FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    """Make ``fmt`` available by its name to `get_format`, `detect_format` and every command."""
    FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise FormatError(f"unknown format {name!r}; known formats: auto, {', '.join(sorted(FORMATS))}")
    return FORMATS[name]


def detect_format(fields: Iterable[str], reference_field: str = "reference") -> tuple[Format, str]:
    """(format, why) for a file with these columns: the generic shape where the reference column is there,
    else the one registered format whose columns all are; ambiguity and no match are `FormatError`s naming
    the fix."""
    have = list(fields)
    if reference_field in have:
        return FORMATS[GENERIC], f"the file has a {reference_field!r} column"
    found = [fmt for name, fmt in FORMATS.items() if name != GENERIC and fmt.matches(have)]
    if len(found) == 1:
        return found[0], f"columns {found[0].required()} and no {reference_field!r} column"
    if found:
        raise FormatError(f"the columns ({', '.join(have)}) fit several formats: {', '.join(f.name for f in found)}; "
                          f"choose one with --format / data.format")
    raise FormatError(f"no format fits the columns ({', '.join(have)}) and there is no {reference_field!r} column; "
                      f"choose a format ({', '.join(sorted(FORMATS))}) or name the columns "
                      f"(--reference-field / data.reference_field)")


def _field(row: Row, *names: str) -> Any:
    for name in names:
        if row.get(name) is not None:
            return row[name]
    raise FormatError(f"the row has none of the fields {', '.join(names)} (fields: {', '.join(row)})")


def _json(value: Any, name: str) -> Any:
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise FormatError(f"field {name!r} is not JSON: {exc}") from None
    return value


# ---- GSM8K ----------------------------------------------------------------------------------
_ANNOTATION = re.compile(r"<<[^<>\n]*>>")  # GSM8K's calculator annotations: <<48/2=24>>


def gsm8k_answer(solution: str) -> str:
    """The final answer after the last ``####`` line (the whole text when there is none)."""
    final = hash_final_answer(str(solution))
    return final if final is not None else str(solution).strip()


register_format(Format(
    "gsm8k", "math", (("question",), ("answer",)),
    prompt=lambda row: str(_field(row, "question")),
    reference=lambda row: gsm8k_answer(_field(row, "answer")),
    target=lambda row: _ANNOTATION.sub("", str(_field(row, "answer"))),
    description="GSM8K: question, answer (worked solution ending '#### N'; <<...>> annotations dropped "
                "from the SFT target)"))

# ---- MATH (and MATH-500) --------------------------------------------------------------------
register_format(Format(
    "math", "math", (("problem",), ("solution", "answer")),
    prompt=lambda row: str(_field(row, "problem")),
    reference=lambda row: str(_field(row, "answer", "solution")),
    target=lambda row: str(row["solution"]) if row.get("solution") is not None else None,
    description="MATH: problem, solution with \\boxed{} (MATH-500's answer column preferred when present)"))


# ---- HumanEval --------------------------------------------------------------------------------
def _humaneval_prompt(row: Row) -> str:
    return ("Complete the following Python function. Answer with the whole function in a ```python block.\n\n"
            f"```python\n{_field(row, 'prompt')}```")


register_format(Format(
    "humaneval", "code", (("prompt",), ("test",), ("entry_point",)),
    prompt=_humaneval_prompt,
    reference=lambda row: {"kind": "assert", "test": str(_field(row, "test")),
                           "entry_point": str(_field(row, "entry_point")), "prefix": str(_field(row, "prompt"))},
    target=lambda row: (f"```python\n{row['prompt']}{row['canonical_solution']}```"
                        if row.get("canonical_solution") is not None else None),
    description="HumanEval: prompt (function stub), test (def check(candidate)), entry_point"))


# ---- MBPP (original and sanitized) ----------------------------------------------------------
def _mbpp_setup(row: Row) -> str:
    imports = row.get("test_imports") or []
    parts = [*(str(i) for i in imports), str(row.get("test_setup_code") or "")]
    return "\n".join(p for p in parts if p.strip())


def _mbpp_tests(row: Row) -> list[str]:
    tests = _json(_field(row, "test_list"), "test_list")
    if not isinstance(tests, list) or not tests:
        raise FormatError("field 'test_list' must be a non-empty list of assert statements")
    return [str(t) for t in tests]


def _mbpp_prompt(row: Row) -> str:
    tests = "\n".join(_mbpp_tests(row))
    return f"{_field(row, 'text', 'prompt')}\nYour code should pass these tests:\n\n{tests}"


register_format(Format(
    "mbpp", "code", (("text", "prompt"), ("test_list",)),
    prompt=_mbpp_prompt,
    reference=lambda row: {"kind": "assert", "tests": _mbpp_tests(row), "prefix": _mbpp_setup(row)},
    target=lambda row: f"```python\n{row['code']}\n```" if row.get("code") is not None else None,
    description="MBPP: text (or prompt), test_list, test_setup_code / test_imports (run before the solution)"))


# ---- APPS and TACO ------------------------------------------------------------------------------
def _apps_reference(row: Row) -> dict[str, Any]:
    io = _json(_field(row, "input_output"), "input_output")
    if not isinstance(io, Mapping) or "inputs" not in io or "outputs" not in io:
        raise FormatError("field 'input_output' must hold {'inputs': [...], 'outputs': [...]} (and 'fn_name' "
                          "for call-based problems)")
    ref = {"inputs": io["inputs"], "outputs": io["outputs"], "float_tolerance": APPS_FLOAT_TOLERANCE}
    if io.get("fn_name"):
        ref["fn_name"] = io["fn_name"]
    return ref


def _apps_prompt(row: Row) -> str:
    starter = str(row.get("starter_code") or "")
    io = _json(row.get("input_output") or "{}", "input_output")
    call = isinstance(io, Mapping) and bool(io.get("fn_name"))
    how = ("Use Call-Based format: complete the starter code." if call
           else "Use Standard Input format: read from standard input and print the answer.")
    text = f"{_field(row, 'question')}\n\n{how}"
    return f"{text}\n\n```python\n{starter}\n```" if starter.strip() else text


def _apps_target(row: Row) -> Optional[str]:
    solutions = _json(row.get("solutions") or "[]", "solutions")
    return f"```python\n{solutions[0]}\n```" if isinstance(solutions, list) and solutions else None


register_format(Format(
    "apps", "code", (("question",), ("input_output",)),
    prompt=_apps_prompt, reference=_apps_reference, target=_apps_target,
    description="APPS / TACO: question, input_output (stdio or fn_name), starter_code, solutions"))

# ---- generic: the project's own columns -----------------------------------------------------------
register_format(Format(
    GENERIC, "", (("prompt", "messages", "completion"), ("reference",)),
    prompt=lambda row: str(_field(row, "prompt")),
    reference=lambda row: row.get("reference"),
    target=lambda row: row.get("solution"),
    description="the generic shape: prompt (or chat messages) and reference, the verifier per row or per run"))
