"""Name -> implementation tables for the trainer's pluggable parts.

Advantage estimators, losses, rollout engines, learner backends, reward-source kinds
and prompt sources each keep one `Registry`; a lookup of an unknown name fails with the
config key and every registered name, so the fix is in the message.

An entry can be *lazy*: registered as ``"module:attribute"`` and imported on first
lookup. Engines and backends with heavy dependencies (vLLM, DeepSpeed) register this
way, so choosing ``rollout.engine=hf`` never imports vllm, yet ``validate`` can check
every name before anything is built.
"""
from __future__ import annotations

import importlib
from typing import Callable, Generic, Mapping, TypeVar, Union

from rlvr.errors import UserError

__all__ = ["Registry", "RegistryError"]

T = TypeVar("T")


class RegistryError(UserError, KeyError):
    """An unknown name; the message lists the registered ones."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class Registry(dict[str, Union[T, str]], Generic[T]):
    """A dict of named implementations for the config key ``key`` (e.g. ``algorithm.loss``)."""

    def __init__(self, key: str, items: Mapping[str, T | str] | None = None) -> None:
        super().__init__(items or {})
        self.key = key

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated function or class available as ``name``."""

        def deco(item: T) -> T:
            self[name] = item
            return item

        return deco

    def register_lazy(self, name: str, target: str) -> None:
        """Make ``"module:attribute"`` available as ``name``, imported only when looked up."""
        self.setdefault(name, target)

    def check(self, name: str) -> None:
        """Raise `RegistryError` for an unknown name without importing anything."""
        if name not in self:
            raise RegistryError(f"unknown {self.key} {name!r}; registered: {', '.join(sorted(self))}")

    def lookup(self, name: str) -> T:
        self.check(name)
        item = self[name]
        if isinstance(item, str):
            module, _, attr = item.partition(":")
            item = getattr(importlib.import_module(module), attr)
            self[name] = item
        return item  # type: ignore[return-value]
