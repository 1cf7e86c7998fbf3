"""A section as answer-sized evidence units that keep the article's structure.

Extractive answers quote units, never cut ones: a table row read with its column
names (``経験年数: シニア / 年収範囲 (万円): 1,100〜1,800+``), a list item with its
bold title and its body's sentences, a labelled sub-item (``書籍: 『…』（…） - …``,
``ポイント: …``), or a sentence of a paragraph. Each unit knows its kind, title,
label and parent item, so composition can answer a list question with every
item's title, a books question with every ``書籍`` line, a table question with
the rows asked about.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ..knowledge import Section
from ..passages import split_blocks
from ..text import strip_decorations, terms

__all__ = ["Unit", "section_units", "sentences"]

_SENTENCE = re.compile(r"(?<=[。！？!?])\s*")
_ITEM_MARK = re.compile(r"^\s*(?:[*+-]|\d+[.)])\s+")
_BOLD_ALL = re.compile(r"^\*\*(.+?)\*\*\s*$")
_BOLD_LABEL = re.compile(r"^\*\*([^*]{1,24}?)\s*[:：]\s*\*\*\s*(.*)$", re.S)
_BOLD_LABEL_INNER = re.compile(r"^\*\*([^*]{1,24}?)\s*[:：]\s*(.+?)\*\*\s*(.*)$", re.S)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
#: Shorter units (without decoration) say nothing on their own.
MIN_UNIT_CHARS = 4


@dataclass(frozen=True, slots=True)
class Unit:
    """One quotable piece of a section.

    ``kind``: ``row`` (a table row), ``item`` (a list item's head: its title or labelled text),
    ``sentence`` (of a paragraph or an item's body) or ``subitem`` (a nested list item).
    ``parent`` is the ``order`` of the item a body sentence or sub-item belongs to.
    """

    section_id: str
    order: int
    kind: str
    text: str
    title: str = ""
    label: str = ""
    parent: int | None = None
    terms: frozenset[str] = frozenset()


def sentences(text: str) -> list[str]:
    """Sentences of a text, at 。！？!? (the mark stays with its sentence)."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def _plain(text: str) -> str:
    """Markdown emphasis and line breaks out; the words stay exactly as written."""
    text = re.sub(r"\s*\n\s*", " ", text.strip())
    return text.replace("**", "").strip()


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


class _Builder:
    def __init__(self, section_id: str) -> None:
        self.section_id = section_id
        self.units: list[Unit] = []

    def add(self, kind: str, text: str, *, title: str = "", label: str = "", parent: int | None = None) -> int | None:
        text = _plain(text)
        if len(strip_decorations(text)) < MIN_UNIT_CHARS:
            return None
        order = len(self.units)
        self.units.append(
            Unit(section_id=self.section_id, order=order, kind=kind, text=text, title=_plain(title),
                 label=_plain(label), parent=parent, terms=frozenset(terms(text)))
        )
        return order

    def table(self, block: str) -> None:
        rows = block.splitlines()
        header = _cells(rows[0]) if rows else []
        body = rows[2:] if len(rows) > 1 and _TABLE_RULE.match(rows[1]) else rows[1:]
        for row in body:
            cells = _cells(row)
            pairs = [f"{h}: {v}" if h else v for h, v in zip(header, cells, strict=False) if v]
            self.add("row", " / ".join(pairs), title=cells[0] if cells else "")

    def paragraph(self, block: str, *, parent: int | None = None, label: str = "") -> None:
        lines = block.strip().splitlines()
        if lines and (m := _BOLD_LABEL.match(lines[0].strip())) and not m.group(2).strip():
            label, lines = m.group(1), lines[1:]  # 「**連携内容と目的:**」 heads the paragraph below it
        for sentence in sentences(" ".join(line.strip() for line in lines)):
            self.add("sentence", sentence, label=label, parent=parent)

    def item(self, block: str, *, parent: int | None = None, nested: bool = False) -> None:
        """A list item: its head (bold title, or ``**label:** text``), its body's sentences, its nested items."""
        lines = block.splitlines()
        head = _ITEM_MARK.sub("", lines[0]).strip()
        children: list[list[str]] = []
        body: list[str] = []
        for line in lines[1:]:
            if _ITEM_MARK.match(line):
                children.append([line])
            elif children and line.strip():
                children[-1].append(line)
            elif line.strip():
                body.append(line.strip())
        title = label = ""
        if m := _BOLD_LABEL_INNER.match(head):  # 「**質問1: …？**」
            label, text = m.group(1), f"{m.group(1)}: {m.group(2)} {m.group(3)}".strip()
        elif m := _BOLD_LABEL.match(head):  # 「**書籍:** 『…』」; 「**アクション:**」 alone heads its sub-items
            label, text = m.group(1), f"{m.group(1)}: {m.group(2)}" if m.group(2).strip() else ""
        elif m := _BOLD_ALL.match(head):  # 「**AI戦略の策定とロードマップの作成**」
            title, text = m.group(1), m.group(1)
        else:
            text = head
        kind = "subitem" if nested else "item"
        me = self.add(kind, text, title=title, label=label, parent=parent) if text else None
        anchor = me if me is not None else parent
        for sentence in sentences(" ".join(body)):
            self.add("sentence", sentence, parent=anchor)
        for child in children:
            indent = len(child[0]) - len(child[0].lstrip())
            self.item("\n".join(line[indent:] if line[:indent].isspace() else line.strip() for line in child),
                      parent=anchor, nested=True)


@lru_cache(maxsize=4096)
def section_units(section: Section) -> tuple[Unit, ...]:
    """Every unit of ``section``, in article order (cached per section)."""
    b = _Builder(section.id)
    for block in split_blocks(section.text):
        if block.kind == "table":
            b.table(block.text)
        elif block.kind == "item":
            b.item(block.text)
        else:
            b.paragraph(block.text)
    return tuple(b.units)
