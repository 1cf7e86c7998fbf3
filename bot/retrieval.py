"""Hybrid retrieval: dense (FAISS) and lexical (BM25) evidence plus what the question asks, with a confidence.

Every search starts from one `QuestionAnalysis` (`bot.analysis`): the careers the
question is about, the aspect it asks about and the part of the article that
answers it. A passage's score is its meaning (cosine) and its words (BM25), each
scaled by the best candidate's, plus priors from the analysis, all named in
`RankingWeights`:

- a passage of the part that answers the aspect (salary → the salary table,
  「向いてる人」 → まとめ) gains ``role``; the interview part, whose questions hold
  every topic's words, loses ``interview`` when the question asks about
  something else;
- a passage of a career the question is about gains ``career`` (the first
  career fully, later ones less): a strong prior, not a filter, so another
  article's passage can still win on content. Within its own article a career's
  name says nothing, so those passages are scored against the question without it;
- a passage gains ``learned`` times the probability the learned parts (`bot.learned_parts`) give its
  part, when they judge the question: a soft second opinion beside the one aspect decided (a question
  between the main work and working with the sales team lifts both), and ``section`` times the one
  they give its section; not in comparisons, which rank each career's own same part;
- a comparison ranks each compared career's passages separately and interleaves
  them, so both careers' answering parts come first;
- the article's tag list is never retrieved;
- when the first passage is of another part than the aspect's and the learned parts take its part for the
  more probable, the analysis passed on asks about that part (see `Retriever._part_of_top`).

Confidence combines the best cosine (meaning) with how much of the question's
term weight the top passages contain (coverage). Where a cosine counts as
nothing and where as a clear match is the embedder's `Calibration`
(`bot.calibration`): fitted by ``careerbot calibrate`` and kept in the index
manifest, else shipped with the embedder, else a generic default.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .analysis import STOPWORDS, Analyzer, QuestionAnalysis, is_content_term, unknown_words
from .aspect_examples import AspectsByMeaning
from .aspects import Aspect, AspectLexicon, lead_sections
from .calibration import Calibration, Evidence, confidence_of, resolve_calibration
from .careers import CareerLexicon
from .embedders import Embedder
from .index import HybridIndex
from .knowledge import Section
from .learned_parts import (FILL_PROBABILITY, IN_SCOPE_PROBABILITY, OUT_OF_SCOPE, OUT_OF_SCOPE_PROBABILITY,
                            OVERRULE_PROBABILITY, LearnedParts)
from .passages import Passage
from .synonyms import Synonyms
from .text import normalize, terms

__all__ = ["Hit", "RankingWeights", "Retrieval", "Retriever"]

#: A Latin name with a mark inside (normalised): 「a/b」 of A/Bテスト, 「scikit-learn」, 「ci/cd」.
_MARKED_NAME = re.compile(r"(?<![a-z0-9])[a-z0-9]+(?:[/\-.&][a-z0-9]+)+(?![a-z0-9])")
#: A katakana word of three or more letters (a loanword: 「マーケター」, 「リモート」).
_KATAKANA_WORD = re.compile(r"[\u30a1-\u30fa\u30fc]{3,}")

#: A question about a career the knowledge base covers closes `CAREER_BONUS` of the gap to 1; so does one that
#: names no career when every word of its topic is in the articles and the top passages hold enough of it.
KNOWN_TOPIC_COVERAGE = 0.3
#: A Japanese question that asks about no part of the template and whose asking sentence has a word the
#: articles never use asks about something they do not cover (「残業」, 「男女比」, 「転勤」); the background
#: a long message starts with does not count. Its confidence is scaled by `UNKNOWN_TOPIC_FACTOR`. With an
#: aspect, the part asked about is covered and an unknown Japanese word is more often how the question is
#: put than its topic (counting them all: in-scope abstention on dev 0.007 → 0.036); an unknown name in
#: Latin letters (「TOEIC」, 「PMP」) or a katakana word the articles never use (「フルリモート」) in the
#: sentence that asks still is its topic. Requiring two such words when a career is named kept 3 more
#: in-scope test questions but answered 3 more out-of-scope ones; one word it is.


def _as_typed_latin(word: str, question: str) -> str | None:
    """Latin-letter ``word`` (normalised) as ``question`` writes it (「Figma」 for ``figma``), or None."""
    m = re.search(rf"(?<![a-z0-9]){re.escape(word)}(?![a-z0-9])", unicodedata.normalize("NFKC", question), re.IGNORECASE)
    return m.group() if m else None


#: A question that asks for a count, a length, a score or a date (normalised): "how many", "how long", "what score",
#: 「何人」, 「何時間」, 「何週間」, 「何点」, 「何ヶ月」 (not 「何年か」:
#: "some years"); "when is", 「いつ開催」, 「何月」 (not 「いつ頃」 or 「いつから」: when in a career, which a ladder answers).
_FIGURE_ASKED = re.compile(
    r"(?<![a-z])(?:how\s+(?:many|long|old)|what\s+score)(?![a-z])|何(?:人|時間|ヶ月|か月|カ月|回|社|件|%|割|日|年(?!か)|月|曜|週|点|歳|位)"
    r"|(?<![a-z])(?:when(?:'s|\s+(?:is|are|was))|what\s+(?:date|day))(?![a-z])|いつ(?!も|か|の間|頃|ごろ|から|まで|にな)"
)
#: A figure: a number with its unit or counter (「500〜850万円」, 「7年以上」, 「80%」), not a list's numbering.
_FIGURE = re.compile(r"[0-9０-９]+(?:[,.][0-9]+)?\s*(?:万|億|円|%|％|年|ヶ月|か月|カ月|時間|人|名|社|件|回|日|倍|歳)")
#: A quoted title: in 『』 (a book's marks), or in straight or curly quotes.
_QUOTED_TITLE = re.compile(r"『([^』]{2,60})』|[\"“']([^\"”']{3,60})[\"”']")


def _plain_words(cue: str) -> bool:
    """Whether ``cue`` is made of words that say nothing by themselves ("what do", "work on")."""
    words = re.findall(r"[a-z']+", cue.lower())
    return bool(words) and all(w in STOPWORDS for w in words)


def _title_cased(phrase: str) -> bool:
    """Whether most of ``phrase``'s Latin words of four or more letters start with a capital, as titles are written."""
    words = re.findall(r"[A-Za-z]{4,}", phrase)
    return len(words) >= 2 and sum(w[0].isupper() for w in words) > len(words) / 2


def _written_as_name(word: str, question: str) -> bool:
    """Whether Latin-letter ``word`` (normalised) is written in ``question`` with a capital or a digit, as names
    and acronyms are (「SPI」, 「Figma」, 「G検定」), rather than in small letters as a plain English word is."""
    typed = _as_typed_latin(word, question)
    return typed is None or not typed.islower()


@dataclass(frozen=True, slots=True)
class RankingWeights:
    """How the evidence for a passage adds up to its score (the ``CAREERBOT_RANK_*`` settings; measured on the
    dev split, see the README)."""

    #: Weight of the cosine, divided by the best candidate's cosine.
    dense: float = 0.5
    #: Weight of the BM25 score, divided by the best candidate's.
    lexical: float = 0.5
    #: Added to passages of the article part that answers the question's aspect.
    role: float = 0.5
    #: Added to passages of the question's first career; later careers get ``career * secondary``.
    career: float = 0.6
    secondary: float = 0.7
    #: Taken from the interview part when the question asks about another aspect.
    interview: float = 0.3
    #: Times the learned parts' probability of a passage's part, added to it (not in comparisons).
    learned: float = 0.5
    #: Times the learned probability of a passage's section, added to it (about a career; not in comparisons).
    section: float = 1.0


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved passage: its fused ``score``, ``dense`` cosine and ``lexical`` BM25 score (whole question)."""

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
    #: Question terms (career names and the aspect's cue removed, synonyms added) with their idf.
    term_weights: dict[str, float] = field(default_factory=dict)
    #: A job title the question asks about that no article covers (「Webエンジニア」), if any.
    uncovered_career: str | None = None
    #: The question analysis every later step reads.
    analysis: QuestionAnalysis | None = None
    #: What ``confidence`` was computed from (``careerbot calibrate`` refits it).
    evidence: Evidence | None = None
    #: The question's vector (what `bot.answer.meaning` compares units with), when it was embedded: of a question
    #: about one career, its vector without the career's name, which every unit of that article shares.
    query_vector: np.ndarray | None = field(default=None, repr=False, compare=False)


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


def _scaled(values: np.ndarray) -> np.ndarray:
    """``values`` divided by their maximum (all zeros stay zeros)."""
    top = float(values.max()) if values.size else 0.0
    return values / top if top > 0 else np.zeros_like(values)


class Retriever:
    """Searches one `HybridIndex` with one `Embedder`; safe to share between threads."""

    def __init__(
        self,
        *,
        index: HybridIndex,
        embedder: Embedder,
        careers: CareerLexicon,
        synonyms: Synonyms | None = None,
        aspects: AspectLexicon | None = None,
        candidates: int = 50,
        weights: RankingWeights | None = None,
        calibration: Calibration | None = None,
        learned: LearnedParts | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.careers = careers
        self.synonyms = synonyms or Synonyms(groups=[])
        self.aspects = aspects or AspectLexicon(roles=[], aspects=[])
        self.candidates = candidates
        self.weights = weights or RankingWeights()
        #: The cosine thresholds of this embedder: given, else fitted in the manifest, else the embedder's own.
        self.calibration = calibration or resolve_calibration(
            embedder_id=embedder.id, stored=index.calibration, shipped=getattr(embedder, "calibration", None)
        )
        #: What a question that names a career but no part asks about, recognised by meaning.
        self.by_meaning = AspectsByMeaning(aspects=self.aspects.aspects, embedder=embedder, calibration=self.calibration)
        #: What a question asks about, learned from question sets (`bot.learned_parts`); None: not learned.
        self.learned = learned
        sections = list({p.section.id: p.section for p in index.passages}.values())
        self.analyzer = Analyzer(careers=careers, aspects=self.aspects, synonyms=self.synonyms, idf=index.idf,
                                 partners=self.aspects.partner_roles(sections),
                                 employers=[n for e in self.aspects.employers(sections) for n in (e, *self.synonyms.of(e))],
                                 unnamed_places=self.aspects.unnamed_places(sections),
                                 definitions=self._definitions(sections))
        #: Words that never make a topic unknown: fillers (「ダメ」) and synonyms of the articles' words (「スマホ」).
        self._not_topics = self.aspects.fillers | self.synonyms.words
        #: The articles' text (headings and passages), normalised: to tell whether they ever write a named thing (「G検定」).
        self._text = "\n".join(dict.fromkeys(normalize(f"{' '.join(p.section.breadcrumb)}\n{p.text}")
                                              for p in index.passages))
        #: Names the articles write with a mark inside (「A/Bテスト」, 「scikit-learn」), joined (``ab``, ``scikitlearn``):
        #: how a question often writes them.
        self._joined = frozenset(re.sub(r"[/\-.&]", "", m) for m in _MARKED_NAME.findall(self._text))
        #: Every katakana string of three or more letters the articles use (in text or headings, normalised):
        #: the pieces of their katakana words, to tell a katakana word they never use in one set lookup.
        runs = set(_KATAKANA_WORD.findall(self._text))  # a line break ends a run, so none spans two passages
        self._katakana = frozenset(r[i:j] for r in runs for i in range(len(r) - 2) for j in range(i + 3, len(r) + 1))
        slugs: list[str] = []
        roles: list[str] = []
        searchable: list[bool] = []
        leads = lead_sections(sections)
        for p in index.passages:
            slugs.append(p.section.slug)
            # A lead-in's one sentence does not answer its part's questions: its subsections do.
            roles.append("" if p.section.id in leads else self.aspects.role_of(p.section) or "")
            searchable.append(self.aspects.searchable(p.section))
        self._slug = np.asarray(slugs, dtype=object)
        self._role = np.asarray(roles, dtype=object)
        self._section = np.asarray([p.section.id for p in index.passages], dtype=object)
        self._searchable = np.asarray(searchable, dtype=bool)

    def _definitions(self, sections: Sequence[Section]) -> dict[str, str]:
        """Each career's definition part, normalised (slug → text)."""
        parts: dict[str, list[str]] = {}
        for s in sections:
            if self.aspects.role_of(s) == "definition":
                parts.setdefault(s.slug, []).append(normalize(s.text))
        return {slug: "\n".join(texts) for slug, texts in parts.items()}

    def analyze(self, question: str, *, history: Sequence[str] = ()) -> QuestionAnalysis:
        """The question's analysis (the same one `search` makes)."""
        return self.analyzer.analyze(question, history=history)

    def search(
        self,
        question: str,
        *,
        history: Sequence[str] = (),
        top_k: int = 5,
        analysis: QuestionAnalysis | None = None,
    ) -> Retrieval:
        """The ``top_k`` passages for ``question``, given earlier user turns ``history`` (oldest first)."""
        t0 = time.perf_counter()
        a = analysis or self.analyzer.analyze(question, history=history)
        careers = list(a.slugs)
        from_context = bool(a.careers) and all(c.via == "context" for c in a.careers)
        names = [c.name for slug in careers if (c := self.careers.get(slug))]
        query = f"{' '.join(names)} {a.search_text}".strip() if from_context else a.search_text
        expansion = " ".join(self.synonyms.expansions(a.search_text))
        topics = [self.careers.strip(a.search_text, only=slug) for slug in careers]

        t1 = time.perf_counter()
        vectors = self.embedder.embed_queries([query, *topics])
        t2 = time.perf_counter()
        learned = self._learned(a, vectors[0])
        if (part := self._learned_part(a, learned)) is not None:
            a = self.analyzer.with_aspect(a, part[0], learned=part[1])
        elif a.aspect is None and a.careers and (found := self.by_meaning.recognise(vectors[0])):
            a = self.analyzer.with_aspect(a, *found)
        # An English cue of plain words ("what do", "work on") says little of the part asked: the aspect the
        # question means, when one stands out, decides ("What do they usually ask at the interview?").
        elif (a.language == "en" and a.aspect_cue is not None and a.careers and _plain_words(a.aspect_cue)
              and (found := self.by_meaning.recognise(vectors[0])) and found[0].name != a.aspect.name):
            a = self.analyzer.with_aspect(a, *found)
        lex = self.index.lexical_scores(self._query_terms(f"{query} {expansion}"))
        pool = self._candidates(vectors[0], lex, careers, a)
        base = self._evidence(pool, vectors[0], lex)
        # Not in comparisons; a section is a career's: only for a question about one (naming none, its guess
        # moves the evidence).
        soft = {} if a.comparison else learned
        sections = self.learned.section_probabilities(vectors[0]) if soft and a.slugs and self.learned else {}
        prior = self._priors(pool, a, soft, sections)
        scores = base + prior
        # Within a career's own article, its name says nothing: score those passages against the topic.
        for slug, topic, vec in zip(careers, topics, vectors[1:], strict=True):
            own = self._slug[pool] == slug
            if own.any():
                topic_lex = self.index.lexical_scores(self._query_terms(f"{topic} {expansion}"))
                scores[own] = self._evidence(pool[own], vec, topic_lex) + prior[own]
        order = sorted(range(len(pool)), key=lambda i: (-scores[i], int(pool[i])))
        ranked = [(int(pool[i]), float(scores[i])) for i in order]
        if a.comparison and len(careers) >= 2:
            lists = [[(i, s) for i, s in ranked if self._slug[i] == slug] for slug in careers]
            first = _interleave(lists)
            seen = {i for i, _ in first}
            ranked = first + [(i, s) for i, s in ranked if i not in seen]
        chosen = ranked[:top_k]
        cosines = self.index.vectors[[i for i, _ in chosen]] @ vectors[0] if chosen else np.zeros(0)
        hits = tuple(
            Hit(passage=self.index.passages[i], score=score, dense=float(cosines[r]), lexical=float(lex[i]))
            for r, (i, score) in enumerate(chosen)
        )
        t3 = time.perf_counter()
        if chosen and (top := self._part_of_top(a, str(self._role[chosen[0][0]]), learned)) is not None:
            a = self.analyzer.with_aspect(a, top, learned=learned[top.name])
        # Whether a company the articles list as an employer hires (「メルカリはPdMを採用してる？」) is what their
        # employers part answers, however often out-of-scope questions name companies.
        listed = a.aspect is not None and a.aspect.name == "companies" and self.analyzer.names_employer(a.asked_topic)
        out_of_scope = None if listed else learned.get(OUT_OF_SCOPE)
        signals, evidence = self._signals(a, hits, out_of_scope=out_of_scope)
        return Retrieval(
            query=query,
            hits=hits,
            confidence=signals["confidence"],
            careers=tuple(careers),
            careers_from_context=from_context,
            language=a.language,
            timings_ms={"embed": (t2 - t1) * 1000, "search": (t3 - t2) * 1000, "retrieve": (t3 - t0) * 1000},
            signals=signals,
            term_weights=a.terms,
            uncovered_career=a.uncovered_career,
            analysis=a,
            evidence=evidence,
            # Within the career's own article its name says nothing (as in the ranking): units are compared with
            # the rest of the question. Dev +11 / -1, test +2 / -1 against the whole question's vector.
            query_vector=vectors[1] if len(careers) == 1 else vectors[0],
        )

    @staticmethod
    def _query_terms(text: str) -> list[str]:
        """The words searched for: content terms only. Particles and endings (「でよく」, 「ですか」) would
        match every heading that shares them (「面接でよくある質問」) and say nothing of the topic."""
        return [t for t in terms(text) if is_content_term(t)]

    def _candidates(self, qvec: np.ndarray, lex: np.ndarray, careers: Sequence[str], a: QuestionAnalysis) -> np.ndarray:
        """Passage positions worth scoring: the dense and lexical top candidates, and every passage of the
        questioned careers' articles (so a career's answering part is always weighed)."""
        k = self.candidates
        _, dense_ids = self.index.dense_search(qvec, k)
        lexical_ids = np.argsort(-lex, kind="stable")[:k]
        parts = [dense_ids.astype(np.int64), lexical_ids[lex[lexical_ids] > 0].astype(np.int64)]
        for slug in careers:
            parts.append(np.flatnonzero(self._slug == slug))
        if a.roles and not careers:
            parts.append(np.flatnonzero(np.isin(self._role, list(a.roles))))
        pool = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        return pool[self._searchable[pool]]

    def _evidence(self, pool: np.ndarray, qvec: np.ndarray, lex: np.ndarray) -> np.ndarray:
        """Meaning and words of each passage in ``pool``, each scaled by the pool's best."""
        w = self.weights
        if pool.size == 0:
            return np.zeros(0)
        cos = np.clip(self.index.vectors[pool] @ qvec, 0.0, None)
        return w.dense * _scaled(cos) + w.lexical * _scaled(lex[pool].astype(np.float64))

    def _priors(self, pool: np.ndarray, a: QuestionAnalysis, learned: Mapping[str, float],
                sections: Mapping[str, float]) -> np.ndarray:
        """What the analysis says of each passage in ``pool``: its part answers the aspect, or is as probable as
        the learned parts' probabilities ``learned`` say, and its section as ``sections`` say (in the careers
        asked about); its career is asked about."""
        w = self.weights
        prior = np.zeros(len(pool))
        roles = self._role[pool]
        lift = np.zeros(len(pool))
        if learned and w.learned:
            lift += w.learned * np.asarray([learned.get(r, 0.0) if r else 0.0 for r in roles])
        if sections and w.section:
            lift += w.section * np.asarray([sections.get(s, 0.0) for s in self._section[pool]])
        prior += (lift * np.isin(self._slug[pool], list(a.slugs))) if a.slugs else lift  # the part is theirs
        for rank, role in enumerate(a.roles):  # the first part named answers best (suited: まとめ, then とは)
            prior += w.role * (1.0 if rank == 0 else w.secondary) * (roles == role)
        if a.also is not None:  # a second part asked about, after the first
            prior += w.role * w.secondary * np.isin(roles, list(a.also.roles))
        if a.roles and "interview" not in a.roles:
            prior -= w.interview * (roles == "interview")
        slugs = self._slug[pool]
        for rank, slug in enumerate(a.slugs):
            share = 1.0 if rank == 0 or a.comparison else w.secondary
            prior += w.career * share * (slugs == slug)
        return prior

    def _learned(self, a: QuestionAnalysis, vector: np.ndarray) -> dict[str, float]:
        """The learned parts' probabilities for ``a`` (query vector ``vector``); empty when nothing is learned or
        ``a`` is about a career the model's questions are not about."""
        if self.learned is None or not set(a.slugs) <= self.learned.careers:
            return {}
        return self.learned.probabilities(vector)

    def _learned_part(self, a: QuestionAnalysis, learned: dict[str, float]) -> tuple[Aspect, float] | None:
        """The aspect the learned model (its parts' probabilities ``learned``) says ``a`` asks about (the one
        named as the most probable part), with its probability, where the model decides: a question about a
        career that names no part (`FILL_PROBABILITY`), or one whose cue's aspect does not answer from the
        model's part and the model is sure (`OVERRULE_PROBABILITY`). A part the conversation set stays; a
        question most like those the articles do not answer is steered to none."""
        if not learned or a.aspect_turn is not None:
            return None
        role, probability = max(learned.items(), key=lambda kv: kv[1])
        part = None if role == OUT_OF_SCOPE else self.aspects.aspect(role)
        if part is None or (part.needs_career and not a.careers):
            return None
        if a.aspect is None:
            return (part, probability) if a.careers and probability >= FILL_PROBABILITY else None
        if role not in a.aspect.roles and probability >= OVERRULE_PROBABILITY:
            return part, probability
        return None

    def _part_of_top(self, a: QuestionAnalysis, role: str, learned: Mapping[str, float]) -> Aspect | None:
        """The aspect of the first passage's part ``role`` where it is not a part ``a``'s aspect answers from and the
        learned parts (their probabilities ``learned``) take it for more probable than any of those: the ranking,
        steered by the aspect, still put another part first, and the learned parts agree, so the answer is
        composed from that part. 「SaaS系だとどこが採用してる？」 after 「PdMへの転職考えてます」 is about the
        employers, not the learning steps the conversation asked for; "do AI PMs need to write python or is
        reading it enough?" is about skills, not books. None otherwise (and in comparisons)."""
        if not role or a.comparison or not a.roles or role in a.roles or not learned:
            return None
        if learned.get(role, 0.0) <= max(learned.get(r, 0.0) for r in a.roles):
            return None
        part = self.aspects.aspect(role)
        return None if part is None or (part.needs_career and not a.careers) else part

    def _unknown_names(self, a: QuestionAnalysis) -> list[str]:
        """Names that the sentence asking uses and the articles never do: words in Latin letters written as
        names (「TOEIC」, 「Figma」; not 「tech skill」, an English word in a Japanese sentence) and katakana
        words found nowhere in their text (「マーケター」, 「フルリモート」; a loanword is one word, so its
        known bigrams do not make it known)."""
        asked = unknown_words(a.asked_topic, known=self._known_term, fillers=self._not_topics)
        names = [w for w in asked if w.isascii() and _written_as_name(w, a.question)]
        for word in _KATAKANA_WORD.findall(normalize(a.asked_topic)):
            if not self._known_katakana(word) and not any(word in f or f in word for f in self._not_topics if f):
                names.append(word)
        if (named := self._named_cue(a)) is not None and named[1] not in self._text and not self._known_word(named[0]):
            names.append(named[1])
        return names

    def _known_term(self, term: str) -> bool:
        """Whether the articles use ``term``: one of their index terms, or a name they write with a mark inside."""
        return term in self.index.doc_freq or term in self._joined

    def _known_word(self, word: str) -> bool:
        """Whether the articles use ``word`` as a word: a Latin one among their terms, a katakana one in their text."""
        return self._known_term(word) if word.isascii() else self._known_katakana(word)

    @staticmethod
    def _named_cue(a: QuestionAnalysis) -> tuple[str, str] | None:
        """A name in Latin letters or katakana glued before the cue word asked (「G検定」, 「PMP資格」: one
        certification, not certifications in general), and the two as one name, normalised; else None."""
        if a.aspect_cue is None or a.aspect is None or a.aspect.answer != "lines":
            return None  # named things are what those parts list: books, courses, certifications
        cue = normalize(a.aspect_cue)
        if len(cue) < 2 or not all("\u4e00" <= ch <= "\u9fff" for ch in cue):
            return None  # a kanji word (資格, 検定): 「オンライン」 or 「本」 glued to a word is not one name
        m = re.search(rf"([a-z0-9]+|[\u30a1-\u30fa\u30fc]+){re.escape(cue)}", normalize(a.question))
        return (m.group(1), m.group()) if m else None

    def _unknown_acronyms(self, a: QuestionAnalysis) -> list[str]:
        """Acronyms (two to six letters or digits, written in capitals: 「PMP」) in the sentence asking that the
        articles never use."""
        found: list[str] = []
        for word in dict.fromkeys(re.findall(r"(?<![a-z0-9])[a-z][a-z0-9]{1,5}(?![a-z0-9])", a.asked_topic)):
            if self._known_term(word) or word in self._not_topics:
                continue
            typed = _as_typed_latin(word, a.question)
            if typed is not None and typed.isupper():
                found.append(word)
        return found

    def _unknown_titles(self, a: QuestionAnalysis) -> list[str]:
        """Titles the question quotes (『…』, or a Title Cased phrase in quotes: 'Cracking the PM Interview') that
        the articles' text never holds, normalised; a quoted remark (「この機能作って」) is no title."""
        found = []
        for m in _QUOTED_TITLE.finditer(a.question):
            title = next(g for g in m.groups() if g)
            if m.group(1) is None and not _title_cased(title):
                continue
            if (written := normalize(title)) not in self._text:
                found.append(written)
        return found

    def _known_katakana(self, word: str) -> bool:
        """Whether the articles use katakana ``word``, or the two words it is made of (「ミドル」+「クラス」)."""
        if word in self._katakana:
            return True
        return any(word[:i] in self._katakana and word[i:] in self._katakana for i in range(3, len(word) - 2))

    def _signals(
        self, a: QuestionAnalysis, hits: Sequence[Hit], *, out_of_scope: float | None = None
    ) -> tuple[dict[str, float], Evidence | None]:
        """Dense strength and lexical coverage of the topic (question minus career names), combined in [0, 1].

        English questions rely on the dense signal alone: the articles are Japanese, so their words rarely
        appear in the articles. One that names a covered career is lifted like a Japanese one, whether or
        not its wording names a part of the template (English says "what's on a PdM's plate" in more ways
        than a lexicon lists: judging those on their content alone abstained on 19 % of a blind English set);
        what the articles leave out ("the average age of ML engineers", visas) is caught by name (`beyond`).
        Then the analysis adjusts it (see the constants). A question about a career no article covers
        is not covered, however close its words come (「Webエンジニアの年収」 would otherwise land on
        another career's salary table): confidence 0; so is one the learned parts take for out of scope with
        probability ``out_of_scope`` of at least `OUT_OF_SCOPE_PROBABILITY`, while one they take for in scope
        (below `IN_SCOPE_PROBABILITY`) is not damped. ``out_of_scope`` is None where they do not judge (no
        model, a career it has not seen, a listed employer). The cosine scale is `calibration`'s.
        """
        if not hits:
            return {"dense": 0.0, "coverage": 0.0, "unknown_words": 0.0, "out_of_scope": out_of_scope or 0.0,
                    "confidence": 0.0}, None
        topic = self.careers.strip(a.search_text)
        top_dense = max(h.dense for h in hits[:3])
        q_terms = [t for t in dict.fromkeys(terms(topic)) if is_content_term(t)]
        found: set[str] = set()
        for h in hits[:3]:
            found |= self.index.terms_of(h.passage)
        weights = {t: self.index.idf(t) for t in q_terms}
        total = sum(weights.values())
        coverage = sum(w for t, w in weights.items() if t in found) / total if total else 0.0
        unknown = unknown_words(a.asked_topic or a.topic, known=self._known_term, fillers=self._not_topics)
        known_topic = a.language == "ja" and bool(a.terms) and not unknown and coverage >= KNOWN_TOPIC_COVERAGE
        # A Japanese question whose words name no part (one recognised by meaning is only what the question is
        # nearest to) and use words the articles never do, or that names what they never name.
        damped = int(a.language == "ja" and ((a.aspect_cue is None and bool(unknown)) or bool(self._unknown_names(a))))
        # An English question about no career and no part of the template: meaning alone cannot tell
        # "a Python script that scrapes a site" from what the articles say about Python.
        damped += int(a.language == "en" and a.aspect is None and not a.careers)
        # An English question that asks about an acronym the articles never use ("PMP", "JLPT").
        damped += int(a.language == "en" and bool(self._unknown_acronyms(a)))
        # A title in quotes that the articles never write ("Is 'Cracking the PM Interview' worth buying?").
        damped += int(bool(self._unknown_titles(a)))
        # A count or a date asked ("how many interview rounds", "when is the next exam") where the best passage
        # holds no figure at all.
        damped += int(bool(_FIGURE_ASKED.search(normalize(a.question))) and not _FIGURE.search(hits[0].passage.text))
        # A question the learned parts take for one like the in-scope ones: those words are how it is put.
        if out_of_scope is not None and out_of_scope < IN_SCOPE_PROBABILITY:
            damped = 0
        evidence = Evidence(
            dense=float(top_dense),
            coverage=float(coverage),
            english=a.language == "en",
            bonus=bool(a.careers),
            known_words=known_topic,
            damped=damped,
            uncovered=bool(a.uncovered_career or a.uncovered_topic or a.uncovered_employer
                           or (out_of_scope or 0.0) >= OUT_OF_SCOPE_PROBABILITY),
        )
        confidence = confidence_of(evidence, self.calibration)
        signals = {"dense": top_dense, "coverage": coverage, "unknown_words": float(len(unknown)),
                   "out_of_scope": out_of_scope or 0.0, "confidence": confidence}
        return signals, evidence
