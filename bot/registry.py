"""A tiny named registry of factories, extended by third parties through entry points.

Embedders and answer backends each have one. Built-ins register at import;
a package adds its own by declaring an entry point in the registry's group,
e.g. ``[project.entry-points."careerbot.backends"] mine = "pkg.module:factory"``.

Plug-ins are imported one at a time, when their name is asked for: a broken one
(its import fails, or its factory raises) is one `ConfigError` line naming the
setting, the plug-in, its distribution and the error — and leaves every other
name working.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Generic, TypeVar

from .errors import CareerbotError, ConfigError

__all__ = ["Registry"]

F = TypeVar("F", bound=Callable[..., object])


def _one_line(exc: BaseException) -> str:
    """``ExcType: first line of the message`` (the message alone for careerbot's own errors)."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    if isinstance(exc, CareerbotError):
        return text or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _distribution(ep: EntryPoint) -> str:
    """``name version`` of the distribution that declares ``ep`` (its module's name if unknown)."""
    dist = getattr(ep, "dist", None)
    if dist is not None:
        try:
            return f"{dist.metadata['Name']} {dist.version}"
        except Exception:  # damaged metadata: say what we can
            pass
    return ep.value.split(":", 1)[0]


class Registry(Generic[F]):
    """Maps a name to a factory. Entry points are listed on first miss and each imported on first use."""

    def __init__(self, *, kind: str, group: str, setting: str) -> None:
        self.kind = kind
        self.group = group
        self.setting = setting
        self._factories: dict[str, F] = {}
        #: name → where a plug-in's factory came from ("package 1.0"), for error messages
        self._origins: dict[str, str] = {}
        self._entry_points: dict[str, EntryPoint] | None = None

    def register(self, name: str, factory: F) -> F:
        self._factories[name] = factory
        return factory

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def _listed(self) -> dict[str, EntryPoint]:
        if self._entry_points is None:
            found: dict[str, EntryPoint] = {}
            for ep in entry_points(group=self.group):
                found.setdefault(ep.name, ep)  # the first distribution on the path wins, as for imports
            self._entry_points = found
        return self._entry_points

    def rescan(self) -> None:
        """Forget the entry-point listing (after installing a plug-in in a running process)."""
        self._entry_points = None

    def names(self) -> list[str]:
        """Built-in and plug-in names (plug-ins are listed, not imported)."""
        return sorted(set(self._factories) | set(self._listed()))

    def origin(self, name: str) -> str:
        """``careerbot`` for a built-in, else the plug-in's distribution and version."""
        return self._origins.get(name, "careerbot")

    def get(self, name: str) -> F:
        """The factory registered as ``name``, importing its plug-in if need be.

        Raises `ConfigError` (one line) for an unknown name, or a plug-in whose entry
        point cannot be loaded (naming its distribution and the error).
        """
        if name in self._factories:
            return self._factories[name]
        ep = self._listed().get(name)
        if ep is None:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"{self.setting}: unknown {self.kind} '{name}' (known: {known})")
        origin = _distribution(ep)
        try:
            factory = ep.load()
        except Exception as exc:  # ImportError, AttributeError, SyntaxError, whatever its import raises
            raise ConfigError(
                f"{self.setting}={name}: the {self.kind} plug-in from {origin} ({ep.value}) cannot be loaded: {_one_line(exc)}"
            ) from exc
        if not callable(factory):
            raise ConfigError(f"{self.setting}={name}: the {self.kind} plug-in from {origin} ({ep.value}) is not callable")
        self._factories[name] = factory
        self._origins[name] = origin
        return factory

    def create(self, name: str, *args: Any) -> Any:
        """``get(name)(*args)``; a plug-in's factory failing with anything but a careerbot error becomes
        one `ConfigError` line naming the plug-in, its distribution and the error."""
        factory = self.get(name)
        try:
            return factory(*args)
        except CareerbotError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"{self.setting}={name}: the {self.kind} from {self.origin(name)} failed to start: {_one_line(exc)}"
            ) from exc
