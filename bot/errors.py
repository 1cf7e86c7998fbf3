"""The exceptions careerbot raises.

    CareerbotError                 base of everything below; its message is one line for the user
    ├── ConfigError                a setting or environment variable is missing or malformed
    ├── KnowledgeError             an article cannot be loaded (names the file and the reason)
    ├── IndexStoreError            the on-disk index is missing, stale or corrupt
    ├── EmbedderError              an embedding model cannot be loaded or used
    ├── BackendError               an answer backend failed (the pipeline falls back, never the user)
    └── TemplateError              a prompt template is missing or does not render
"""

from __future__ import annotations

__all__ = [
    "CareerbotError",
    "ConfigError",
    "KnowledgeError",
    "IndexStoreError",
    "EmbedderError",
    "BackendError",
    "TemplateError",
]


class CareerbotError(Exception):
    """Base class; ``str(error)`` is a single line fit to show a user."""


class ConfigError(CareerbotError):
    """A setting is missing or malformed; the message names the variable."""


class KnowledgeError(CareerbotError):
    """An article is unreadable or invalid; the message names the file."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class IndexStoreError(CareerbotError):
    """The index on disk cannot be used as it is (it is then rebuilt)."""


class EmbedderError(CareerbotError):
    """An embedding model cannot be loaded; the message says how to fix it."""


class BackendError(CareerbotError):
    """An answer backend could not produce an answer."""


class TemplateError(CareerbotError):
    """A prompt template is missing, invalid, or uses an undefined variable."""
