"""Query expansion from ``knowledge/synonyms.yaml``: groups of words for the same topic.

The file is content, kept by whoever keeps the articles: a YAML list of
groups, each a list of words (the first is the word the articles use). A
question containing any word of a group is also searched for the rest of it,
which is how 「給料」 finds a table headed 「年収」 and "salary" finds it too.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from .errors import KnowledgeError
from .text import normalize

__all__ = ["Synonyms"]


class Synonyms:
    """Expands a question with the other words of every group it touches."""

    def __init__(self, *, groups: list[list[str]]) -> None:
        self.groups = [[normalize(w).strip() for w in g if str(w).strip()] for g in groups]
        self._patterns = [
            [re.compile(rf"(?<![a-z0-9]){re.escape(w)}(?![a-z0-9])" if w.isascii() else re.escape(w)) for w in g]
            for g in self.groups
        ]

    @classmethod
    def load(cls, path: Path) -> Synonyms:
        """Read a synonyms file; a missing file means no synonyms, a malformed one is a `KnowledgeError`."""
        if not path.is_file():
            return cls(groups=[])
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise KnowledgeError(str(path), f"invalid synonyms file ({str(exc).splitlines()[0]})") from exc
        if not isinstance(data, list) or not all(isinstance(g, list) for g in data):
            raise KnowledgeError(str(path), "a synonyms file is a YAML list of lists of words")
        return cls(groups=[[str(w) for w in g] for g in data])

    @property
    def words(self) -> frozenset[str]:
        """Every word of every group (normalised): words the knowledge base knows, if not in the articles' own text."""
        return frozenset(w for g in self.groups for w in g)

    def of(self, word: str) -> list[str]:
        """Every other word of the groups that hold ``word`` (normalised): 「メルカリ」 → ["mercari"]."""
        w = normalize(word).strip()
        return [x for g in self.groups if w in g for x in g if x != w]

    def expansions(self, text: str) -> list[str]:
        """The first word (the articles' word) of every group ``text`` touches but does not contain.

        Only that word is added: the other words would bring their character
        bigrams (「もらえる」 → 「える」) into the search as noise.
        """
        norm = normalize(text)
        extra: list[str] = []
        for group, patterns in zip(self.groups, self._patterns, strict=True):
            if group and not patterns[0].search(norm) and any(p.search(norm) for p in patterns[1:]):
                if group[0] not in extra:
                    extra.append(group[0])
        return extra
