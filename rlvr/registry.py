"""Name -> implementation tables for the trainer's pluggable parts.

Advantage estimators, losses, rollout engines, prompt sources and learner backends each
keep one `Registry`; a lookup of an unknown name fails with the config key and every
registered name, so the fix is in the message.
"""
from __future__ import annotations

from typing import Callable, Generic, Mapping, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """A dict of named implementations for the config key ``key`` (e.g. ``algorithm.loss``)."""

    def __init__(self, key: str, items: Mapping[str, T] | None = None) -> None:
        super().__init__(items or {})
        self.key = key

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: make the decorated function or class available as ``name``."""

        def deco(item: T) -> T:
            self[name] = item
            return item

        return deco

    def lookup(self, name: str) -> T:
        if name not in self:
            raise KeyError(f"unknown {self.key} {name!r}; registered: {', '.join(sorted(self))}")
        return self[name]
