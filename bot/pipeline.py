"""The one pipeline object the CLI, the Slack app and the eval share: settings → index → retriever → backend.

``Advisor.ask`` is the whole product in one call: the same question gets the
same answer whichever surface asks it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .answer import Answer, AnswerBackend, AnswerRequest, StreamingBackend, make_backend
from .answer.llm import Rewrite
from .answer.meaning import UnitMeaning
from .calibration import resolve_calibration
from .careers import CareerLexicon
from .embedders import Embedder, make_embedder
from .errors import BackendError, CareerbotError
from .index import HybridIndex, IndexPlan, build_index, open_index, recorded_owners
from .knowledge import KnowledgeBase, load_knowledge
from .learned_parts import LearnedParts, load_learned_parts
from .passages import passages_of
from .prompts import PromptLibrary
from .retrieval import RankingWeights, Retriever
from .settings import Settings
from .aspects import AspectLexicon
from .synonyms import Synonyms
from .text import detect_language

__all__ = ["Advisor", "IndexReport", "ReloadReport", "learn_parts", "load_knowledge_base", "refresh_index"]

log = logging.getLogger(__name__)
#: One record per answer (see `_log_answer`); `bot.logs` formats it as text or JSON.
answer_log = logging.getLogger("bot.answers")
Notify = Callable[[str], None]

SYNONYMS_FILE = "synonyms.yaml"
ASPECTS_FILE = "aspects.yaml"


@dataclass(frozen=True, slots=True)
class IndexReport:
    """What `refresh_index` found and did."""

    knowledge: KnowledgeBase
    index: HybridIndex
    plan: IndexPlan | None
    seconds: float


def load_knowledge_base(settings: Settings) -> KnowledgeBase:
    """The knowledge folder as the index sees it: slug owners as the live index recorded them, the size limit."""
    return load_knowledge(
        settings.knowledge_dir,
        owners=recorded_owners(settings.index_dir),
        max_article_bytes=settings.max_article_bytes,
    )


def refresh_index(
    settings: Settings,
    embedder: Embedder,
    *,
    force: bool = False,
    notify: Notify | None = None,
    progress: Notify | None = None,
    must_save: bool = False,
) -> IndexReport:
    """Load the knowledge base and make the index match it (rebuilding only what changed).

    If the data folder is read-only, a rebuilt index is served from memory (after a
    line to ``notify``); with ``force`` or ``must_save`` that is an `IndexStoreError`.
    """
    start = time.perf_counter()
    kb = load_knowledge_base(settings)
    for problem in kb.problems:
        if notify:
            notify(f"skipped {problem}")
    passages = passages_of(kb.sections)
    if force:
        index, plan = build_index(
            settings.index_dir,
            passages,
            embedder,
            articles=kb.owners,
            hnsw_min_passages=settings.hnsw_min_passages,
            progress=progress,
            threads=settings.threads,
        )
    else:
        index, plan = open_index(
            settings.index_dir,
            passages,
            embedder,
            articles=kb.owners,
            hnsw_min_passages=settings.hnsw_min_passages,
            notify=notify,
            progress=progress,
            threads=settings.threads,
            in_memory_if_read_only=not must_save,
        )
    return IndexReport(knowledge=kb, index=index, plan=plan, seconds=time.perf_counter() - start)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Everything derived from one state of the knowledge folder; replaced whole on reload."""

    knowledge: KnowledgeBase
    index: HybridIndex
    plan: IndexPlan | None
    careers: CareerLexicon
    synonyms: Synonyms
    retriever: Retriever


@dataclass(frozen=True, slots=True)
class ReloadReport:
    """What a reload found: the articles now served, those skipped, and what the index rebuilt."""

    articles: int
    problems: tuple[str, ...]
    plan: IndexPlan | None
    seconds: float


def learn_parts(settings: Settings, *, knowledge: KnowledgeBase, aspects: AspectLexicon,
                embedder: Embedder) -> LearnedParts | None:
    """The part model of the training sets ``settings`` name, read from or stored in its data folder
    (`bot.learned_parts`); None when learning is turned off or the sets hold too few questions."""
    if not settings.learn_parts:
        return None
    return load_learned_parts([settings.parts_training_path], knowledge=knowledge, aspects=aspects,
                              embedder=embedder, store=settings.parts_store)


class Advisor:
    """Answers career questions from the knowledge base.

    Thread-safe: ``ask`` may run concurrently, also while `reload` swaps in a new
    index — each question is answered wholly from the old or wholly from the new one.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        embedder: Embedder | None = None,
        notify: Notify | None = None,
        progress: Notify | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder or make_embedder(settings)  # make_embedder warms it up
        if embedder is not None:
            self.embedder.embed_queries(["warm up"])  # load weights now, not inside the first (maybe concurrent) question
        self.prompts = PromptLibrary(folder=settings.prompts_dir)
        #: Unit vectors by the same embedder, kept across reloads (only changed units are embedded again).
        self.unit_meaning = UnitMeaning(embedder=self.embedder)
        self._reload_lock = threading.Lock()
        self._snapshot = self._load(notify=notify, progress=progress)
        calibration = self._snapshot.retriever.calibration
        if calibration.source == "default":
            log.warning(
                "embedder %r is not calibrated: confidence uses the generic thresholds %s; "
                "fit its own with `careerbot calibrate SET…` (a question set with out-of-scope items)",
                self.embedder.id, calibration.describe(),
            )
        self._backends: dict[str, AnswerBackend] = {}
        self.backend(settings.backend)  # fail fast on an unknown or misconfigured backend

    def _load(self, *, notify: Notify | None, progress: Notify | None) -> _Snapshot:
        report = refresh_index(self.settings, self.embedder, notify=notify, progress=progress)
        careers = CareerLexicon.from_articles(report.knowledge.articles)
        synonyms = Synonyms.load(self.settings.knowledge_dir / SYNONYMS_FILE)
        aspects = AspectLexicon.load(self.settings.knowledge_dir / ASPECTS_FILE)
        cosines = self.settings.cosine_low, self.settings.cosine_high
        learned = learn_parts(self.settings, knowledge=report.knowledge, aspects=aspects, embedder=self.embedder)
        retriever = Retriever(
            index=report.index,
            embedder=self.embedder,
            careers=careers,
            synonyms=synonyms,
            aspects=aspects,
            candidates=self.settings.candidates,
            learned=learned,
            weights=RankingWeights(
                dense=self.settings.rank_dense,
                lexical=self.settings.rank_lexical,
                role=self.settings.rank_part,
                career=self.settings.rank_career,
                interview=self.settings.rank_interview,
                learned=self.settings.rank_learned,
                section=self.settings.rank_section,
            ),
            calibration=resolve_calibration(
                embedder_id=self.embedder.id,
                stored=report.index.calibration,
                shipped=getattr(self.embedder, "calibration", None),
                setting=None if cosines[0] is None or cosines[1] is None else (cosines[0], cosines[1]),
            ),
        )
        retriever.by_meaning.prepare()
        return _Snapshot(
            knowledge=report.knowledge,
            index=report.index,
            plan=report.plan,
            careers=careers,
            synonyms=synonyms,
            retriever=retriever,
        )

    def reload(self, *, notify: Notify | None = None) -> ReloadReport:
        """Re-read the knowledge folder, re-index what changed, and swap the result in atomically.

        Questions asked meanwhile are answered from the previous snapshot. A broken
        article is reported (``problems``) and the others stay served; if the
        reload itself fails, the previous snapshot stays and the error propagates.
        """
        start = time.perf_counter()
        with self._reload_lock:
            snapshot = self._load(notify=notify, progress=None)
            self._snapshot = snapshot
        return ReloadReport(
            articles=len(snapshot.knowledge.articles),
            problems=tuple(str(p) for p in snapshot.knowledge.problems),
            plan=snapshot.plan,
            seconds=time.perf_counter() - start,
        )

    @property
    def knowledge(self) -> KnowledgeBase:
        return self._snapshot.knowledge

    @property
    def index(self) -> HybridIndex:
        return self._snapshot.index

    @property
    def index_plan(self) -> IndexPlan | None:
        return self._snapshot.plan

    @property
    def careers(self) -> CareerLexicon:
        return self._snapshot.careers

    @property
    def synonyms(self) -> Synonyms:
        return self._snapshot.synonyms

    @property
    def retriever(self) -> Retriever:
        return self._snapshot.retriever

    def backend(self, name: str) -> AnswerBackend:
        """The named backend, created once."""
        if name not in self._backends:
            self._backends[name] = make_backend(name, self.settings, self.prompts)
        return self._backends[name]

    def ask(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        top_k: int | None = None,
        backend: str | None = None,
        on_delta: Callable[[str], None] | None = None,
        question_id: str | None = None,
    ) -> Answer:
        """Answer ``question``; ``history`` is the earlier user turns of the conversation, oldest first.

        With ``on_delta`` and a backend that streams (`StreamingBackend`), draft
        pieces of the answer are passed to it as they are written; the returned
        `Answer` is final and may differ from the draft. A failing backend falls
        back to ``extractive``: the user always gets an answer. Each answer is
        logged as one ``bot.answers`` record (``question_id`` names it; one is
        made up when not given) with timings, backend, confidence and citations,
        but not the question's text.
        """
        question = question.strip()
        if not question:
            raise CareerbotError("the question is empty")
        question = question[: self.settings.max_question_chars]
        start = time.perf_counter()
        snapshot = self._snapshot  # one consistent view, even if a reload swaps it meanwhile
        chosen = self.backend(backend or self.settings.backend)
        search_for, rewrite = self._standalone(question, history, chosen, snapshot)
        t0 = time.perf_counter()
        retrieval = snapshot.retriever.search(search_for, history=list(history), top_k=top_k or self.settings.top_k)
        request = AnswerRequest(
            question=question,
            retrieval=retrieval,
            knowledge=snapshot.knowledge,
            history=tuple(history),
            aspects=snapshot.retriever.aspects,
            careers=snapshot.careers,
            meaning=self.unit_meaning,
        )
        t1 = time.perf_counter()
        try:
            if on_delta is not None and isinstance(chosen, StreamingBackend):
                answer = chosen.stream(request, on_delta)
            else:
                answer = chosen.answer(request)
        except BackendError as exc:
            log.warning("backend %s failed (%s); answering extractively", chosen.name, exc)
            answer = self.backend("extractive").answer(request)
        t2 = time.perf_counter()
        timings = {**retrieval.timings_ms, "compose": (t2 - t1) * 1000, "total": (t2 - start) * 1000}
        usage = answer.usage
        if rewrite is not None:
            timings["rewrite"] = (t0 - start) * 1000
            usage = merge_rewrite_usage(answer.usage, rewrite)
        timings.update(answer.timings_ms)
        answer = replace(answer, timings_ms=timings, usage=usage)
        _log_answer(answer, question_id or uuid.uuid4().hex[:12])
        return answer


    def _standalone(
        self, question: str, history: Sequence[str], backend: AnswerBackend, snapshot: _Snapshot
    ) -> tuple[str, Rewrite | None]:
        """The question to search for, and the backend's rewrite of it (None when none was asked for).

        An LLM backend rewrites a follow-up that names no career into a standalone question — only with
        history, ``CAREERBOT_LLM_REWRITE_FOLLOWUPS`` on and a backend that has ``rewrite``. The rewrite is
        searched for only when it is a usable question (`GroundedLLMBackend.rewrite`); otherwise the question
        as asked is, with the history as heuristic context.
        """
        rewrite = getattr(backend, "rewrite", None)
        legacy = getattr(backend, "rewrite_question", None)  # a third-party backend's str-returning rewrite
        if not (history and self.settings.llm_rewrite_followups and (callable(rewrite) or callable(legacy))):
            return question, None
        if snapshot.careers.mentions(question):
            return question, None  # it names its career: standalone enough
        if not callable(rewrite):
            text = str(legacy(question, list(history), language=detect_language(question))).strip()  # type: ignore[misc]
            result = Rewrite(question=text or question, used=bool(text), reason=None if text else "empty",
                             proposed=text, usage={})
        else:
            result = rewrite(question, list(history), language=detect_language(question))
        return (result.question.strip()[: self.settings.max_question_chars] or question), result


def merge_rewrite_usage(usage: dict[str, Any], rewrite: Rewrite) -> dict[str, Any]:
    """``usage`` of an answer with its follow-up rewrite's call added in: calls, tokens, ``rewrite`` details."""
    extra = rewrite.usage
    merged = dict(usage) if usage else {"calls": 0, "retries": 0, "input_tokens": 0, "output_tokens": 0, "llm_ms": 0.0}
    for key in ("calls", "retries", "input_tokens", "output_tokens"):
        merged[key] = merged.get(key, 0) + extra.get(key, 0)
    merged["llm_ms"] = round(merged.get("llm_ms", 0.0) + extra.get("llm_ms", 0.0), 2)
    merged["call_ms"] = list(extra.get("call_ms", [])) + list(merged.get("call_ms", []))
    merged["rewrite"] = {
        "used": rewrite.used,
        "reason": rewrite.reason,
        "proposed": rewrite.proposed,
        "calls": extra.get("calls", 0),
        "input_tokens": extra.get("input_tokens", 0),
        "output_tokens": extra.get("output_tokens", 0),
        "llm_ms": extra.get("llm_ms", 0.0),
    }
    return merged


def _log_answer(answer: Answer, question_id: str) -> None:
    """One structured record per answer: what was decided and how long each stage took; no text, no secrets."""
    usage = {k: v for k, v in answer.usage.items() if isinstance(v, (int, float, str)) or v is None}
    answer_log.info(
        "answered %s in %.0f ms (%s, confidence %.2f%s)",
        question_id,
        answer.timings_ms.get("total", 0.0),
        answer.backend,
        answer.retrieval.confidence,
        ", abstained" if answer.abstained else "",
        extra={
            "event": "answer",
            "question_id": question_id,
            "backend": answer.backend,
            "language": answer.language,
            "confidence": round(answer.retrieval.confidence, 4),
            "confident": answer.confident,
            "abstained": answer.abstained,
            "careers": list(answer.retrieval.careers),
            "citations": [c.section_id for c in answer.citations],
            "latency_ms": {k: round(v, 2) for k, v in answer.timings_ms.items()},
            "usage": usage,
        },
    )
