"""One analysis per question, made once and read by every later step: retrieval, composition, the eval report.

`QuestionAnalysis` says which careers the question is about and how each was
found, what it asks about (its aspect, from `bot.aspects`), how the answer is
laid out, whether it compares careers, and the weighted terms of its topic.
`Analyzer` makes it from the question and the conversation:

- **Careers are evidence, in order.** Careers the question names come first
  (``named``). A follow-up that names none takes the latest earlier turn's
  (``context``). A short name that is part of the conversation's career's name
  (「PM」 after talking about 「AI PM」) is read as that career first
  (``conversation``), the named one second: the content then decides.
- **A topicless follow-up** (「シニアだと？」, 「じゃあMLEは？」: no kanji word and at
  most a few other letters once career names are removed) is read together with
  the topic of the conversation so far.
- **Comparisons** name two or more careers (or one beside the conversation's
  with a difference cue) and are not about working together; in a
  collaboration question the career followed by と/や is the partner, not the subject.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .aspects import Aspect, AspectLexicon, Cue
from .careers import JOB_TITLE_ENDINGS_KANA, CareerLexicon
from .synonyms import Synonyms
from .text import as_typed, detect_language, normalize, normalize_with_spans, terms

__all__ = ["Analyzer", "CareerRef", "QuestionAnalysis", "STOPWORDS", "has_topic", "is_content_term", "unknown_words"]

#: A follow-up whose words (career names removed) hold no kanji and at most this many
#: katakana or Latin letters (「シニアだと？」, 「じゃあMLEは？」) has no topic of its own.
TOPICLESS_MAX_CHARS = 6
#: How much the words of the cue count towards pointing at particular rows or items (see `focus_terms`).
CUE_FOCUS = 0.5
STOPWORDS = frozenset(
    "a an and are as at be can do does for from how i in is it me my of on or should the to what when where which "
    "who why will with you your about into than that this there their they we".split()
)
#: Particles after a career name that make it the partner of a collaboration (「DSと」, 「MLEや」, "with DS").
_PARTNER_AFTER = re.compile(r"^\s*(?:と|や|とは|とも|との)")
#: Where a sentence of a (normalised) question ends.
_SENTENCE_END = re.compile(r"[。.!?\n]+")
#: Aspects whose answer is about a career itself (its pay, work, ladder…): asked of a role the articles
#: only work with (「SREの年収は？」), they ask about a career no article covers.
CAREER_ASPECTS = frozenset({"salary", "career_path", "duties", "definition", "suited", "interview", "companies",
                            "outlook", "start", "summary"})
#: After a role's name, what makes it the subject of the question (「SREって」, 「営業の」, 「法務は」).
_SUBJECT_AFTER = re.compile(r"^\s*(?:って|とは|は|の|に|が|[?？])")
#: Aspects that ask how to get into a career: a career the asker names as their own is not the one asked about.
BECOMING_ASPECTS = frozenset({"start", "learning"})
#: After a career's name, what makes it where the asker comes from (「PMから」, 「PdMをやっています」,
#: 「DSとして働いています」; not 「AI PMとして働くには」, which is where they are going).
_BACKGROUND_AFTER = re.compile(r"^\s*(?:から|出身|歴|の経験|を(?:[0-9]+年)?(?:やって|して|経験)|として(?:[0-9]|働いて(?:い|き|[0-9])))")
#: Before it, the same in English ("from data science", "I'm a PM", "as a data scientist").
_BACKGROUND_BEFORE = re.compile(r"(?:\bfrom|\bi'?m|\bi am|\bas)\s+(?:(?:a|an|the)\s+)?$")
#: After a job title, what makes it the subject it asks about (「BIエンジニアという職種の」, 「SREの年収」).
_TITLE_SUBJECT = re.compile(r"^\s*(?:という|って|とは|は|の|が|に|'s\b)")
#: Before a job title, what makes it the subject of an English question ("how much do SREs earn", "what does a
#: UX designer do").
_EN_SUBJECT_BEFORE = re.compile(r"(?<![a-z])(?:do|does|did|are|is|can|would|will)\s+(?:(?:a|an|the)\s+)?$")
#: Words that set one role against another (「Xより」, 「Xと比べて」, "than X", "X vs Y").
_COMPARED_AFTER = re.compile(r"^\s*(?:の(?:方|ほう)|って|は|が)?\s*(?:より|と比べ|に比べ|と比較|vs\b|versus\b)")
_COMPARED_BEFORE = re.compile(r"(?:より|than|compared? (?:to|with)|vs\.?|versus)\s*(?:(?:a|an|the)\s+)?$")
_THAN = re.compile(r"(?:than|compared? (?:to|with)|vs\.?|versus)\s+(?:(?:a|an|the)\s+)?$")
_JOINED = re.compile(r"^\s*(?:と|や|and|or|/|・)\s*(?:(?:a|an|the)\s+)?$")
#: A person named with an honorific (normalised): 「及川卓也さん」, 「ng氏」.
_PERSON = re.compile(r"([\u4e00-\u9fff\u30a1-\u30fa\u30fca-z][\u4e00-\u9fff\u30a1-\u30fa\u30fca-z ]{1,15})(?:さん|氏)")
#: Words before さん that name no one in particular.
_NOT_PERSONS = frozenset({"皆", "みな", "客", "お客", "先輩", "後輩", "上司", "部下", "同僚", "担当", "担当者", "店員", "社員"})
_WHICH = re.compile(r"どっち|どちら|which\b|比べ|比較")


@dataclass(frozen=True, slots=True)
class CareerRef:
    """A career the question is about and how that was found: ``named``, ``conversation`` or ``context``."""

    slug: str
    via: str


@dataclass(frozen=True, slots=True)
class QuestionAnalysis:
    """What a question asks, decided once (see the module docstring)."""

    question: str
    #: What is searched: the question, plus the conversation's topic for a topicless follow-up.
    search_text: str
    language: str
    careers: tuple[CareerRef, ...] = ()
    #: In a collaboration question, the careers or roles worked with (text as asked).
    partners: tuple[str, ...] = ()
    #: A covered career the asker comes from, in a question about getting into another (「PMからAI PMに…」).
    background: str | None = None
    aspect: Aspect | None = None
    aspect_cue: str | None = None
    #: When no cue named the aspect and its meaning did: the example question it came nearest (`bot.aspect_examples`).
    aspect_example: str | None = None
    #: When the model learned from question sets decided the aspect (`bot.learned_parts`): its probability.
    #: ``aspect_cue`` then still holds the cue it overruled, if any.
    aspect_learned: float | None = None
    #: When no cue of its own named the aspect and an earlier turn's did: that turn ("What about for version
    #: control?" after "What tools does a data scientist use?" still asks about tools).
    aspect_turn: str | None = None
    #: Another part the same sentence asks about (「外資だと年収は高い？」: employers beside salary).
    also: Aspect | None = None
    comparison: bool = False
    #: ``top`` or ``start`` of a ladder when the question asks for one (「最終的に」).
    position: str | None = None
    #: The topic: the (normalised) question without career names and aspect cues.
    topic: str = ""
    #: The topic within the sentence that asks (the one with the cue, else the last): without the
    #: background a long message starts with (「SIerでJavaのSEを6年…」).
    asked_topic: str = ""
    #: Topic terms (career names and the aspect's cue removed, synonyms added) with their idf.
    terms: dict[str, float] = field(default_factory=dict)
    #: The terms of the cue of what is asked (「メーカー」 in 「メーカー系でも…」), with their idf.
    cue_terms: dict[str, float] = field(default_factory=dict)
    #: A job title the question asks about that no article covers (「Webエンジニア」), if any.
    uncovered_career: str | None = None
    #: A subject the sentence asking names and no part of the articles covers (「副業」, 「残業」), if any.
    uncovered_topic: str | None = None
    #: A company a part given for the whole career is asked about (「メルカリ」 in 「メルカリのPdMの年収」), if any.
    uncovered_employer: str | None = None

    @property
    def slugs(self) -> tuple[str, ...]:
        return tuple(c.slug for c in self.careers)

    @property
    def focus_terms(self) -> dict[str, float]:
        """What points to particular rows or items: the topic, and at CUE_FOCUS of its weight the cue asked
        with (「メーカー」 names a group; 「毎日」 alone points to no duty in particular)."""
        return {**{t: w * CUE_FOCUS for t, w in self.cue_terms.items()}, **self.terms}

    @property
    def answer_type(self) -> str:
        return self.aspect.answer if self.aspect else "prose"

    @property
    def roles(self) -> tuple[str, ...]:
        """The article parts that answer this question (empty: any part)."""
        return self.aspect.roles if self.aspect else ()

    def to_json(self) -> dict[str, Any]:
        return {
            "careers": [{"slug": c.slug, "via": c.via} for c in self.careers],
            "partners": list(self.partners),
            "background": self.background,
            "aspect": self.aspect.name if self.aspect else None,
            "aspect_cue": self.aspect_cue,
            "aspect_example": self.aspect_example,
            "aspect_learned": None if self.aspect_learned is None else round(self.aspect_learned, 3),
            "aspect_turn": self.aspect_turn,
            "also": self.also.name if self.also else None,
            "answer_type": self.answer_type,
            "roles": list(self.roles),
            "comparison": self.comparison,
            "position": self.position,
            "with_role": ", ".join(self.partners) or None,
            "terms": {t: round(w, 2) for t, w in sorted(self.terms.items(), key=lambda kv: -kv[1])},
            "topic": self.topic,
            "asked_topic": self.asked_topic,
            "search_text": self.search_text,
            "uncovered_career": self.uncovered_career,
            "uncovered_topic": self.uncovered_topic,
            "uncovered_employer": self.uncovered_employer,
        }


def has_topic(text: str) -> bool:
    """Whether a (career-stripped) question says what it is about: a kanji word, or more than a short word.

    Japanese topics (年収, 面接, 将来性, 会社) are kanji; what is left without one is
    a level (シニア) or a bare reference (それは？), which needs the conversation's topic.
    """
    words = " ".join(w for w in re.findall(r"[a-z0-9']+|[^a-z0-9']+", text.lower()) if w.strip("'") not in STOPWORDS)
    letters = [ch for ch in words if ch.isalnum() and not ("\u3040" <= ch <= "\u309f")]
    has_kanji = any("\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in letters)
    return has_kanji or len(letters) > TOPICLESS_MAX_CHARS


def _script(ch: str) -> str:
    if "\u3040" <= ch <= "\u309f":
        return "hiragana"
    if "\u30a0" <= ch <= "\u30ff":
        return "katakana"
    return "kanji" if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" else "other"


def is_content_term(term: str) -> bool:
    """Whether a term can carry a topic: not a stop word, not all hiragana (particles, endings: 「どう」, 「ます」),
    not a bigram across scripts (「の年」, 「収は」: a particle glued to a word; 「ド書」 in コード書く: two words)."""
    if term in STOPWORDS:
        return False
    scripts = [_script(ch) for ch in term]
    if all(s == "hiragana" for s in scripts) or (len(term) == 1 and scripts[0] != "other"):
        return False  # a lone kana or kanji is what is left of a longer word (「勉強法」 without 「勉強」)
    return not (len(term) == 2 and scripts[0] != scripts[1] and "other" not in scripts)


class Analyzer:
    """Makes `QuestionAnalysis` objects from the knowledge base's careers, aspects and synonyms."""

    def __init__(
        self,
        *,
        careers: CareerLexicon,
        aspects: AspectLexicon,
        synonyms: Synonyms,
        idf: Callable[[str], float],
        partners: Sequence[str] = (),
        employers: Sequence[str] = (),
        unnamed_places: Sequence[str] = (),
        definitions: Mapping[str, str] | None = None,
    ) -> None:
        self.careers = careers
        self.aspects = aspects
        self.synonyms = synonyms
        self.idf = idf
        #: Roles the articles work with but no article covers (from their collaboration subsections).
        self.partners = tuple(sorted((p for p in partners if not careers.mentions(p)), key=len, reverse=True))
        self._fillers = sorted((w for w in aspects.fillers if w), key=len, reverse=True)
        #: The companies the articles' employers part names, longest first (「楽天グループ」 before 「楽天」).
        self._employers = [re.compile(rf"(?<![a-z0-9]){re.escape(e)}(?![a-z0-9])" if e.isascii() else re.escape(e))
                           for e in sorted(dict.fromkeys(employers), key=len, reverse=True)]
        #: The lexicon's places the articles never name (normalised): what they say holds for Japan and Tokyo.
        self.unnamed_places = frozenset(unnamed_places)
        #: Each career's definition part (normalised): the roles it sets the career against (「プロジェクトマネージャー」).
        self.definitions = dict(definitions or {})

    def analyze(self, question: str, *, history: Sequence[str] = ()) -> QuestionAnalysis:
        """The analysis of ``question`` given the earlier user turns ``history`` (oldest first)."""
        asked = question.strip()
        search_text = asked
        if history and not has_topic(self._unfilled(self.careers.strip(asked))):
            carried: list[str] = []
            for turn in reversed(history):  # back to the latest turn that had a topic of its own
                carried.insert(0, self.careers.strip(turn))
                if has_topic(self._unfilled(carried[0])):
                    break
            search_text = " ".join([asked, *carried]).strip()

        named = self.careers.spans(search_text)
        context = self._conversation(history)
        refs = self._careers(named, context)

        stripped = self.careers.strip(search_text)
        # 「〜って何？」 or 「違い」 without a career asks about a concept, not for a part of an article.
        cues = [c for c in self.aspects.cues(stripped) if refs or not c.aspect.needs_career]
        # A follow-up asks what its own words ask ("And the salary?"); the carried turns only say of what.
        own = len(self.careers.strip(asked))
        if any(c.end <= own for c in cues) and search_text != asked:
            cues = [c for c in cues if c.end <= own]
        cues = [c for c in cues if not _of_something_else(c, stripped)]
        difference = any(c.aspect.name == "difference" for c in cues)
        if difference:  # 「DSとは何が違う？」 asks what differs, not what DS is
            cues = [c for c in cues if not _part_of_difference(c, cues, stripped)]
        main = _asked(cues, stripped)
        aspect = main.aspect if main else None
        aspect_turn = None
        if aspect is None and (earlier := self._earlier_aspect(history)) is not None:
            aspect, aspect_turn = earlier

        refs, background = self._background(refs, named, search_text, aspect)
        if difference and len(refs) == 1 and (others := [s for s in context if s != refs[0].slug]):
            # 「DSとの違いは？」 after a conversation about MLEs: how the career talked about differs from DS
            refs = [CareerRef(slug=others[0], via="conversation"), *refs]
        partners: tuple[str, ...] = ()
        if aspect is not None and aspect.name == "collaboration":
            refs, partners = self._partners(refs, named, context, search_text)
        named_slugs = [r.slug for r in refs if r.via == "named"]
        comparison = (aspect is None or aspect.name != "collaboration") and (
            len(named_slugs) >= 2 or (difference and len(refs) >= 2)
        )

        asked_spans = {i for c in cues for i in range(c.start, c.end)}  # what is asked about is not the topic
        spaced = "".join(" " if i in asked_spans else ch for i, ch in enumerate(stripped))
        topic = spaced.strip()
        start, end = _asking_sentence(stripped, main)
        asked_topic = spaced[start:end].strip()
        also = _also_asked(cues, main, start, end)
        expansion = " ".join(self.synonyms.expansions(stripped))
        cue_terms = {t for c in cues for w in c.aspect.cues for t in terms(w)}  # nor its synonyms (会社 → 企業)
        weights = {
            t: self.idf(t)
            for t in dict.fromkeys(terms(f"{topic} {expansion}"))
            if is_content_term(t) and t not in cue_terms
        }
        return QuestionAnalysis(
            question=asked,
            search_text=search_text,
            language=detect_language(asked),
            careers=tuple(refs),
            partners=partners,
            background=background,
            aspect=aspect,
            aspect_cue=main.word if main else None,
            aspect_turn=aspect_turn,
            also=also,
            comparison=comparison,
            position=self.aspects.position(stripped),
            topic=topic,
            asked_topic=asked_topic,
            terms=weights,
            cue_terms={t: self.idf(t) for t in terms(main.word) if is_content_term(t)} if main else {},
            uncovered_career=(
                self._compared_role(asked, aspect) or self._asked_of_another(asked, main, aspect)
                if refs
                else self.careers.uncovered(asked) or self._partner_asked(asked, aspect)
            ),
            uncovered_topic=(self._beyond_asked(stripped, (start, end)) or self._place_asked(asked, asked_topic)
                             or self._person_asked(stripped, (start, end))),
            uncovered_employer=self._employer_asked(search_text, asked_topic, aspect),
        )

    def _beyond_asked(self, text: str, asking: tuple[int, int]) -> str | None:
        """The first subject no part of the template covers, in the sentence of ``text`` that asks (offsets
        ``asking``) or in any other that ends in ? (「E資格の受験料はいくら？MLEを目指していて…」); else None.
        Background without ? is not looked at."""
        for start, end in _asking_sentences(text, asking):
            if (word := self.aspects.beyond(text[start:end])) is not None:
                return word
        return None

    def _person_asked(self, text: str, asking: tuple[int, int]) -> str | None:
        """A person the question asks about by name (「及川卓也さんって今どこに」, 「〇〇氏の経歴」) in a sentence of
        normalised ``text`` that asks (the one at ``asking``, or one ending in ?), normalised; else None. The
        articles name people only as the authors of what they list, so a question about their books or courses
        is not one about the person (a book read before the name is: 「本を読んでいて、及川卓也さんって何者？」)."""
        for start, end in _asking_sentences(text, asking):
            for m in _PERSON.finditer(text, start, end):
                if any(c.aspect.answer == "lines" for c in self.aspects.cues(text[m.end() : end])):
                    continue  # 「及川卓也さんの本は？」 asks about a book
                name = m.group(1)
                if name not in _NOT_PERSONS and not name.endswith(JOB_TITLE_ENDINGS_KANA) and not self.careers.mentions(name):
                    return m.group()
        return None

    def with_aspect(self, a: QuestionAnalysis, aspect: Aspect, example: str | None = None, *,
                    learned: float | None = None) -> QuestionAnalysis:
        """``a`` asking about ``aspect``, recognised by its meaning as nearest ``example`` or by the learned
        parts with probability ``learned``, with what depends on the aspect decided again (「楽天のDSチームは
        来年縮小される？」 asks an employer about the outlook)."""
        employer = a.uncovered_employer or self._employer_asked(a.search_text, a.asked_topic, aspect)
        return replace(a, aspect=aspect, aspect_example=example, aspect_learned=learned, uncovered_employer=employer)

    def _partner_asked(self, question: str, aspect: Aspect | None) -> str | None:
        """A role the articles only work with, as the subject of a question about a career's own parts
        (「SREってどんな仕事で、年収は？」), as the user typed it; else None."""
        if aspect is None or aspect.name not in CAREER_ASPECTS or not self.partners:
            return None
        norm, spans = normalize_with_spans(question)
        for start, end in self._partner_spans(norm):
            if _SUBJECT_AFTER.match(norm[end:]):
                return as_typed(question, spans, start, end)
        return None

    def _partner_spans(self, norm: str) -> list[tuple[int, int]]:
        """(start, end) of each name of a role the articles only work with where a word of normalised ``norm``
        starts there, longest name first, then in order."""
        return [m.span() for name in self.partners for m in re.finditer(re.escape(name), norm)
                if m.start() == 0 or not norm[m.start() - 1].isalnum()]

    def _roles_without_article(self, norm: str, covered: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """(start, end) in normalised ``norm`` of each job title no article covers and each role the articles
        only work with that is not part of a covered career's name (spans ``covered``), in order."""
        return sorted(self.careers.uncovered_spans(norm) + [
            (start, end) for start, end in self._partner_spans(norm) if not any(s <= start < e for s, e in covered)])

    def _compared_role(self, question: str, aspect: Aspect | None) -> str | None:
        """A role no article covers, set against a career the question names to compare the two
        (「データアナリストの年収ってDSより低い？」, "Do MLEs earn more than backend engineers?",
        「SREとMLEどっちが…」), as the user typed it; else None. The articles can answer only one side of
        such a comparison. A role named as where the asker comes from (「Webエンジニアから」) is no comparison."""
        if aspect is not None and aspect.name == "collaboration":
            return None
        norm, spans = normalize_with_spans(question)
        named = self.careers.spans(question)
        covered = [(start, end) for _, _, start, end in named]
        for start, end in self._roles_without_article(norm, covered):
            sentence = _sentence_around(norm, start, end)
            in_sentence = [(slug, s, e) for slug, _, s, e in named if sentence[0] <= s and e <= sentence[1]]
            if not in_sentence:
                continue
            if self._defined_against(norm[start:end], [slug for slug, _, _ in in_sentence], aspect):
                continue
            others = [(s, e) for _, s, e in in_sentence]
            compared = (
                _COMPARED_AFTER.match(norm[end:])
                or _COMPARED_BEFORE.search(norm[sentence[0]:start])
                or any(s > end and (_THAN.search(norm[end:s]) or norm[e:].lstrip().startswith("より")) for s, e in others)
                or (
                    any(_JOINED.match(norm[end:s]) or _JOINED.match(norm[e:start]) for s, e in others)
                    and _WHICH.search(norm[sentence[0]:sentence[1]])
                )
            )
            if compared:
                return as_typed(question, spans, start, end)
        return None

    def _defined_against(self, role: str, slugs: Sequence[str], aspect: Aspect | None) -> bool:
        """Whether a question about what sets a career apart (a difference or a definition, or no part) sets it
        against ``role``, one its own definition part does (「PdMとプロジェクトマネージャーの違い」): that one side is
        covered. Its pay or its path is still not."""
        if aspect is not None and aspect.name not in ("difference", "definition"):
            return False
        words = [role, *self.synonyms.of(role)]
        return any(w and w in self.definitions.get(slug, "") for slug in slugs for w in words)

    def _asked_of_another(self, question: str, main: Cue | None, aspect: Aspect | None) -> str | None:
        """A job title no article covers, the subject of the sentence that asks about a career's own part while
        no covered career is named in it (「BIエンジニアという職種の年収は？データサイエンティストより低い？」:
        the pay asked is the BI engineer's), as the user typed it; else None."""
        if main is None or aspect is None or aspect.name not in CAREER_ASPECTS:
            return None
        norm, spans = normalize_with_spans(question)
        cue = normalize(main.word)
        bounds = [_sentence_around(norm, m.start(), m.end()) for m in re.finditer(re.escape(cue), norm)]
        if not bounds:
            return None
        left, right = bounds[-1]
        covered = [(start, end) for _, _, start, end in self.careers.spans(question)]
        if any(left <= start < right for start, _ in covered):
            return None
        for start, end in self._roles_without_article(norm, covered):
            if left <= start < right and (_TITLE_SUBJECT.match(norm[end:]) or _EN_SUBJECT_BEFORE.search(norm[left:start])):
                return as_typed(question, spans, start, end)
        return None

    def _place_asked(self, question: str, asked_topic: str) -> str | None:
        """The first place the sentence asking names that the articles never do (「福岡」, "Singapore"), as the
        user typed it; else None."""
        place = next((p for p in self.aspects.places_in(asked_topic) if p in self.unnamed_places), None)
        if place is None:
            return None
        norm, spans = normalize_with_spans(question)
        span = self.aspects.place_span(norm, place)
        return as_typed(question, spans, *span) if span else place

    def names_employer(self, text: str) -> bool:
        """Whether normalised ``text`` names a company the articles list as an employer."""
        return any(p.search(text) for p in self._employers)

    def _employer_asked(self, question: str, asked_topic: str, aspect: Aspect | None) -> str | None:
        """A company the articles list as an employer, named in the sentence asking about a part they give for the
        career as a whole (「メルカリのPdMの年収」, 「Googleの面接」), as the user typed it; else None."""
        if aspect is None or not aspect.for_the_career:
            return None
        pattern = next((p for p in self._employers if p.search(asked_topic)), None)
        if pattern is None:
            return None
        norm, spans = normalize_with_spans(question)
        m = pattern.search(norm)
        return as_typed(question, spans, m.start(), m.end()) if m else pattern.search(asked_topic).group()

    def _unfilled(self, text: str) -> str:
        """``text`` without the fillers that say how, not what (「普通のPdMだとどう？」 has no topic of its own)."""
        for word in self._fillers:
            text = text.replace(word, " ")
        return text

    def _earlier_aspect(self, history: Sequence[str]) -> tuple[Aspect, str] | None:
        """The part the latest earlier turn that asked about one asked about, and that turn; None if none did."""
        for turn in reversed(history):
            stripped = self.careers.strip(turn)
            main = _asked(self.aspects.cues(stripped), stripped)
            if main is not None:
                return main.aspect, turn
        return None

    def _conversation(self, history: Sequence[str]) -> list[str]:
        """The careers the conversation is about: the subjects of the latest earlier turn that named one
        (in 「データサイエンティストとはどう連携する？」 after a turn about AI PMs, still AI PM)."""
        context: list[str] = []
        for turn in history:
            named = self.careers.spans(turn)
            if not named:
                continue
            refs = self._careers(named, context)
            cues = self.aspects.cues(self.careers.strip(turn))
            main = _asked(cues, self.careers.strip(turn))
            if main is not None and main.aspect.name == "collaboration":
                refs, _ = self._partners(refs, named, context, turn)
            context = [r.slug for r in refs]
        return context

    def _careers(self, named: Sequence[tuple[str, str, int, int]], context: Sequence[str]) -> list[CareerRef]:
        """Named careers first; a short name inside a context career's name defers to that career."""
        refs: list[CareerRef] = []
        for slug, name, _, _ in named:
            for other in context:
                career = self.careers.get(other)
                if other != slug and career and any(name in n and name != n for n in career.names):
                    if all(r.slug != other for r in refs):
                        refs.append(CareerRef(slug=other, via="conversation"))
            if all(r.slug != slug for r in refs):
                refs.append(CareerRef(slug=slug, via="named"))
        if not refs:
            refs = [CareerRef(slug=s, via="context") for s in context]
        return refs

    @staticmethod
    def _background(
        refs: list[CareerRef], named: Sequence[tuple[str, str, int, int]], text: str, aspect: Aspect | None
    ) -> tuple[list[CareerRef], str | None]:
        """In a question about getting into a career: a career named as the asker's own before another one
        (「Web系のPdMをやっています。AI PMに移りたい」, "from data science into ML engineering") is where
        they come from, not what they ask about; the careers without it, and its slug (else None)."""
        if aspect is not None and aspect.name not in BECOMING_ASPECTS:
            return refs, None  # no cue: "how do I move from data science into ML engineering?" asks the same
        norm = normalize(text)
        for slug, _, start, end in named:
            later = any(other != slug and at >= end for other, _, at, _ in named)
            if later and (_BACKGROUND_AFTER.match(norm[end:]) or _BACKGROUND_BEFORE.search(norm[:start])):
                return [r for r in refs if r.slug != slug], slug
        return refs, None

    def _partners(
        self,
        refs: list[CareerRef],
        named: Sequence[tuple[str, str, int, int]],
        context: Sequence[str],
        text: str,
    ) -> tuple[list[CareerRef], tuple[str, ...]]:
        """In a collaboration question: the subject careers, and the partners.

        A career followed by と/や is a partner when another career is the subject: one named before it
        (「AI PMはDSやMLEと」), or, when it is the only one named, the conversation's (「じゃあDSとはどう関わる？」).
        「DSとAI PMはどう協力する？」 names two subjects, so the first one's view comes first.
        """
        norm = normalize(text)
        slugs = list(dict.fromkeys(slug for slug, _, _, _ in named))
        partner_slugs: set[str] = set()
        for slug, _, _, end in named:
            if not _PARTNER_AFTER.match(norm[end:]):
                continue
            earlier = slugs.index(slug) > 0
            alone = len(slugs) == 1 and any(s != slug for s in context)
            if earlier or alone:
                partner_slugs.add(slug)
        names = tuple(dict.fromkeys(norm[start:end] for slug, _, start, end in named if slug in partner_slugs))
        subjects = [r for r in refs if r.slug not in partner_slugs]
        if not subjects:
            subjects = [CareerRef(slug=s, via="context") for s in context if s not in partner_slugs]
        return (subjects or refs), names


def _asking_sentence(text: str, cue: Cue | None) -> tuple[int, int]:
    """Offsets in ``text`` of the sentence that holds ``cue``, else of the last question (a sentence ending in
    ?: "Is there an age cutoff? I'm 45 and…" asks in the first), else of the last sentence with words."""
    bounds = _sentences(text)
    if cue is not None:
        return next((b, e) for b, e in bounds if b <= cue.start < e or e == len(text))
    worded = [(b, e) for b, e in bounds if text[b:e].strip(" 。.!?\n")]
    asking = [(b, e) for b, e in worded if "?" in text[b:e]]
    return (asking or worded or [(0, len(text))])[-1]


def _sentences(text: str) -> list[tuple[int, int]]:
    """Offsets in ``text`` of its sentences, each with the marks that end it; the last may be empty."""
    bounds, begin = [], 0
    for m in _SENTENCE_END.finditer(text):
        bounds.append((begin, m.end()))
        begin = m.end()
    bounds.append((begin, len(text)))
    return bounds


def _questions(text: str) -> list[tuple[int, int]]:
    """Offsets in ``text`` of every sentence that ends in ? (a question, not background)."""
    return [(b, e) for b, e in _sentences(text) if "?" in text[b:e]]


def _asking_sentences(text: str, asking: tuple[int, int]) -> list[tuple[int, int]]:
    """The sentence that asks (offsets ``asking``), then every other one of ``text`` that ends in ?, each once."""
    return list(dict.fromkeys([asking, *_questions(text)]))


def _also_asked(cues: Sequence[Cue], main: Cue | None, start: int, end: int) -> Aspect | None:
    """Another aspect asked in the sentence of ``main`` whose parts are others than main's (「外資」 beside
    「年収」); not a difference, which says how the main one is asked, nor a cue inside main's own word."""
    if main is None:
        return None
    for c in cues:
        other = c.aspect
        if (start <= c.start < end and other.name not in (main.aspect.name, "difference")
                and not set(other.roles) & set(main.aspect.roles) and (c.end <= main.start or c.start >= main.end)):
            return other
    return None


def _part_of_difference(cue: Cue, cues: Sequence[Cue], text: str) -> bool:
    """Whether a definition cue only begins a question about a difference (「とは何|が違う」, 「って何|が違うの」)."""
    if cue.aspect.name != "definition":
        return False
    return any(c.aspect.name == "difference" and re.fullmatch(r"\s*[がか]?\s*", text[cue.end : c.start]) for c in cues)


def _of_something_else(cue: Cue, text: str) -> bool:
    """Whether an English definition cue asks what something other than a career is: "what's a typical day",
    "what is the best roadmap" (a word follows it), not "what's a [career]?" (``text`` has careers blanked)."""
    if cue.aspect.name != "definition" or not cue.word.isascii():
        return False
    words = re.findall(r"[a-z][a-z']*|[^\sa-z]", text[cue.end : cue.end + 40])
    if words[:1] in (["a"], ["an"], ["the"]):
        words = words[1:]
    return bool(words) and words[0][0].isalpha()


def _asked(cues: Sequence[Cue], text: str) -> Cue | None:
    """The cue of what the question asks: in the last sentence that has one (background comes first:
    「経理をしています。…一言でいうと？」), the most specific aspect; 「違い」 only when nothing else is asked."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]

    def sentence(cue: Cue) -> int:
        return sum(1 for e in ends if e <= cue.start)

    for wanted in (lambda c: c.aspect.name != "difference", lambda c: True):
        candidates = [c for c in cues if wanted(c)]
        if candidates:
            last = max(sentence(c) for c in candidates)
            return next(c for c in candidates if sentence(c) == last)
    return None


_ASCII_WORD = re.compile(r"[a-z0-9]+(?:[.][a-z0-9]+)*(?:\+\+|#)?")  # as `bot.text.terms` cuts them
_CJK_RUN = re.compile(r"[^\W\d_a-z]+")
#: After a verbal noun, the endings that make it an action (「影響する」, 「調整して」): what is done, not the topic.
_SURU = ("する", "して", "した", "され", "しな", "でき", "しよ")


def unknown_words(topic: str, *, known: Callable[[str], bool], fillers: frozenset[str] = frozenset()) -> list[str]:
    """Words of ``topic`` that the articles never use (「残業」, 「男女比」, "toeic"), as asked.

    Japanese words are found as runs of content bigrams the articles lack. A run with a known bigram on
    both sides is only the seam between two known words (「務部」 in 法務部門) and does not count, nor does
    one unknown bigram ending a known word with a one-kanji suffix (「達点」 in 到達点); nor does
    a verbal noun used as a verb (「影響する」); nor do
    ``fillers``: words that say how rather than what (「ダメ」, 「結局」), or that a lexicon maps to the
    articles' words (「スマホ」).
    """
    text = normalize(topic)
    words: list[str] = []
    for m in _ASCII_WORD.finditer(text):
        w = m.group()
        if w not in STOPWORDS and len(w) > 1 and not w.isdigit() and not known(w) and w not in fillers:
            words.append(w)
    # Characters inside a filler or a lexicon word (「スマホ」 → スマートフォン) are never unknown.
    covered = {i for f in fillers if f and f in text for m in re.finditer(re.escape(f), text)
               for i in range(m.start(), m.end())}
    for m in _CJK_RUN.finditer(text):
        run, at = m.group(), m.start()
        grams = [run[i : i + 2] for i in range(len(run) - 1)]
        state = ["unknown" if is_content_term(g) and not known(g) else
                 "known" if is_content_term(g) else "boundary" for g in grams]
        i = 0
        while i < len(grams):
            if state[i] != "unknown":
                i += 1
                continue
            j = i
            while j + 1 < len(grams) and state[j + 1] == "unknown":
                j += 1
            seam = i > 0 and state[i - 1] == "known" and j + 1 < len(grams) and state[j + 1] == "known"
            # a known word with a one-kanji suffix, ending the run (「到達点」 from 到達, 「専門性」)
            suffix = (i == j and i > 0 and state[i - 1] == "known" and _script(run[j + 1]) == "kanji"
                      and (j + 2 == len(run) or _script(run[j + 2]) != "kanji"))
            action = run[j + 2 : j + 4].startswith(_SURU)
            inside = all(at + k in covered for k in range(i, j + 2))
            if not (seam or suffix or action or inside):
                words.append(run[i : j + 2])
            i = j + 1
    return words


def _sentence_around(norm: str, start: int, end: int) -> tuple[int, int]:
    """The bounds of the sentence of ``norm`` that holds ``[start, end)``."""
    left = max((m.end() for m in _SENTENCE_END.finditer(norm, 0, start)), default=0)
    right = next((m.start() for m in _SENTENCE_END.finditer(norm, end)), len(norm))
    return left, right
