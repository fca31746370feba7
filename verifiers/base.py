"""The verifier contract: a completion and a reference in, a `Verdict` out.

A verifier is any object with ``verify(*, completion, reference, **fields) -> Verdict``.
Verifiers are pure and deterministic; they never raise for bad model output (an
unparseable answer is ``Verdict(0.0, "parse_error")``), and the runtime turns any
exception that does escape into a zero-reward verdict with reason ``error``.

Options are typed: a verifier class names a dataclass in ``Options``; keyword
options given to ``get_verifier`` are checked against its fields (unknown names are
errors that list the valid ones) and strings are coerced, so ``--opt tolerance=1e-6``
on the command line works the same as ``tolerance=1e-6`` in Python.
"""
from __future__ import annotations

import abc
import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Protocol, runtime_checkable

__all__ = ["Verdict", "Verifier", "BaseVerifier", "NoOptions", "OptionsError", "build_options"]


@dataclass(frozen=True)
class Verdict:
    """The result of checking one completion.

    reward:  the scalar reward, usually 0.0 or 1.0.
    reason:  a short code saying why (``correct``, ``wrong_answer``, ``no_answer``,
             ``parse_error``, ``timeout``, ``error``, ...); counted in metrics.
    details: free-form, JSON-serializable extras (the extracted answer, ...).
    """

    reward: float
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return self.reward > 0 and self.reason == "correct"

    def to_dict(self) -> dict[str, Any]:
        return {"reward": self.reward, "reason": self.reason, "details": self.details}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Verdict":
        return cls(float(data["reward"]), str(data["reason"]), dict(data.get("details") or {}))


@runtime_checkable
class Verifier(Protocol):
    """What the registry, the runtime and the trainer rely on."""

    def verify(self, *, completion: str, reference: Any, **fields: Any) -> Verdict: ...


class OptionsError(ValueError):
    """Raised when verifier options are unknown or have the wrong type."""


@dataclass(frozen=True)
class NoOptions:
    """A verifier without options."""


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    """Turn a command-line string into the annotated type; pass other values through."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], name) if len(inner) == 1 else value
    if not isinstance(value, str):
        if annotation is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    try:
        if annotation is bool:
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if annotation is int:
            return int(value)
        if annotation is float:
            return float(value)
        if origin in (tuple, list) or annotation in (tuple, list):
            items = [v.strip() for v in value.split(",") if v.strip()]
            return tuple(items) if (origin or annotation) is tuple else items
    except ValueError:
        raise OptionsError(f"option {name!r}: cannot read {value!r} as {getattr(annotation, '__name__', annotation)}") from None
    return value


def build_options(options_cls: type, given: Mapping[str, Any], owner: str) -> Any:
    """Instantiate ``options_cls`` from ``given``, rejecting unknown names."""
    fields_by_name = {f.name: f for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(given) - set(fields_by_name))
    if unknown:
        valid = ", ".join(sorted(fields_by_name)) or "(none)"
        raise OptionsError(f"verifier {owner!r} has no option(s) {', '.join(unknown)}; valid options: {valid}")
    hints = typing.get_type_hints(options_cls)
    values = {k: _coerce(v, hints.get(k, Any), k) for k, v in given.items()}
    try:
        return options_cls(**values)
    except (TypeError, ValueError) as exc:
        raise OptionsError(f"verifier {owner!r}: {exc}") from None


class BaseVerifier(abc.ABC):
    """Convenience base: typed options and a ``name``. Subclasses implement ``verify``."""

    name: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, **options: Any) -> None:
        self.options = build_options(self.Options, options, self.name or type(self).__name__)

    @abc.abstractmethod
    def verify(self, *, completion: str, reference: Any, **fields: Any) -> Verdict:
        """Score one completion; never raise on model output (see the module docstring)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"
