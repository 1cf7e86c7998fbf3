"""Jinja templates from the prompts folder, rendered in a sandbox where an undefined variable is an error.

Templates live at ``prompts/<lang>/<name>.j2`` for ``lang`` in ``ja`` (primary)
and ``en``; `render` picks the question's language and falls back to Japanese.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from .errors import TemplateError

__all__ = ["PromptLibrary", "LANGUAGES"]

LANGUAGES = ("ja", "en")


class PromptLibrary:
    """Loads and renders the templates under one folder."""

    def __init__(self, *, folder: Path) -> None:
        if not folder.is_dir():
            raise TemplateError(f"CAREERBOT_PROMPTS_DIR: no prompts folder at {folder}")
        self.folder = folder
        self._env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(str(folder)),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # `iri`: a percent-encoded link shown readably (…#日本での推定年収), for text meant for eyes.
        self._env.filters["iri"] = unquote

    def names(self) -> list[str]:
        """Every template, as ``lang/name.j2`` paths."""
        return sorted(self._env.list_templates(extensions=["j2"]))

    def render(self, name: str, *, language: str, **variables: Any) -> str:
        """Render ``<language>/<name>.j2`` (Japanese if that language has none); whitespace trimmed."""
        lang = language if language in LANGUAGES else "ja"
        candidates = [f"{lang}/{name}.j2", f"ja/{name}.j2"]
        try:
            template = self._env.select_template(candidates)
        except jinja2.TemplatesNotFound as exc:
            raise TemplateError(f"{self.folder}: no template {candidates[0]}") from exc
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
        try:
            return template.render(**variables).strip()
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"{template.filename}: {exc.message}") from exc
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{template.filename}: {exc}") from exc
