"""Hybrid retrieval: dense (FAISS) and lexical (BM25) rankings fused, with a confidence.

The question's careers steer the search: a question that names careers is
searched within those careers' articles first (one list per career,
interleaved, so a comparison draws on both), then the rest of the knowledge
base fills the remaining places. A follow-up that names no career inherits the
careers of the most recent earlier turn that did.

Confidence combines two signals that fail differently: the best dense cosine
(meaning) and how much of the question's term weight the top passages contain
(coverage). Off-topic questions score low on both; calibration is in the
question-set tests.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import faiss
import numpy as np

from .careers import CareerLexicon
from .embedders import Embedder
from .index import HybridIndex
from .passages import Passage
from .synonyms import Synonyms
from .text import detect_language, terms

__all__ = ["Hit", "Retrieval", "Retriever", "rrf_fuse"]

#: Cosines of the default embedder below LOW say nothing; above HIGH they are a clear match.
COSINE_LOW = 0.15
COSINE_HIGH = 0.45
#: A question that names a career the knowledge base covers closes this share of the gap to 1.
CAREER_BONUS = 0.5
#: A follow-up whose words (career names removed) hold no kanji and at most this many
#: katakana or Latin letters (「シニアだと？」, 「じゃあMLEは？」) has no topic of its own.
TOPICLESS_MAX_CHARS = 6
_EN_STOPWORDS = frozenset(
    "a an and are as at be can do does for from how i in is it me my of on or should the to what when where which "
    "who why will with you your about into than that this there their they we".split()
)


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage: its reciprocal-rank-fusion ``score``, ``dense`` cosine and ``lexical`` BM25 score."""

    passage: Passage
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True, slots=True)
class Retrieval:
    """What a search found and how sure it is."""

    query: str
    hits: tuple[Hit, ...]
    confidence: float
    careers: tuple[str, ...]
    careers_from_context: bool
    language: str
    timings_ms: dict[str, float] = field(default_factory=dict)
    signals: dict[str, float] = field(default_factory=dict)
    #: Question terms (career names removed, synonyms added) with their idf: what evidence should contain.
    term_weights: dict[str, float] = field(default_factory=dict)
    #: A job title the question asks about that no article covers (「Webエンジニア」), if any.
    uncovered_career: str | None = None


def rrf_fuse(rankings: Sequence[Sequence[int]], *, k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: ``sum(1 / (k + rank))`` over rankings (rank from 1), best first."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def _has_topic(text: str) -> bool:
    """Whether a (career-stripped) question says what it is about: a kanji word, or more than a short word.

    Japanese topics (年収, 面接, 将来性, 会社) are kanji; what is left without one is
    a level (シニア) or a bare reference (それは？), which needs the conversation's topic.
    """
    letters = [ch for ch in text if ch.isalnum() and not ("\u3040" <= ch <= "\u309f")]
    has_kanji = any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in letters)
    return has_kanji or len(letters) > TOPICLESS_MAX_CHARS


def _straddles_kana(term: str) -> bool:
    """A bigram across a hiragana/other-script boundary (「の年」, 「収は」): a particle glued to a word."""
    if len(term) != 2:
        return False
    kana = [("\u3040" <= ch <= "\u309f") for ch in term]
    return kana[0] != kana[1]


def _interleave(lists: Sequence[Sequence[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Round-robin over ranked lists (first of each, then second of each…), without repeats."""
    out: list[tuple[int, float]] = []
    seen: set[int] = set()
    for row in range(max((len(x) for x in lists), default=0)):
        for ranked in lists:
            if row < len(ranked) and ranked[row][0] not in seen:
                seen.add(ranked[row][0])
                out.append(ranked[row])
    return out


class Retriever:
    """Searches one `HybridIndex` with one `Embedder`; safe to share between threads."""

    def __init__(
        self,
        *,
        index: HybridIndex,
        embedder: Embedder,
        careers: CareerLexicon,
        synonyms: Synonyms | None = None,
        candidates: int = 50,
        rrf_k: int = 60,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.careers = careers
        self.synonyms = synonyms or Synonyms(groups=[])
        self.candidates = candidates
        self.rrf_k = rrf_k
        groups: dict[str, list[int]] = {}
        for i, p in enumerate(index.passages):
            groups.setdefault(p.section.slug, []).append(i)
        self._by_article = {slug: np.asarray(ids, dtype=np.int64) for slug, ids in groups.items()}

    def _ranked(self, qvec: np.ndarray, lex: np.ndarray, subset: np.ndarray | None) -> list[tuple[int, float]]:
        """(passage position, fused score) best first, over ``subset`` or the whole index."""
        k = self.candidates
        if subset is None:
            _, dense_ids = self.index.dense_search(qvec, k)
            pool_scores = lex
            order = np.argsort(-pool_scores, kind="stable")[:k]
            lexical_ids = [int(i) for i in order if pool_scores[i] > 0]
        else:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(subset))
            _, ids = self.index.dense.search(qvec.reshape(1, -1), min(k, len(subset)), params=params)
            dense_ids = ids[0][ids[0] >= 0]
            sub_scores = lex[subset]
            order = np.argsort(-sub_scores, kind="stable")[:k]
            lexical_ids = [int(subset[i]) for i in order if sub_scores[i] > 0]
        return rrf_fuse([[int(i) for i in dense_ids], lexical_ids], k=self.rrf_k)

    def search(self, question: str, *, history: Sequence[str] = (), top_k: int = 5) -> Retrieval:
        """The ``top_k`` passages for ``question``, given earlier user turns ``history`` (oldest first)."""
        t0 = time.perf_counter()
        asked = question
        # A follow-up with hardly a topic of its own (「シニアだと？」, 「じゃあMLエンジニアは？」)
        # keeps the topic of the conversation so far.
        if history and not _has_topic(self.careers.strip(question)):
            carried: list[str] = []
            for turn in reversed(history):  # back to the latest turn that had a topic of its own
                carried.insert(0, self.careers.strip(turn))
                if _has_topic(carried[0]):
                    break
            question = " ".join([question, *carried]).strip()
        careers = self.careers.mentions(question)
        from_context = False
        if not careers:
            for turn in reversed(history):
                careers = self.careers.mentions(turn)
                if careers:
                    from_context = True
                    break
        names = [c.name for slug in careers if (c := self.careers.get(slug))]
        query = f"{' '.join(names)} {question}".strip() if from_context else question
        expansion = " ".join(self.synonyms.expansions(question))
        # Within a career's own article its name says nothing: search there by the
        # question without that name (other careers named stay: they are the topic).
        topics = [self.careers.strip(question, only=slug) for slug in careers]

        t1 = time.perf_counter()
        vectors = self.embedder.embed_queries([query, *topics])
        t2 = time.perf_counter()
        qvec = vectors[0]
        lex = self.index.lexical_scores(terms(f"{query} {expansion}"))
        per_career: list[list[tuple[int, float]]] = []
        for slug, topic, tvec in zip(careers, topics, vectors[1:], strict=True):
            if slug in self._by_article:
                topic_lex = self.index.lexical_scores(terms(f"{topic} {expansion}"))
                per_career.append(self._ranked(tvec, topic_lex, self._by_article[slug]))
        ranking = _interleave(per_career)
        seen = {i for i, _ in ranking}
        ranking += [(i, score) for i, score in self._ranked(qvec, lex, None) if i not in seen]
        chosen = ranking[:top_k]
        cosines = self.index.vectors[[i for i, _ in chosen]] @ qvec if chosen else np.zeros(0)
        hits = tuple(
            Hit(passage=self.index.passages[i], score=score, dense=float(cosines[rank]), lexical=float(lex[i]))
            for rank, (i, score) in enumerate(chosen)
        )
        t3 = time.perf_counter()
        language = detect_language(asked)
        stripped = self.careers.strip(question)  # what the question is about, career names aside
        topic_terms = terms(f"{stripped} {expansion}")
        weights = {t: self.index.idf(t) for t in topic_terms if t not in _EN_STOPWORDS and not _straddles_kana(t)}
        signals = self._signals(stripped, hits, language, named_career=bool(careers))
        # A question about a career no article covers is not covered, however close its
        # words come (「Webエンジニアの年収」 would otherwise land on another career's salary table).
        uncovered = None if careers else self.careers.uncovered(asked)
        if uncovered:
            signals["confidence"] = 0.0
        return Retrieval(
            query=query,
            hits=hits,
            confidence=signals["confidence"],
            careers=tuple(careers),
            careers_from_context=from_context,
            language=language,
            timings_ms={"embed": (t2 - t1) * 1000, "search": (t3 - t2) * 1000, "retrieve": (t3 - t0) * 1000},
            signals=signals,
            term_weights=weights,
            uncovered_career=uncovered,
        )

    def _signals(self, topic: str, hits: Sequence[Hit], language: str, *, named_career: bool) -> dict[str, float]:
        """Dense strength, lexical coverage of the ``topic`` (question minus career names), combined in [0, 1].

        English questions rely on the dense signal alone: the articles are Japanese,
        so their words rarely appear in the articles.
        """
        if not hits:
            return {"dense": 0.0, "coverage": 0.0, "confidence": 0.0}
        top_dense = max(h.dense for h in hits[:3])
        dense_part = min(1.0, max(0.0, (top_dense - COSINE_LOW) / (COSINE_HIGH - COSINE_LOW)))
        q_terms = [t for t in dict.fromkeys(terms(topic)) if t not in _EN_STOPWORDS]
        found: set[str] = set()
        for h in hits[:3]:
            found |= self.index.terms_of(h.passage)
        weights = {t: self.index.idf(t) for t in q_terms}
        total = sum(weights.values())
        coverage = sum(w for t, w in weights.items() if t in found) / total if total else 0.0
        confidence = dense_part if language == "en" else 0.5 * dense_part + 0.5 * coverage
        if named_career:
            confidence += (1.0 - confidence) * CAREER_BONUS
        return {"dense": top_dense, "coverage": coverage, "confidence": confidence}
