"""Answers and the pluggable backends that compose them.

A backend turns an `AnswerRequest` (the question, the retrieval, the
conversation) into an `Answer` whose every claim cites a retrieved section.
Built-in: ``extractive`` (no LLM), ``openai`` and ``anthropic`` (grounded LLM
answers, see `bot.answer.llm`; they also implement `StreamingBackend`). Third parties register a factory
``(settings, prompts) -> AnswerBackend`` in the ``careerbot.backends``
entry-point group, or call ``BACKENDS.register``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
import re
from urllib.parse import quote, unquote

from ..registry import Registry
from ..retrieval import Retrieval

if TYPE_CHECKING:
    from ..aspects import AspectLexicon
    from ..careers import CareerLexicon
    from ..knowledge import KnowledgeBase, Section
    from ..prompts import PromptLibrary
    from ..settings import Settings
    from .meaning import UnitMeaning

__all__ = [
    "Answer",
    "AnswerBackend",
    "AnswerRequest",
    "BACKENDS",
    "Citation",
    "Link",
    "StreamingBackend",
    "make_backend",
    "section_url",
    "strip_link_lines",
    "usage_of",
]

_URL_IN_LINE = re.compile(r"https?://[^\s）)（(、，,<>|]+")
_STRUCTURAL = re.compile(r"^\s*(?:\[\d+\]|[-*+•]\s|\d+[.)]\s|\*\*[^*]+\*\*)")
_LABEL_ONLY = re.compile(r"^\s*(?:\*\*[^*]+\*\*|__[^_]+__|#{1,6}\s+.+)\s*[:：]?\s*$")


def strip_link_lines(markdown: str, urls: Iterable[str]) -> str:
    """The answer's Markdown without the lines that list ``urls`` (sources, suggestions, related careers).

    Only list-like lines are dropped (``[n] …``, ``- …``, ``**Label:** …``), never prose that
    happens to link somewhere; a label line whose whole block was dropped goes too. Links are
    compared decoded: the templates show them readably (``#日本での…``, the ``iri`` filter),
    the structured fields carry them percent-encoded (``#%E6%97%A5…``).
    """
    wanted = {unquote(u) for u in urls}
    lines = markdown.splitlines()
    dropped = []
    for line in lines:
        found = {unquote(u) for u in _URL_IN_LINE.findall(line)}
        dropped.append(bool(found) and found <= wanted and bool(_STRUCTURAL.match(line)))
    out: list[str] = []
    for i, line in enumerate(lines):
        if dropped[i]:
            continue
        if _LABEL_ONLY.match(line):
            block = []
            for j in range(i + 1, len(lines)):
                if not lines[j].strip():
                    break
                block.append(j)
            if block and all(dropped[j] for j in block):
                continue
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()



#: Every answer's usage has these keys (an answer no model wrote: zeros, no fallback).
USAGE_DEFAULTS: dict[str, Any] = {
    "model": None,
    "calls": 0,
    "retries": 0,
    "input_tokens": 0,
    "output_tokens": 0,
    "llm_ms": 0.0,
    "call_ms": [],
    "invalid_citations": 0,
    "uncited_dropped": 0,
    "fallback": None,
    "truncated": False,
    "dropped_sources": 0,
}


def usage_of(usage: dict[str, Any]) -> dict[str, Any]:
    """``usage`` with every key of `USAGE_DEFAULTS` present (what ``careerbot ask --json`` shows)."""
    return {**USAGE_DEFAULTS, **(usage or {})}


def section_url(base: str, section: Section) -> str:
    """Public link of a section: ``{base}{slug}#{anchor}`` with the anchor percent-encoded."""
    return f"{base}{section.slug}#{quote(section.anchor, safe='-_')}"


@dataclass(frozen=True, slots=True)
class Link:
    """A titled link (a nearby topic, a related career)."""

    title: str
    url: str


@dataclass(frozen=True, slots=True)
class Citation:
    """Source ``[n]`` of an answer: one article section."""

    n: int
    section_id: str
    title: str
    breadcrumb: str
    url: str
    score: float


@dataclass(frozen=True, slots=True)
class AnswerRequest:
    """Everything a backend may use. ``history`` is earlier user turns, oldest first.

    ``aspects`` and ``careers`` are the knowledge base's lexicons (the article template's parts, the
    careers' names), for backends that compose by structure; ``retrieval.analysis`` is the question's analysis.
    """

    question: str
    retrieval: Retrieval
    knowledge: KnowledgeBase
    history: tuple[str, ...] = ()
    aspects: AspectLexicon | None = None
    careers: CareerLexicon | None = None
    #: Unit vectors by the retriever's embedder, for backends that pick units by meaning.
    meaning: UnitMeaning | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A composed answer. ``abstained`` answers cite nothing and offer ``suggestions`` instead."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    retrieval: Retrieval
    confident: bool
    abstained: bool
    language: str
    backend: str
    suggestions: tuple[Link, ...] = ()
    related: tuple[Link, ...] = ()
    timings_ms: dict[str, float] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    #: How the answer was composed, one decision a line (the eval report shows it beside every failure).
    trace: tuple[str, ...] = ()
    #: Careers that answer the question about equally (slugs): the user may pick one for the full answer.
    choices: tuple[str, ...] = ()

    @property
    def links(self) -> set[str]:
        """The links the answer lists apart from its content: its sources, suggestions and related careers."""
        return {c.url for c in self.citations} | {s.url for s in self.suggestions} | {r.url for r in self.related}

    @property
    def body(self) -> str:
        """What the user reads for content: ``text`` without the lines that list `links` (every surface
        renders those from the structured fields; the eval looks for the answering sentence here)."""
        return strip_link_lines(self.text, self.links)

    def to_json(self) -> dict[str, Any]:
        """The ``careerbot ask --json`` object."""
        return {
            "question": self.question,
            "answer": self.text,
            "confident": self.confident,
            "abstained": self.abstained,
            "language": self.language,
            "backend": self.backend,
            "confidence": round(self.retrieval.confidence, 4),
            "careers": list(self.retrieval.careers),
            "citations": [
                {"n": c.n, "section_id": c.section_id, "title": c.title, "breadcrumb": c.breadcrumb, "url": c.url,
                 "score": round(c.score, 4)}
                for c in self.citations
            ],
            "passages": [
                {"section_id": h.passage.section.id, "title": h.passage.breadcrumb_text, "text": h.passage.text,
                 "score": round(h.score, 4), "dense": round(h.dense, 4), "lexical": round(h.lexical, 4)}
                for h in self.retrieval.hits
            ],
            "suggestions": [{"title": s.title, "url": s.url} for s in self.suggestions],
            "choices": list(self.choices),
            "analysis": self.retrieval.analysis.to_json() if self.retrieval.analysis else None,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "usage": usage_of(self.usage),
        }


@runtime_checkable
class AnswerBackend(Protocol):
    """Composes an answer from retrieved passages.

    Contract: ``name`` is the registry name; ``answer`` never invents sources —
    every citation names a section among ``request.retrieval.hits``, or (a part
    answered whole, such as every book of a learning section) another subsection
    of the same part of the same article as one of them — and when
    ``request.retrieval.confidence`` is below the abstention bar it abstains.
    It may raise `BackendError`; the pipeline then falls back to ``extractive``.
    """

    name: str

    def answer(self, request: AnswerRequest) -> Answer: ...


@runtime_checkable
class StreamingBackend(AnswerBackend, Protocol):
    """An `AnswerBackend` that can show its answer while the model writes it (``openai``, ``anthropic``).

    Contract of ``stream(request, on_delta) -> Answer``:

    - ``on_delta`` is called, in order, with successive pieces of the *verified*
      draft body as the model writes it: each complete line once the reply so far
      passes the grounding checks and cites a source, with citations renumbered
      1..m and made-up ones removed. Nothing is passed after the reply so far is
      rejected. It may be called zero times (abstention, a provider failure
      before a verified line, a reply that falls back).
    - It returns the final `Answer`, checked exactly as ``answer`` checks it.
      That Answer is authoritative: its ``text`` may differ from the joined
      deltas (an uncited figure dropped, the sources list appended) or replace
      them entirely (``backend`` ``"<name>→extractive"``: the model cited no
      given source, or the connection broke mid-stream). A caller shows the
      deltas as a draft, then replaces the draft with ``Answer.text``.
    - It never raises for a provider failure. An exception raised by
      ``on_delta`` is logged and stops further deltas, not the answer.
    - Like ``answer``, it may be called from many threads at once.
    """

    def stream(self, request: AnswerRequest, on_delta: Callable[[str], None]) -> Answer: ...


BackendFactory = Callable[["Settings", "PromptLibrary"], AnswerBackend]
BACKENDS: Registry[BackendFactory] = Registry(kind="answer backend", group="careerbot.backends", setting="CAREERBOT_BACKEND")


def make_backend(name: str, settings: Settings, prompts: PromptLibrary) -> AnswerBackend:
    """The backend registered as ``name`` (a broken plug-in: one `ConfigError` line naming its distribution)."""
    return BACKENDS.create(name, settings, prompts)


def _extractive(settings: Settings, prompts: PromptLibrary) -> AnswerBackend:
    from .extractive import ExtractiveBackend

    return ExtractiveBackend(prompts=prompts, base_url=settings.article_base_url, min_confidence=settings.min_confidence)


BACKENDS.register("extractive", _extractive)


def _openai(settings: Settings, prompts: PromptLibrary) -> AnswerBackend:
    from .openai_backend import OpenAIBackend

    return OpenAIBackend.from_settings(settings, prompts)


def _anthropic(settings: Settings, prompts: PromptLibrary) -> AnswerBackend:
    from .anthropic_backend import AnthropicBackend

    return AnthropicBackend.from_settings(settings, prompts)


BACKENDS.register("openai", _openai)
BACKENDS.register("anthropic", _anthropic)
