"""The default backend: an answer made of the articles' own sentences, table rows and list items.

No LLM. From the retrieved passages it picks the evidence units (a sentence, a
table row read with its column names, a list item) that share the most
question weight, keeps them in article order under their section, numbers the
sections as citations and renders ``prompts/<lang>/answer.md.j2``. Below the
confidence bar it renders ``abstain.md.j2`` with the nearest topics instead.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..careers import career_title
from ..knowledge import KnowledgeBase
from ..passages import Passage, split_blocks
from ..prompts import PromptLibrary
from ..retrieval import Hit
from ..text import strip_decorations, terms
from . import Answer, AnswerRequest, Citation, Link, section_url

__all__ = ["ExtractiveBackend", "evidence_units"]

MAX_SECTIONS = 3
MAX_UNITS = 7
MAX_UNITS_PER_SECTION = 4
MAX_UNIT_CHARS = 220
#: A unit is quoted when it scores at least this share of the section's best unit.
UNIT_SHARE = 0.75
#: A further section is quoted when its best unit scores at least this share of the best section's.
SECTION_SHARE = 0.6
_SENTENCE = re.compile(r"(?<=[。！？!?])\s*")
_ITEM_MARK = re.compile(r"^\s*(?:[*+-]|\d+[.)])\s+")
_LABEL_ONLY = re.compile(r"^\*\*[^*]{1,20}[:：]\*\*$")


@dataclass(frozen=True, slots=True)
class _Unit:
    order: int
    text: str
    terms: frozenset[str]


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.strip().strip("|").split("|")]


def _clean(text: str) -> str:
    text = _ITEM_MARK.sub("", text.strip())
    text = re.sub(r"\s*\n\s*(?:[*+-]\s+)?", " ", text)
    text = text.replace("**", "").strip()
    if len(text) > MAX_UNIT_CHARS:
        text = text[: MAX_UNIT_CHARS - 1].rstrip() + "…"
    return text


def evidence_units(passage: Passage) -> list[str]:
    """A passage as answer-sized units: sentences, list items, and table rows as ``列: 値 / 列: 値``."""
    units: list[str] = []
    for block in split_blocks(passage.text):
        if block.kind == "table":
            rows = block.text.splitlines()
            header = _cells(rows[0]) if rows else []
            body = rows[2:] if len(rows) > 1 and set(rows[1].replace("|", "").strip()) <= set(":- ") else rows[1:]
            for row in body:
                pairs = [f"{h}: {v}" if h else v for h, v in zip(header, _cells(row), strict=False) if v]
                units.append(_clean(" / ".join(pairs)))
        elif block.kind == "item":
            units.append(_clean(block.text))
        else:
            for sentence in _SENTENCE.split(block.text):
                if sentence.strip() and not _LABEL_ONLY.match(sentence.strip()):
                    units.append(_clean(sentence))
    return [u for u in units if len(strip_decorations(u)) >= 6]


class ExtractiveBackend:
    """``extractive``: quotes the best evidence, cites each section, abstains below the bar."""

    name = "extractive"

    def __init__(self, *, prompts: PromptLibrary, base_url: str, min_confidence: float) -> None:
        self.prompts = prompts
        self.base_url = base_url
        self.min_confidence = min_confidence

    def answer(self, request: AnswerRequest) -> Answer:
        retrieval = request.retrieval
        if retrieval.confidence < self.min_confidence or not retrieval.hits:
            return self.abstain(request)
        kb = request.knowledge
        sections = self._pick_sections(retrieval.hits, retrieval.careers)
        weights = retrieval.term_weights
        q_terms = set(weights)
        chosen = []
        for section_id, hits in sections:
            units, strength = self._choose_units(hits, q_terms, weights)
            chosen.append((section_id, hits, units, strength))
        # Keep the first section, every named career's first section, and others only when their
        # evidence is at least SECTION_SHARE as strong as the best: no filler from loosely related sections.
        best = max((c[3] for c in chosen), default=0.0)
        must = {next((c[0] for c in chosen if c[0].split("#", 1)[0] == slug), None) for slug in retrieval.careers}
        chosen = [c for i, c in enumerate(chosen) if i == 0 or c[0] in must or (best > 0 and c[3] >= SECTION_SHARE * best)]
        groups = []
        citations = []
        for n, (section_id, hits, units, _) in enumerate(chosen, start=1):
            section = hits[0].passage.section
            article = kb.article(section.slug)
            groups.append(
                {
                    "n": n,
                    "heading": strip_decorations(section.heading),
                    "article": career_title(article.title) if article else section.slug,
                    "units": units,
                }
            )
            citations.append(
                Citation(
                    n=n,
                    section_id=section_id,
                    title=section.breadcrumb[0],
                    breadcrumb=" › ".join(strip_decorations(b) for b in section.breadcrumb[1:]),
                    url=section_url(self.base_url, section),
                    score=max(h.score for h in hits),
                )
            )
        names = [career_title(a.title) for slug in retrieval.careers if (a := kb.article(slug))]
        related = self._related(kb, [c.section_id for c in citations])
        text = self.prompts.render(
            "answer.md",
            language=retrieval.language,
            careers=names,
            groups=groups,
            citations=citations,
            related=related,
            confident=True,
        )
        return Answer(
            question=request.question,
            text=text,
            citations=tuple(citations),
            retrieval=retrieval,
            confident=True,
            abstained=False,
            language=retrieval.language,
            backend=self.name,
            related=tuple(related),
        )

    def abstain(self, request: AnswerRequest) -> Answer:
        """The "not covered" answer: nearest sections and the careers the knowledge base has."""
        retrieval = request.retrieval
        kb = request.knowledge
        seen: set[str] = set()
        suggestions: list[Link] = []
        for h in retrieval.hits:
            s = h.passage.section
            if s.id not in seen and len(suggestions) < 3:
                seen.add(s.id)
                suggestions.append(Link(title=" › ".join(strip_decorations(b) for b in s.breadcrumb), url=section_url(self.base_url, s)))
        careers = [Link(title=career_title(a.title), url=f"{self.base_url}{a.slug}") for a in kb.articles]
        text = self.prompts.render(
            "abstain.md",
            language=retrieval.language,
            suggestions=suggestions,
            careers=careers,
            uncovered_career=retrieval.uncovered_career,
        )
        return Answer(
            question=request.question,
            text=text,
            citations=(),
            retrieval=retrieval,
            confident=False,
            abstained=True,
            language=retrieval.language,
            backend=self.name,
            suggestions=tuple(suggestions),
        )

    @staticmethod
    def _pick_sections(hits: Sequence[Hit], careers: Sequence[str]) -> list[tuple[str, list[Hit]]]:
        """Up to MAX_SECTIONS sections in rank order, at least one from every named career."""
        by_section: dict[str, list[Hit]] = {}
        for h in hits:
            by_section.setdefault(h.passage.section.id, []).append(h)
        ordered = list(by_section.items())
        chosen: list[tuple[str, list[Hit]]] = []
        for slug in careers:
            first = next((item for item in ordered if item[1][0].passage.section.slug == slug), None)
            if first and first not in chosen:
                chosen.append(first)
        for item in ordered:
            if len(chosen) >= max(MAX_SECTIONS, len(careers)):
                break
            if item not in chosen:
                chosen.append(item)
        rank = {sid: i for i, (sid, _) in enumerate(ordered)}
        return sorted(chosen, key=lambda item: rank[item[0]])

    @staticmethod
    def _choose_units(hits: Sequence[Hit], q_terms: set[str], idf: dict[str, float]) -> tuple[list[str], float]:
        """The section's best evidence units in article order, and the best unit's score."""
        units: list[_Unit] = []
        for h in sorted(hits, key=lambda h: h.passage.index):
            for text in evidence_units(h.passage):
                units.append(_Unit(order=len(units), text=text, terms=frozenset(terms(text))))
        if not units:
            return [], 0.0
        scored = sorted(units, key=lambda u: (-sum(idf[t] for t in q_terms & u.terms), u.order))
        best = scored[0]
        best_score = sum(idf[t] for t in q_terms & best.terms)
        if best_score == 0:
            picked = units[:2]
        else:
            picked = [u for u in scored[:MAX_UNITS_PER_SECTION] if sum(idf[t] for t in q_terms & u.terms) >= best_score * UNIT_SHARE]
        return [u.text for u in sorted(picked, key=lambda u: u.order)][:MAX_UNITS], best_score

    def _related(self, kb: KnowledgeBase, section_ids: Sequence[str]) -> list[Link]:
        slugs = list(dict.fromkeys(sid.split("#", 1)[0] for sid in section_ids))
        links: list[Link] = []
        for slug in slugs:
            article = kb.article(slug)
            for other in article.related_jobs if article else ():
                target = kb.article(other)
                if target and other not in slugs and all(link.url != f"{self.base_url}{other}" for link in links):
                    links.append(Link(title=career_title(target.title), url=f"{self.base_url}{other}"))
        return links


