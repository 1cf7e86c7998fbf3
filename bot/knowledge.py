"""Articles on disk → validated `Article`s made of `Section`s.

An article is a Markdown file in the knowledge folder with front matter, either
``---json`` (a JSON object) or YAML ``---``. ``slug`` and ``title`` are required.
Every heading form the seed uses is a section boundary: ``#``…``######``,
keycap-emoji lines such as ``1️⃣ **AI Product Managerとは？**``, and ``***`` /
``---`` separators.

`load_knowledge` never lets one bad file stop the others: it returns what
loaded plus one `KnowledgeError` per file that did not. Two files never share
a slug (the one that had it first keeps it), and no article is larger than
``CAREERBOT_MAX_ARTICLE_BYTES``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from frontmatter.default_handlers import JSONHandler, YAMLHandler

from .errors import KnowledgeError
from .text import anchor, strip_decorations

__all__ = ["Article", "Section", "KnowledgeBase", "DEFAULT_MAX_ARTICLE_BYTES", "load_article", "load_knowledge"]

#: Largest article read (bytes); larger ones are skipped. The seed article is about 30 KB.
DEFAULT_MAX_ARTICLE_BYTES = 1_000_000
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
    """What loaded (``articles``, sorted by slug) and what did not (``problems``).

    ``owners`` maps each slug to the file name that owns it: the served articles'
    files, plus a slug held for its owner while that file fails to load (so that
    another file claiming the slug does not take it over meanwhile). The index
    manifest records it, for `load_knowledge` to read back next time.
    """

    articles: tuple[Article, ...]
    problems: tuple[KnowledgeError, ...] = field(default=())
    owners: Mapping[str, str] = field(default_factory=dict)

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


def _too_large(path: Path, size: int, limit: int) -> KnowledgeError:
    return KnowledgeError(
        str(path), f"{size:,} bytes is over the limit of {limit:,} bytes per article (CAREERBOT_MAX_ARTICLE_BYTES)"
    )


def load_article(path: Path, *, max_bytes: int = DEFAULT_MAX_ARTICLE_BYTES) -> Article:
    """Read and validate one article of at most ``max_bytes``; raises `KnowledgeError` naming the file.

    The size is checked before the file is read: a huge file costs nothing.
    """
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_large(path, size, max_bytes)
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise KnowledgeError(str(path), f"cannot read file: {exc.strerror}") from exc
    if len(raw) > max_bytes:
        raise _too_large(path, path.stat().st_size, max_bytes)
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


def _first_claimant(slug: str, claimants: list[Article], recorded: str | None) -> tuple[Article, str]:
    """The article that had ``slug`` first, and why it is the one (see `load_knowledge`)."""
    for article in claimants:
        if article.path.name == recorded:
            return article, "the file the index was built with"

    def age(article: Article) -> tuple[int, str]:
        try:
            return article.path.stat().st_mtime_ns, article.path.name
        except OSError:  # removed meanwhile: the newest
            return 2**63, article.path.name

    return min(claimants, key=age), "the older file"


def load_knowledge(
    folder: Path, *, owners: Mapping[str, str] | None = None, max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES
) -> KnowledgeBase:
    """Load every ``*.md`` directly in ``folder``; bad files become ``problems``.

    Files whose name starts with ``_`` or ``.`` and ``README.md`` are not articles;
    files over ``max_article_bytes`` are skipped unread.

    A slug claimed by two files is kept by the file that had it first, and every
    other claimant is skipped with a problem naming both files — never replaced
    silently, since the newcomer's text would be served under the owner's links.
    "First" is, in order:

    1. the file ``owners`` names for the slug: the live index's manifest records
       which file served each slug, so this is what the bot served until now,
       whatever the names, times or order of the files;
    2. without such a record (no index yet, or the file was renamed), the file
       modified longest ago — a copy made to start a new article is newer than
       the article it copies — and for equal times the first path by name, so
       the choice is the same on every run. (A fresh checkout gives every file
       the checkout's time: then the choice is by name, and ``index --strict``
       fails, so a pre-merge check catches the clash.)

    If the recorded owner is in the folder but fails to load, its slug stays held
    (in ``owners`` of the result) and other files claiming it are skipped too.
    """
    if not folder.is_dir():
        raise KnowledgeError(str(folder), "knowledge folder does not exist (set CAREERBOT_KNOWLEDGE_DIR)")
    recorded = dict(owners or {})
    claims: dict[str, list[Article]] = {}
    problems: list[KnowledgeError] = []
    failed: set[str] = set()
    for path in sorted(folder.glob("*.md")):
        if path.name.startswith(("_", ".")) or path.name.lower() == "readme.md":
            continue
        try:
            article = load_article(path, max_bytes=max_article_bytes)
        except KnowledgeError as exc:
            problems.append(exc)
            failed.add(path.name)
            continue
        claims.setdefault(article.slug, []).append(article)
    articles: list[Article] = []
    owned: dict[str, str] = {}
    for slug, claimants in claims.items():
        held_by = recorded.get(slug)
        if held_by in failed and all(a.path.name != held_by for a in claimants):
            for article in claimants:
                problems.append(KnowledgeError(
                    str(article.path),
                    f"duplicate slug '{slug}', which belongs to {folder / held_by} "
                    "(the file the index was built with; it failed to load)",
                ))
            owned[slug] = held_by
            continue
        owner, why = _first_claimant(slug, claimants, held_by)
        for article in claimants:
            if article is not owner:
                problems.append(KnowledgeError(
                    str(article.path), f"duplicate slug '{slug}', which {owner.path} has ({why})"
                ))
        articles.append(owner)
        owned[slug] = owner.path.name
    for slug, name in recorded.items():  # an owner that failed to load keeps its slug
        if slug not in owned and name in failed:
            owned[slug] = name
    problems.sort(key=lambda p: p.path)
    return KnowledgeBase(
        articles=tuple(sorted(articles, key=lambda a: a.slug)), problems=tuple(problems), owners=owned
    )
