"""Name -> verifier lookup.

Built-in verifiers register themselves with ``@register("name")``. Third-party
verifiers arrive through the entry-point group ``rlvr.verifiers``::

    [project.entry-points."rlvr.verifiers"]
    my_task = "my_pkg.verifier:MyVerifier"

``get_verifier(name, **options)`` builds one; an unknown name is a ``KeyError``
whose message lists every known name.
"""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable, TypeVar

from verifiers.base import Verifier

__all__ = ["register", "get_verifier", "available_verifiers", "ENTRY_POINT_GROUP", "UnknownVerifierError"]

ENTRY_POINT_GROUP = "rlvr.verifiers"
# Modules whose import registers the built-in verifiers.
_BUILTIN_MODULES = ("verifiers.math", "verifiers.simple", "verifiers.code", "verifiers.preference",
                    "verifiers.judge")

_REGISTRY: dict[str, Callable[..., Verifier]] = {}
_builtins_loaded = False

T = TypeVar("T")


class UnknownVerifierError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


def register(name: str) -> Callable[[T], T]:
    """Class or factory decorator: make it available as ``get_verifier(name)``."""

    def deco(factory: T) -> T:
        existing = _REGISTRY.get(name)
        if existing is not None and existing is not factory:
            raise ValueError(f"verifier name {name!r} is already registered by {existing!r}")
        _REGISTRY[name] = factory  # type: ignore[assignment]
        if isinstance(factory, type) and not getattr(factory, "name", ""):
            factory.name = name  # type: ignore[attr-defined]
        return factory

    return deco


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def _plugin_entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_verifiers() -> list[str]:
    """Every name ``get_verifier`` accepts: built-ins, registered ones and plugins."""
    _load_builtins()
    return sorted(set(_REGISTRY) | set(_plugin_entry_points()))


def get_factory(name: str) -> Callable[..., Verifier]:
    _load_builtins()
    if name in _REGISTRY:
        return _REGISTRY[name]
    plugins = _plugin_entry_points()
    if name in plugins:
        factory = plugins[name].load()
        _REGISTRY.setdefault(name, factory)
        if isinstance(factory, type) and not getattr(factory, "name", ""):
            factory.name = name  # type: ignore[attr-defined]
        return factory
    known = ", ".join(available_verifiers()) or "(none)"
    raise UnknownVerifierError(f"unknown verifier {name!r}; known verifiers: {known}")


def get_verifier(name: str, **options: Any) -> Verifier:
    """Build the verifier registered as ``name`` with the given options."""
    return get_factory(name)(**options)
