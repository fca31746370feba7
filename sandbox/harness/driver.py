"""Harness drivers: the part of a test harness that runs inside the sandboxed program.

A driver runs after the program's top level, in the same process, and writes one JSON
record per line on the private report descriptor (never on stdout):
``{"t": token, "case": i, ...}`` per case and ``{"t": token, "done": true}`` at the end.
The parent ignores lines without the run's token and treats a missing ``done`` as
"the program exited before its tests finished".

Drivers only ever see test *inputs*; expected values stay in the parent (``call``).
The exception is ``assert``, whose test code contains its own expectations; there
every value the candidate returns is first rebuilt from exact builtin types, so an
object that claims to equal everything reaches the asserts as an opaque value that
equals nothing.

All references a driver needs are bound when this module is imported, before any
program code runs, so a program that rebinds ``json.dumps`` or ``os.write`` does not
change them. A program written to attack this harness specifically (find the token in
memory and write forged records) is outside what an in-process driver can stop; the
``stdio`` and ``call`` harnesses do not depend on that secret for correctness.
"""
from __future__ import annotations

import functools
import json
import os
import traceback
from typing import Any, Callable

__all__ = ["run_driver", "to_plain", "Opaque", "DRIVERS"]

_dumps, _loads, _write, _type, _repr = json.dumps, json.loads, os.write, type, repr
_PLAIN_ATOMS = (type(None), bool, int, float, complex, str, bytes)
_MAX_DEPTH = 200


class Opaque:
    """Stands in for a returned value that is not made of exact builtin types."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def _refuse(self, *_: Any) -> Any:
        raise TypeError(f"the candidate returned a {self.type_name}, not a builtin value")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __bool__ = __len__ = __iter__ = _refuse  # type: ignore
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<opaque {self.type_name}>"


def to_plain(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` rebuilt from exact builtin types, or ``Opaque`` where impossible.

    Subclasses of builtins (``class S(str): __eq__ = lambda *a: True``) are not exact
    and become ``Opaque``.
    """
    kind = _type(value)
    if depth > _MAX_DEPTH:
        return Opaque("too deeply nested value")
    if kind in _PLAIN_ATOMS:
        return value
    if kind in (list, tuple, set, frozenset):
        items = [to_plain(v, depth + 1) for v in value]
        if kind in (set, frozenset) and any(_type(i) is Opaque for i in items):
            return Opaque(f"{kind.__name__} of non-builtin values")
        return kind(items)
    if kind is dict:
        pairs = [(to_plain(k, depth + 1), to_plain(v, depth + 1)) for k, v in value.items()]
        if any(_type(k) is Opaque for k, _ in pairs):
            return Opaque("dict with non-builtin keys")
        return dict(pairs)
    return Opaque(kind.__name__)


def _to_json(value: Any) -> Any:
    """JSON form of a plain value; tuples become lists, anything else raises TypeError."""
    plain = to_plain(value)

    def encode(v: Any) -> Any:
        kind = _type(v)
        if kind in (list, tuple):
            return [encode(x) for x in v]
        if kind is dict:
            if not all(_type(k) is str for k in v):
                raise TypeError("dict keys must be strings to compare as JSON")
            return {k: encode(x) for k, x in v.items()}
        if kind in (type(None), bool, int, float, str):
            return v
        raise TypeError(f"cannot compare a {getattr(v, 'type_name', kind.__name__)} as a JSON value")
    return encode(plain)


def _emit(fd: int, token: str, record: dict[str, Any]) -> None:
    record["t"] = token
    data = (_dumps(record, allow_nan=True, default=_repr) + "\n").encode()
    while data:
        data = data[_write(fd, data):]


def _error(exc: BaseException) -> str:
    lines = traceback.format_exception_only(_type(exc), exc)
    return "".join(lines).strip()[-2000:]


def _resolve(namespace: dict[str, Any], entry_point: str) -> Callable[..., Any]:
    if "." in entry_point:  # "Solution.twoSum": a fresh instance per call, as LeetCode does
        cls_name, method = entry_point.split(".", 1)
        cls = namespace[cls_name]
        return lambda *a, **k: getattr(cls(), method)(*a, **k)
    return namespace[entry_point]


def _drive_call(spec: dict[str, Any], namespace: dict[str, Any], emit: Callable[[dict], None]) -> None:
    fn = _resolve(namespace, spec["entry_point"])
    for index, case in enumerate(spec["cases"]):
        args = _loads(case["args"])
        kwargs = _loads(case.get("kwargs", "{}"))
        try:
            value = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - SystemExit in a case fails the case
            emit({"case": index, "error": _error(exc)})
            if spec.get("early_stop", True):
                return
            continue
        try:
            emit({"case": index, "value": _to_json(value)})
        except BaseException as exc:  # noqa: BLE001 - not made of builtin values: cannot be right
            emit({"case": index, "unserializable": _error(exc)})
            if spec.get("early_stop", True):
                return


def guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` whose every return value passes through ``to_plain``."""
    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        return to_plain(fn(*args, **kwargs))
    return guarded


def _drive_assert(spec: dict[str, Any], namespace: dict[str, Any], emit: Callable[[dict], None]) -> None:
    entry_point = spec.get("entry_point")
    candidate = guard(_resolve(namespace, entry_point)) if entry_point else None
    for index, test in enumerate(spec["tests"]):
        scope = dict(namespace)
        if entry_point and "." not in entry_point:
            scope[entry_point] = candidate
        try:
            exec(compile(test, f"<test {index}>", "exec"), scope)  # noqa: S102
            if spec.get("check") and entry_point:
                scope[spec["check"]](candidate)
            emit({"case": index, "ok": True})
        except BaseException as exc:  # noqa: BLE001
            emit({"case": index, "ok": False, "error": _error(exc)})
            if spec.get("early_stop", True):
                return


DRIVERS: dict[str, Callable[[dict[str, Any], dict[str, Any], Callable[[dict], None]], None]] = {
    "call": _drive_call,
    "assert": _drive_assert,
}


def run_driver(spec: dict[str, Any], namespace: dict[str, Any], report_fd: int) -> int:
    """Run the driver named by ``spec["kind"]``; returns the exit code for the process."""
    token = spec["token"]

    def emit(record: dict[str, Any]) -> None:
        _emit(report_fd, token, record)

    try:
        DRIVERS[spec["kind"]](spec, namespace, emit)
    except BaseException as exc:  # noqa: BLE001 - e.g. the entry point is missing
        emit({"fatal": _error(exc)})
        return 1
    emit({"done": True})
    return 0
