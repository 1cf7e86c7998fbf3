"""What a question asks about (its aspect) and which part of an article (its role) answers it.

Read from ``knowledge/aspects.yaml``, content kept beside the articles: the
articles share one template, so naming the template's parts (roles, found by
words in their headings) and the words people ask about them with (cues) lets
retrieval and composition go to the part that answers — 「向いてる人は？」 to
まとめ, 「どんな本？」 to the books of the learning section — with no rule per
question. See the file's header for its format.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import KnowledgeError
from .knowledge import Section
from .text import normalize, strip_decorations

__all__ = ["ANSWER_TYPES", "LEAD_MAX_CHARS", "Aspect", "AspectLexicon", "Role", "Cue", "lead_sections"]

ANSWER_TYPES = frozenset({"table", "list", "steps", "lines", "definition", "suited", "prose"})
_KANJI = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
#: A section with subsections and at most this much text of its own is a lead-in: its subsections answer.
LEAD_MAX_CHARS = 120


@dataclass(frozen=True, slots=True)
class Role:
    """A part of the article template: its name, the heading words that mark it, whether answers may use it."""

    name: str
    headings: tuple[str, ...]
    searchable: bool = True


@dataclass(frozen=True, slots=True)
class Aspect:
    """Something a question can ask about: the roles that answer it, the words that mark answering lines."""

    name: str
    cues: tuple[str, ...]
    roles: tuple[str, ...]
    units: tuple[str, ...]
    answer: str
    #: Only about a career: without one, 「〜って何？」 asks about a concept, not for a part of an article.
    needs_career: bool = False
    #: Given for the career as a whole, never for one employer (a salary table, interview questions).
    for_the_career: bool = False
    #: Questions that ask about this, for recognising it by meaning when no cue word is used.
    examples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Cue:
    """Where an aspect's cue word was found in a question (offsets in the normalised text)."""

    aspect: Aspect
    word: str
    start: int
    end: int


#: A parenthesised list of names (「（LINEヤフー、メルカリ、リクルートなど）」).
_LISTED = re.compile(r"[(（]([^()（）]*[、,][^()（）]*)[)）]")


#: Between the two parts of a lexicon word written with ``…``: a few words of the same sentence (normalised).
_GAP = r"[^。.?!\n]{0,40}?"


def _cue(word: str) -> tuple[str, re.Pattern[str]]:
    """A cue word (normalised) and its pattern; ``^…`` matches only where a word starts (not after
    hiragana: 「^とは?」 is not in 「ことは?」); ``a…b`` matches ``a`` and then ``b`` later in the same
    sentence ("how much…cost": "how much does a team plan cost", not "how much do PMs earn"), and the
    text it shows is ``b``'s."""
    if "…" in word:
        first, _, last = (normalize(w).strip() for w in word.partition("…"))
        return last, re.compile(rf"{_pattern(first).pattern}{_GAP}(?P<shown>{_pattern(last).pattern})")
    if word.startswith("^"):
        core = normalize(word[1:])
        return core, re.compile(r"(?<![\u3040-\u309f])" + _pattern(core).pattern)
    core = normalize(word)
    return core, _pattern(core)


def _pattern(word: str) -> re.Pattern[str]:
    """A cue as a pattern: ASCII words whole (plurals too); one kanji only when not part of a longer kanji word."""
    escaped = re.escape(word).replace(r"\ ", r"\s+")
    if word.isascii():
        plural = "(?:s|es)?" if word[-1:].isalpha() else ""
        return re.compile(rf"(?<![a-z0-9]){escaped}{plural}(?![a-z0-9])")
    if len(word) == 1 and _KANJI.match(word):
        return re.compile(rf"(?<![\u3400-\u9fff\uf900-\ufaff]){escaped}(?![\u3400-\u9fff\uf900-\ufaff])")
    return re.compile(escaped)


def _place_pattern(word: str) -> re.Pattern[str]:
    """A place name as a pattern: a katakana one only as a whole word (「インド」 is not in 「マインド」)."""
    if word and all(_is_katakana(ch) for ch in word):
        return re.compile(rf"(?<![\u30a1-\u30fa\u30fc]){re.escape(word)}(?![\u30a1-\u30fa\u30fc])")
    return _pattern(word)


def _is_katakana(ch: str) -> bool:
    return "\u30a1" <= ch <= "\u30fa" or ch == "\u30fc"


class AspectLexicon:
    """Roles of sections and aspects of questions, from one lexicon."""

    def __init__(
        self,
        *,
        roles: Sequence[Role],
        aspects: Sequence[Aspect],
        positions: dict[str, Sequence[str]] | None = None,
        fillers: Sequence[str] = (),
        beyond: Sequence[str] = (),
        places: Sequence[str] = (),
    ) -> None:
        self.roles = tuple(roles)
        #: Words that say how, not what (「ダメ」, 「結局」): never the topic of a question.
        self.fillers = frozenset(normalize(w) for w in fillers)
        #: Subjects no part of the template covers (「残業」, 「副業」): a question asking about one is not answered.
        self._beyond = [_cue(w) for w in beyond if str(w).strip()]
        #: Places people ask about (「福岡」, "Singapore"): one the articles never name is beyond them (`places_in`).
        self._places = [(normalize(w), _place_pattern(normalize(w))) for w in places if str(w).strip()]
        self.aspects = tuple(aspects)
        self._role = {r.name: r for r in self.roles}
        self._aspect = {a.name: a for a in self.aspects}
        self._heading_words = [(r, [normalize(w) for w in r.headings]) for r in self.roles]
        #: role by heading path: sections are asked for their role on every answer
        self._role_cache: dict[tuple[str, ...], str | None] = {}
        self._cues = [(a, [_cue(w) for w in a.cues]) for a in self.aspects]
        self._positions = {k: [_pattern(normalize(w)) for w in v] for k, v in (positions or {}).items()}

    @classmethod
    def load(cls, path: Path) -> AspectLexicon:
        """Read an aspects file; a missing file means no aspects, a malformed one is a `KnowledgeError`."""
        if not path.is_file():
            return cls(roles=[], aspects=[])
        where = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise KnowledgeError(where, f"invalid aspects file{at} ({problem})") from exc
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise KnowledgeError(
                where, "an aspects file is a mapping with roles, aspects, positions, beyond, places and fillers")
        roles = [_role(item, where, i) for i, item in enumerate(_list(data, "roles", where), 1)]
        names = {r.name for r in roles}
        aspects = [_aspect(item, where, i, names) for i, item in enumerate(_list(data, "aspects", where), 1)]
        positions = data.get("positions") or {}
        if not isinstance(positions, dict) or not all(_words(v) for v in positions.values()):
            raise KnowledgeError(where, "positions: should map a name to a list of words")
        fillers = data.get("fillers") or []
        if not _words(fillers):
            raise KnowledgeError(where, "fillers: should be a list of words")
        beyond = data.get("beyond") or []
        if not _words(beyond):
            raise KnowledgeError(where, "beyond: should be a list of words")
        places = data.get("places") or []
        if not _words(places):
            raise KnowledgeError(where, "places: should be a list of words")
        return cls(roles=roles, aspects=aspects, positions={str(k): [str(w) for w in v] for k, v in positions.items()},
                   fillers=[str(w) for w in fillers], beyond=[str(w) for w in beyond], places=[str(w) for w in places])

    def role(self, name: str) -> Role | None:
        return self._role.get(name)

    def aspect(self, name: str) -> Aspect | None:
        return self._aspect.get(name)

    def role_of(self, section: Section) -> str | None:
        """The role of ``section``: from its own heading, else from the nearest enclosing heading that has one."""
        key = section.breadcrumb[1:] or (section.heading,)
        if key not in self._role_cache:
            self._role_cache[key] = self._role_of_headings(key)
        return self._role_cache[key]

    def _role_of_headings(self, headings: tuple[str, ...]) -> str | None:
        for heading in reversed(headings):
            norm = normalize(heading)
            for role, words in self._heading_words:
                if any(w in norm for w in words):
                    return role.name
        return None

    def partner_roles(self, sections: Iterable[Section]) -> list[str]:
        """The roles the articles work with, as their collaboration subsections name them (「インフラ・SRE /
        バックエンドエンジニア」 → インフラ, sre, バックエンドエンジニア), normalised; two letters or more."""
        names: dict[str, None] = {}
        for s in sections:
            names.update(dict.fromkeys(self.partners_in(s)))
        return list(names)

    def employers(self, sections: Iterable[Section]) -> list[str]:
        """The companies the employers part names (「メガベンチャー（LINEヤフー、メルカリなど）」 → lineヤフー,
        メルカリ), normalised; two letters or more."""
        names: dict[str, None] = {}
        for s in sections:
            if self.role_of(s) != "companies":
                continue
            for listed in _LISTED.findall(normalize(s.text)):
                for name in re.split(r"[、,/／]", listed):
                    name = re.sub(r"など$", "", name.strip()).strip()
                    if len(name) >= 2:
                        names[name] = None
        return list(names)

    def partners_in(self, section: Section) -> list[str]:
        """The roles a collaboration subsection's heading names (normalised, two letters or more); none for
        any other section or for the part's own heading (「協業スタイル」)."""
        own = normalize(section.heading)
        if self.role_of(section) != "collaboration" or any(w in own for _, words in self._heading_words for w in words):
            return []
        parts = re.split(r"[/／・,、（）()\s]+", normalize(strip_decorations(section.heading)))
        return [p for p in parts if len(p) >= 2]

    def searchable(self, section: Section) -> bool:
        """False for parts no answer may use (the hashtag list)."""
        name = self.role_of(section)
        role = self._role.get(name) if name else None
        return role.searchable if role else True

    def cues(self, text: str) -> list[Cue]:
        """The cue of each aspect in ``text`` (normalised), in lexicon order (most specific aspect first): the
        last one written, since the question asks at the end (「業務内容を伺いたいです。…日々どんな作業が？」)."""
        norm = normalize(text)
        found: list[Cue] = []
        for aspect, patterns in self._cues:
            last = max(((m.start(), m.end(), word) for word, pattern in patterns for m in pattern.finditer(norm)),
                       default=None)  # the longest word where two start together
            if last is not None:
                found.append(Cue(aspect=aspect, word=last[2], start=last[0], end=last[1]))
        return found

    def beyond(self, text: str) -> str | None:
        """The first subject in ``text`` no part of the template covers (normalised: 「副業」, "work remote"), else None."""
        norm = normalize(text)
        found = [(m.start(), m.group("shown") if "shown" in pattern.groupindex else m.group())
                 for _, pattern in self._beyond if (m := pattern.search(norm))]
        return min(found)[1] if found else None

    def unnamed_places(self, sections: Iterable[Section]) -> list[str]:
        """The lexicon's places (normalised) that no section's heading or text names."""
        text = "\n".join(normalize(f"{' '.join(s.breadcrumb)}\n{s.text}") for s in sections)
        return [word for word, pattern in self._places if not pattern.search(text)]

    def places_in(self, text: str) -> list[str]:
        """The places of the lexicon that ``text`` names (normalised), in the order they come."""
        norm = normalize(text)
        found = [(m.start(), word) for word, pattern in self._places if (m := pattern.search(norm))]
        return [word for _, word in sorted(found)]

    def place_span(self, norm: str, place: str) -> tuple[int, int] | None:
        """Where normalised ``norm`` first names ``place`` (a word of the lexicon's places) as a word of its
        own, as offsets; else None."""
        pattern = next((p for w, p in self._places if w == place), None)
        m = pattern.search(norm) if pattern else None
        return m.span() if m else None

    def position(self, text: str) -> str | None:
        """``"top"`` or ``"start"`` when ``text`` asks for an end of a ladder (「最終的に」, 「新卒」), else None."""
        norm = normalize(text)
        return next((name for name, patterns in self._positions.items() if any(p.search(norm) for p in patterns)), None)

    def unit_words(self, aspect: Aspect) -> list[re.Pattern[str]]:
        """Patterns of the words that mark the lines answering ``aspect``."""
        return [_pattern(normalize(w)) for w in aspect.units]


def lead_sections(sections: Sequence[Section]) -> frozenset[str]:
    """Ids of the sections that only lead into their subsections (「3️⃣ 必要なスキルとツール」: one sentence, then
    the skills and tools tables): short text of their own, and at least one subsection."""
    parents = {s.breadcrumb[:-1] for s in sections if len(s.breadcrumb) > 2}  # breadcrumbs start with the title
    return frozenset(s.id for s in sections if s.breadcrumb in parents and len(s.text.strip()) <= LEAD_MAX_CHARS)


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key) or []
    if not isinstance(value, list):
        raise KnowledgeError(where, f"{key}: should be a list")
    return value


def _words(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(w, (str, int)) and str(w).strip() for w in value)


def _role(item: object, where: str, i: int) -> Role:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not _words(item.get("headings")):
        raise KnowledgeError(where, f"roles: item {i}: needs a name and a list of heading words")
    return Role(name=item["name"], headings=tuple(str(w) for w in item["headings"]),
                searchable=bool(item.get("searchable", True)))


def _aspect(item: object, where: str, i: int, roles: Iterable[str]) -> Aspect:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not _words(item.get("cues")):
        raise KnowledgeError(where, f"aspects: item {i}: needs a name and a list of cue words")
    name = item["name"]
    answer = item.get("answer", "prose")
    if answer not in ANSWER_TYPES:
        raise KnowledgeError(where, f"aspects: {name}: answer should be one of {', '.join(sorted(ANSWER_TYPES))}")
    answered_by = item.get("roles", [name])
    if not _words(answered_by) or not set(answered_by) <= set(roles):
        raise KnowledgeError(where, f"aspects: {name}: roles should be a list of the roles defined above")
    units = item.get("units", [])
    if units and not _words(units):
        raise KnowledgeError(where, f"aspects: {name}: units should be a list of words")
    examples = item.get("examples", [])
    if examples and not _words(examples):
        raise KnowledgeError(where, f"aspects: {name}: examples should be a list of questions")
    return Aspect(name=name, cues=tuple(str(w) for w in item["cues"]), roles=tuple(answered_by),
                  units=tuple(str(w) for w in units), answer=answer, needs_career=bool(item.get("needs_career")),
                  for_the_career=bool(item.get("for_the_career")), examples=tuple(str(q) for q in examples))
