"""A tiny named registry of factories, extended by third parties through entry points.

Embedders and answer backends each have one. Built-ins register at import;
a package adds its own by declaring an entry point in the registry's group,
e.g. ``[project.entry-points."careerbot.backends"] mine = "pkg.module:factory"``.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

F = TypeVar("F", bound=Callable[..., object])


class Registry(Generic[F]):
    """Maps a name to a factory. ``get`` loads entry points on first miss."""

    def __init__(self, *, kind: str, group: str, setting: str) -> None:
        self.kind = kind
        self.group = group
        self.setting = setting
        self._factories: dict[str, F] = {}
        self._entry_points_loaded = False

    def register(self, name: str, factory: F) -> F:
        self._factories[name] = factory
        return factory

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name not in self._factories:
                self._factories[ep.name] = ep.load()

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._factories)

    def get(self, name: str) -> F:
        if name not in self._factories:
            self._load_entry_points()
        try:
            return self._factories[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"{self.setting}: unknown {self.kind} '{name}' (known: {known})") from None
