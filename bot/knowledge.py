"""Articles on disk → validated `Article`s made of `Section`s.

An article is a Markdown file in the knowledge folder with front matter, either
``---json`` (a JSON object) or YAML ``---``. ``slug`` and ``title`` are required.
Every heading form the seed uses is a section boundary: ``#``…``######``,
keycap-emoji lines such as ``1️⃣ **AI Product Managerとは？**``, and ``***`` /
``---`` separators.

`load_knowledge` never lets one bad file stop the others: it returns what
loaded plus one `KnowledgeError` per file that did not.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from frontmatter.default_handlers import JSONHandler, YAMLHandler

from .errors import KnowledgeError
from .text import anchor, strip_decorations

__all__ = ["Article", "Section", "KnowledgeBase", "load_article", "load_knowledge"]

REQUIRED_KEYS = ("slug", "title")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_HASH_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_KEYCAP_HEADING = re.compile(r"^\s*(?:[0-9#*]\ufe0f?\u20e3|\U0001f51f)\s*(.+?)\s*$")
_SEPARATOR = re.compile(r"^\s*(?:(?:\*\s*){3,}|(?:-\s*){3,}|(?:_\s*){3,})$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_EMPHASIS = re.compile(r"\*\*|__")


@dataclass(frozen=True, slots=True)
class Section:
    """One headed part of an article.

    ``id`` is ``slug#anchor`` and stays stable while the heading does; ``breadcrumb``
    is (article title, section, subsection…) for display; ``text`` is the original
    Markdown under the heading.
    """

    id: str
    slug: str
    anchor: str
    heading: str
    breadcrumb: tuple[str, ...]
    text: str

    @property
    def hash(self) -> str:
        """Content hash: changes when the text or the breadcrumb changes."""
        payload = "\x1f".join((self.id, *self.breadcrumb, self.text))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Article:
    """A validated article: front matter fields plus its sections in order."""

    slug: str
    title: str
    path: Path
    metadata: dict[str, Any]
    sections: tuple[Section, ...]

    @property
    def related_jobs(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.metadata.get("related_jobs") or ())

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.metadata.get("tags") or ())

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.metadata.get("aliases") or ())


@dataclass(frozen=True, slots=True)
class KnowledgeBase:
    """What loaded (``articles``, sorted by slug) and what did not (``problems``)."""

    articles: tuple[Article, ...]
    problems: tuple[KnowledgeError, ...] = field(default=())

    @property
    def warnings(self) -> tuple[str, ...]:
        """Articles load but something is off: a ``related_jobs`` slug that no article has."""
        slugs = {a.slug for a in self.articles}
        return tuple(
            f"{a.path}: related_jobs names '{slug}', which no article has (the link is left out)"
            for a in self.articles
            for slug in a.related_jobs
            if slug not in slugs
        )

    def article(self, slug: str) -> Article | None:
        return next((a for a in self.articles if a.slug == slug), None)

    @property
    def sections(self) -> tuple[Section, ...]:
        return tuple(s for a in self.articles for s in a.sections)


_FRONT_MATTER = {
    # opening line → (handler, closing-line pattern)
    "---json": (JSONHandler(), re.compile(r"\A---json[ \t]*\r?\n(.*?)^---[ \t]*$\r?\n?(.*)\Z", re.DOTALL | re.MULTILINE)),
    "---": (YAMLHandler(), re.compile(r"\A---[ \t]*\r?\n(.*?)^---[ \t]*$\r?\n?(.*)\Z", re.DOTALL | re.MULTILINE)),
}


def _parse_front_matter(path: Path, text: str) -> tuple[dict[str, Any], str]:
    """Split and parse front matter with python-frontmatter's handlers.

    The split is done here: python-frontmatter returns empty metadata, silently,
    when it cannot split (and it has no handler for ``---json``).
    """
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0].strip()
    if first not in _FRONT_MATTER:
        raise KnowledgeError(str(path), "no front matter (start the file with ---json or ---)")
    handler, pattern = _FRONT_MATTER[first]
    match = pattern.match(text)
    if not match:
        raise KnowledgeError(str(path), f"front matter starts with {first} but has no closing --- line")
    try:
        meta = handler.load(match.group(1))
    except json.JSONDecodeError as exc:
        raise KnowledgeError(str(path), f"invalid JSON front matter: {exc.msg} (line {exc.lineno + 1})") from exc
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0]
        raise KnowledgeError(str(path), f"invalid YAML front matter: {reason}") from exc
    if not isinstance(meta, dict):
        raise KnowledgeError(str(path), "front matter must be a mapping of keys to values")
    return dict(meta), match.group(2)


def _validate(path: Path, meta: dict[str, Any]) -> None:
    for key in REQUIRED_KEYS:
        value = meta.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise KnowledgeError(str(path), f"front matter is missing required key '{key}'")
        if not isinstance(value, str):
            raise KnowledgeError(str(path), f"front matter key '{key}' must be a string")
    if not _SLUG.match(meta["slug"]):
        raise KnowledgeError(
            str(path), f"front matter key 'slug' must be lower-case letters, digits, '_' or '-': {meta['slug']!r}"
        )
    for key in ("related_jobs", "tags", "aliases"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise KnowledgeError(str(path), f"front matter key '{key}' must be a list of strings")


@dataclass(slots=True)
class _Heading:
    level: int
    display: str
    anchor: str


def _heading_of(line: str) -> tuple[int, str] | None:
    if m := _HASH_HEADING.match(line):
        return len(m.group(1)), m.group(2)
    if m := _KEYCAP_HEADING.match(line):
        return 2, line.strip()
    return None


def split_sections(slug: str, title: str, body: str) -> list[Section]:
    """Cut an article body into sections at every heading and separator."""
    lines = body.splitlines()
    h1_count = sum(1 for ln in lines if (h := _heading_of(ln)) and h[0] == 1)
    stack: list[_Heading] = []
    sections: list[Section] = []
    used: dict[str, int] = {}
    buf: list[str] = []
    in_fence = False

    def unique(a: str) -> str:
        a = a or "section"
        if a in used:
            used[a] += 1
            return f"{a}-{used[a]}"
        used[a] = 0
        return a

    def flush() -> None:
        text = "\n".join(buf).strip()
        buf.clear()
        if not text:
            return
        if stack:
            crumbs = [h.display for h in stack if not (h.level == 1 and h1_count == 1)]
            base = stack[-1].anchor
            heading = stack[-1].display
        else:
            crumbs, base, heading = [], "intro", title
        a = unique(base)
        sections.append(
            Section(
                id=f"{slug}#{a}",
                slug=slug,
                anchor=a,
                heading=heading,
                breadcrumb=(title, *crumbs),
                text=text,
            )
        )

    for line in lines:
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence:
            heading = _heading_of(line)
            if heading:
                flush()
                level, raw = heading
                while stack and stack[-1].level >= level:
                    stack.pop()
                display = _EMPHASIS.sub("", raw).strip()
                stack.append(_Heading(level, display or strip_decorations(raw), anchor(raw)))
                continue
            if _SEPARATOR.match(line):
                flush()
                continue
        buf.append(line)
    flush()
    return sections


def load_article(path: Path) -> Article:
    """Read and validate one article; raises `KnowledgeError` naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KnowledgeError(str(path), f"cannot read file: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise KnowledgeError(str(path), f"not UTF-8 (invalid byte at offset {exc.start})") from exc
    meta, body = _parse_front_matter(path, text)
    _validate(path, meta)
    if not body.strip():
        raise KnowledgeError(str(path), "the article body is empty")
    slug, title = meta["slug"].strip(), meta["title"].strip()
    sections = split_sections(slug, title, body)
    if not sections:
        raise KnowledgeError(str(path), "the article body has no text under any heading")
    return Article(slug=slug, title=title, path=path, metadata=meta, sections=tuple(sections))


def load_knowledge(folder: Path) -> KnowledgeBase:
    """Load every ``*.md`` directly in ``folder``; bad files become ``problems``.

    Files whose name starts with ``_`` or ``.`` and ``README.md`` are not articles.
    A slug seen twice keeps the first file (by name) and reports the second.
    """
    if not folder.is_dir():
        raise KnowledgeError(str(folder), "knowledge folder does not exist (set CAREERBOT_KNOWLEDGE_DIR)")
    articles: dict[str, Article] = {}
    problems: list[KnowledgeError] = []
    for path in sorted(folder.glob("*.md")):
        if path.name.startswith(("_", ".")) or path.name.lower() == "readme.md":
            continue
        try:
            article = load_article(path)
        except KnowledgeError as exc:
            problems.append(exc)
            continue
        if article.slug in articles:
            first = articles[article.slug].path.name
            problems.append(KnowledgeError(str(path), f"duplicate slug '{article.slug}' (already used by {first})"))
            continue
        articles[article.slug] = article
    return KnowledgeBase(articles=tuple(sorted(articles.values(), key=lambda a: a.slug)), problems=tuple(problems))
