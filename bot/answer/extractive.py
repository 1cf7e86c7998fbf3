"""The default backend: an answer made of the articles' own sentences, table rows and list items.

No LLM. The question analysis (careers, aspect, answer type) made by the
retriever decides what is quoted (`bot.answer.compose`): the rows, items or
lines of the part of the article that answers the question, never cut. Quoted
sections are numbered as citations and rendered with ``prompts/<lang>/answer.md.j2``.
Below the confidence bar it renders ``abstain.md.j2`` with the nearest topics instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..analysis import QuestionAnalysis
from ..aspects import AspectLexicon
from ..careers import CareerLexicon, career_title
from ..knowledge import KnowledgeBase
from ..prompts import PromptLibrary
from ..retrieval import Hit
from ..text import strip_decorations
from . import Answer, AnswerRequest, Citation, Link, section_url
from .compose import Composer, Group

__all__ = ["ExtractiveBackend"]


class ExtractiveBackend:
    """``extractive``: quotes what answers the question, cites each section, abstains below the bar."""

    name = "extractive"

    def __init__(self, *, prompts: PromptLibrary, base_url: str, min_confidence: float) -> None:
        self.prompts = prompts
        self.base_url = base_url
        self.min_confidence = min_confidence
        self._composer: tuple[tuple[int, int, int], Composer] | None = None

    def _composer_for(self, request: AnswerRequest) -> Composer:
        """One composer per knowledge snapshot and lexicons (it indexes the snapshot's structure once).

        A request without lexicons gets a composer without them, never one cached for another request's."""
        kb = request.knowledge
        key = (id(kb), id(request.aspects), id(request.careers))
        cached = self._composer
        if cached is None or cached[0] != key or cached[1].knowledge is not kb:
            aspects = request.aspects or AspectLexicon(roles=[], aspects=[])
            careers = request.careers or CareerLexicon.from_articles(kb.articles)
            self._composer = cached = (key, Composer(aspects=aspects, careers=careers, knowledge=kb))
        return cached[1]

    def answer(self, request: AnswerRequest) -> Answer:
        retrieval = request.retrieval
        if retrieval.confidence < self.min_confidence or not retrieval.hits:
            return self.abstain(request)
        kb = request.knowledge
        analysis = retrieval.analysis or QuestionAnalysis(
            question=request.question, search_text=request.question, language=retrieval.language
        )
        composer = self._composer_for(request)
        if request.meaning is not None and retrieval.query_vector is not None:
            composer = composer.with_meaning(request.meaning, retrieval.query_vector)
        composition = composer.compose(analysis, retrieval.hits)
        groups, citations = self._numbered(kb, _merged(composition.groups), retrieval.hits)
        names = [career_title(a.title) for slug in composition.careers if (a := kb.article(slug))]
        related = self._related(kb, [c.section_id for c in citations])
        text = self.prompts.render(
            "answer.md",
            language=retrieval.language,
            careers=names,
            inferred=composition.inferred,
            comparison=analysis.comparison and len(composition.careers) > 1,
            choices=[career_title(a.title) for slug in composition.choices if (a := kb.article(slug))],
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
            trace=composition.trace,
            choices=composition.choices,
        )

    def _numbered(
        self, kb: KnowledgeBase, groups: Sequence[Group], hits: Sequence[Hit]
    ) -> tuple[list[dict], list[Citation]]:
        """Template groups and citations, numbered 1..n in the order quoted."""
        scores: dict[str, float] = {}
        for h in hits:
            scores.setdefault(h.passage.section.id, h.score)
        out: list[dict] = []
        citations: list[Citation] = []
        for n, g in enumerate(groups, start=1):
            section = g.section
            article = kb.article(section.slug)
            out.append({
                "n": n,
                "heading": strip_decorations(section.heading),
                "article": career_title(article.title) if article else section.slug,
                "units": list(g.units),
            })
            citations.append(
                Citation(
                    n=n,
                    section_id=section.id,
                    title=section.breadcrumb[0],
                    breadcrumb=" › ".join(strip_decorations(b) for b in section.breadcrumb[1:]),
                    url=section_url(self.base_url, section),
                    score=scores.get(section.id, 0.0),
                )
            )
        return out, citations

    def abstain(self, request: AnswerRequest) -> Answer:
        """The "not covered" answer: nearest sections and the careers the knowledge base has."""
        retrieval = request.retrieval
        analysis = retrieval.analysis
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
            uncovered_topic=analysis.uncovered_topic if analysis else None,
            uncovered_employer=analysis.uncovered_employer if analysis else None,
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


def _merged(groups: Sequence[Group]) -> list[Group]:
    """Groups of the same section as one, at the first one's place (one citation per section)."""
    out: dict[str, Group] = {}
    for g in groups:
        if g.section.id in out:
            first = out[g.section.id]
            out[g.section.id] = Group(section=first.section, units=tuple(dict.fromkeys(first.units + g.units)),
                                      career=first.career)
        else:
            out[g.section.id] = g
    return [g for g in out.values() if g.units]
