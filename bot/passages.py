"""Sections → passages of roughly 500–800 characters, the unit of retrieval.

A section is cut only between blocks: paragraphs, list items (with their
indented continuation lines) and table rows. A table that does not fit is cut
between rows and every piece repeats the header row, so a row is never read
without its column names.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .knowledge import Section

__all__ = ["Passage", "Block", "split_blocks", "split_section", "passages_of"]

MAX_CHARS = 800
_LIST_ITEM = re.compile(r"^(\s*)(?:[*+-]|\d+[.)])\s+")
_TABLE_ROW = re.compile(r"^\s*\|")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_SENTENCE_END = re.compile(r"(?<=[。！？!?])")


@dataclass(frozen=True, slots=True)
class Block:
    """A paragraph, a list item, or a table (``kind`` says which) in original text."""

    kind: str  # "paragraph" | "item" | "table"
    text: str


@dataclass(frozen=True, slots=True)
class Passage:
    """A retrievable piece of one section; ``text`` is original Markdown."""

    section: Section
    index: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.section.id}~{self.index}"

    @property
    def breadcrumb_text(self) -> str:
        return " › ".join(self.section.breadcrumb)

    @property
    def embed_text(self) -> str:
        """What the embedder sees: the breadcrumb below the title, then the text."""
        return " › ".join(self.section.breadcrumb[1:] or self.section.breadcrumb) + "\n" + self.text

    @property
    def hash(self) -> str:
        payload = f"{self.breadcrumb_text}\x1f{self.text}"
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:20]


def split_blocks(text: str) -> list[Block]:
    """Cut Markdown text into paragraphs, top-level list items and tables."""
    blocks: list[Block] = []
    kind: str | None = None
    lines: list[str] = []
    item_indent = 0

    def flush() -> None:
        nonlocal kind
        body = "\n".join(lines).strip("\n")
        if body.strip():
            blocks.append(Block(kind or "paragraph", body))
        lines.clear()
        kind = None

    for line in text.splitlines():
        if not line.strip():
            if kind == "item":
                lines.append(line)  # a blank line inside a list item; decided by the next line
                continue
            flush()
            continue
        if _TABLE_ROW.match(line):
            if kind != "table":
                flush()
                kind = "table"
            lines.append(line)
            continue
        item = _LIST_ITEM.match(line)
        if item and (kind != "item" or len(item.group(1)) <= item_indent):
            flush()
            kind, item_indent = "item", len(item.group(1))
            lines.append(line)
            continue
        if kind == "item" and (line.startswith((" ", "\t")) or (lines and lines[-1].strip())):
            lines.append(line)
            continue
        if kind in ("table", "item"):
            flush()
        kind = kind or "paragraph"
        lines.append(line)
    flush()
    return blocks


def _split_table(table: str, limit: int) -> list[str]:
    rows = table.splitlines()
    header: list[str] = []
    if len(rows) >= 2 and _TABLE_RULE.match(rows[1]):
        header, rows = rows[:2], rows[2:]
    pieces: list[str] = []
    current: list[str] = []
    for row in rows:
        size = sum(len(r) + 1 for r in header + current) + len(row)
        if current and size > limit:
            pieces.append("\n".join(header + current))
            current = []
        current.append(row)
    if current:
        pieces.append("\n".join(header + current))
    return pieces


def _split_long(block: Block, limit: int) -> list[str]:
    if len(block.text) <= limit:
        return [block.text]
    if block.kind == "table":
        return _split_table(block.text, limit)
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(block.text):
        if current and len(current) + len(sentence) > limit:
            pieces.append(current.strip())
            current = ""
        current += sentence
    if current.strip():
        pieces.append(current.strip())
    return pieces


def split_section(section: Section, *, max_chars: int = MAX_CHARS) -> list[Passage]:
    """Pack a section's blocks greedily into passages of at most ``max_chars``."""
    texts: list[str] = []
    current: list[str] = []
    size = 0
    for block in split_blocks(section.text):
        for piece in _split_long(block, max_chars):
            if current and size + len(piece) + 2 > max_chars:
                texts.append("\n\n".join(current))
                current, size = [], 0
            current.append(piece)
            size += len(piece) + 2
    if current:
        texts.append("\n\n".join(current))
    return [Passage(section=section, index=i, text=t) for i, t in enumerate(texts)]


def passages_of(sections: list[Section] | tuple[Section, ...], *, max_chars: int = MAX_CHARS) -> list[Passage]:
    """All passages of the given sections, in order."""
    return [p for s in sections for p in split_section(s, max_chars=max_chars)]
