"""Choosing what an extractive answer quotes: by the question's answer type, from the part that answers it.

`Composer.compose` reads the question analysis and the retrieved passages and
returns `Group` objects (a section and the units quoted from it) plus a trace
of its decisions for the eval report. Per answer type (`bot.aspects`):

- ``table``: the rows the question's topic points to (「シニア」 → the senior
  row), else the whole table; the top or first row for 「最高で」 / 「新卒」; of two tables, the one
  whose heading the question names (「ソフトスキル」).
- ``list``: the items the topic points to, whole, then (in a short list) every other item's title;
  else every item's title, with the one the question is nearest to in meaning (`bot.answer.meaning`)
  whole; the main work's and the outlook's items each with its first line (a title alone says neither
  what one does nor why a trend matters), the nearest one whole.
- ``steps``: a ladder in order up to the rung asked (all of it for 「最終的に」), then
  the part's closing lines on where else the path leads;
  learning steps in order, each with its aim (the first in full for 「最初に」 / 「何から」, else the one
  the question is nearest to in meaning); for 「未経験から」 also the article's own
  lines about starting out.
- ``lines``: every line of the part marked by the aspect's words (every book
  with its publisher), across the part's subsections.
- ``definition``: the defining sentences, and the one nearest in meaning to a topic of the
  question's own; in a comparison, the ones that set the career against the other, and against a
  name the question writes (「AIエンジニア」).
- ``suited``: the article's own words about who fits.
- ``prose``: the units sharing the most topic weight, from the best section;
  a further section only when it is nearly as strong; with whom a career works, when no word
  points at one partner, every partner with its first line.

A comparison runs the same plan for each compared career. A question that names
no career is answered from the article that answers it; when several answer it
about equally, each gets a brief answer and the careers are offered as choices.
Units are never cut. Quoted sections are the retrieved ones, or — for a part
answered as a whole (every book, every learning step) — the other subsections
of the same part of the same article.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..analysis import QuestionAnalysis
from ..aspects import Aspect, AspectLexicon, lead_sections
from ..careers import CareerLexicon
from ..knowledge import KnowledgeBase, Section
from ..retrieval import Hit
from ..text import normalize, strip_decorations, terms
from .experience import rows_for_years
from .meaning import UnitMeaning
from .units import Unit, section_units, sentences

__all__ = ["Composer", "Composition", "Group"]

#: A unit is "asked about" when the topic's weight on its name (a row's first cell, an item's title, a
#: section's heading) reaches FOCUS_MIN, or on its whole text FOCUS_MIN_TEXT, and FOCUS_SHARE of the best unit's.
#: FOCUS_MIN_TEXT is just below the idf of a word one passage alone holds (4.41 over the shipped 122 passages,
#: higher over more), so a name only one line uses (『INSPIRED』, LaunchDarkly) points to that line by itself.
FOCUS_MIN = 3.0
FOCUS_MIN_TEXT = 4.4
FOCUS_SHARE = 0.6
MAX_FOCUSED_ITEMS = 3
#: A list this short (employers, the main work) follows the items asked about with every other item's title,
#: so the answer still shows the whole list; a longer one (fifteen interview questions) would bury them.
MAX_LIST_BESIDE = 8
#: When no word of the question names an item, the item its meaning is nearest to (less the aspect asked in
#: general) is shown whole when it is this much nearer (cosine) than the next one; so is a learning step.
#: Chosen on dev: 0.05, 0.02 and 0 answered 2, 6 and 8 more questions (0 fewer) than 0.05 without the item's
#: whole body: the nearest is worth showing whole even when it stands out little, the rest being listed beside it.
MEANING_MARGIN = 0.0
#: A topic term this rare (idf) that a retrieved unit outside the part asked about holds names what is asked.
ANCHOR_IDF = 3.5
MAX_INTRO = 2
#: A definition part's sentence that says what the job is (「…を運用するのが機械学習エンジニアの仕事です」,
#: 「…を決める役割を担います」): after the one-line image the articles open with, the one that defines.
_ROLE_SENTENCE = re.compile(r"(?:のが|ことが).{0,24}(?:仕事|役割|職務|使命)(?:です|だ)|役割を担|に責任を持")
#: A run of Latin letters, digits and katakana (normalised) that may be a name written in both (「aiエンジニア」).
_MIXED_NAME = re.compile(r"[a-z0-9\u30a0-\u30ff]{4,}")
_KATAKANA = re.compile(r"[\u30a0-\u30ff]")
_LATIN = re.compile(r"[a-z]")
#: A question that asks with whom ("Who do they work with?", 「誰と協業する？」, 「どんな職種と連携する？」).
_WHO = re.compile(r"誰と|だれと|どんな(?:職種|人|チーム|部署|部門)と|どの(?:職種|チーム|部署|部門)と|(?<![a-z])who(?![a-z])"
                  r"|which (?:teams|roles|people|departments|functions)")
#: The lines after a career ladder quoted with it (where else the path leads).
MAX_CLOSING = 2
#: In ``prose``, a unit is quoted when it scores this share of the best unit; a further section when its
#: best unit reaches SECTION_SHARE of the best section's.
UNIT_SHARE = 0.75
SECTION_SHARE = 0.8
MAX_PROSE_UNITS = 4
MAX_SECTIONS = 3
#: Without a named career, another article answers "about equally" when its best passage scores this share
#: of the best one's, or when the question asks about a part of the template and nothing else; then each
#: such article gets a brief answer (at most MAX_CHOICES of them).
TIE_SHARE = 0.9
MAX_CHOICES = 4
BRIEF_UNITS = 2


@dataclass(frozen=True, slots=True)
class Group:
    """Units quoted from one section, for one career."""

    section: Section
    units: tuple[str, ...]
    career: str


@dataclass(frozen=True, slots=True)
class Composition:
    """What to quote, for which careers, and why."""

    groups: tuple[Group, ...]
    #: The careers the answer is about, in order (named, from the conversation, or found in the articles).
    careers: tuple[str, ...]
    #: True when no career was named or implied and the answering article was found by its content.
    inferred: bool = False
    #: Careers that answered about equally: the user may pick one (the answer covers each briefly).
    choices: tuple[str, ...] = ()
    trace: tuple[str, ...] = field(default_factory=tuple)


class Composer:
    """Picks groups of units for an analysed question from its retrieved passages and their articles."""

    def __init__(self, *, aspects: AspectLexicon, careers: CareerLexicon, knowledge: KnowledgeBase) -> None:
        self.aspects = aspects
        self.careers = careers
        self.knowledge = knowledge
        self._leads = lead_sections(knowledge.sections)
        self._meaning: UnitMeaning | None = None
        self._query: np.ndarray | None = None

    def with_meaning(self, meaning: UnitMeaning, query: np.ndarray) -> Composer:
        """This composer for one question whose vector is ``query``: it may also pick units by meaning."""
        view = copy.copy(self)
        view._meaning, view._query = meaning, query
        return view

    # -- the plan -------------------------------------------------------------------------------

    def compose(self, analysis: QuestionAnalysis, hits: Sequence[Hit]) -> Composition:
        a = analysis
        trace: list[str] = []
        ranked = self._ranked_sections(hits)
        if not ranked:
            return Composition(groups=(), careers=a.slugs, trace=("nothing retrieved",))
        best_by_article: dict[str, float] = {}
        for section, score in ranked:
            best_by_article.setdefault(section.slug, score)
        inferred = False
        choices: tuple[str, ...] = ()
        if a.comparison:
            careers = [s for s in a.slugs if s in best_by_article]
            trace.append(f"comparison of {', '.join(careers)}")
        elif a.slugs and self._mutual(a):
            # 「PMとDSはどう協力する？」: each side's own account of working with the other.
            careers = [c.slug for c in a.careers if c.via == "named" and c.slug in best_by_article]
            trace.append(f"working together, from each side: {', '.join(careers)}")
        elif a.slugs:
            # The first career the question is about that the passages answer; the content decides among them.
            careers = [next((s for s in a.slugs if s in best_by_article), ranked[0][0].slug)]
        else:
            inferred = True
            top = ranked[0][1]
            # 「面接では何を聞かれる？」 asks about a part every career has: nothing but the aspect tells them apart.
            tied = [slug for slug, score in best_by_article.items() if not a.terms or score >= TIE_SHARE * top]
            careers = tied[:MAX_CHOICES] if a.aspect is not None and len(tied) > 1 else [ranked[0][0].slug]
            if len(careers) > 1:
                choices = tuple(careers)
                trace.append(f"no career named; {len(careers)} articles answer about equally: {', '.join(careers)}")
            else:
                trace.append(f"no career named; answered from {careers[0]}")
        groups: list[Group] = []
        for slug in careers:
            mine = [s for s, _ in ranked if s.slug == slug]
            planned = self._plan(a, mine, slug, careers, trace)
            if choices:  # each career briefly: its part asked about, not the definition put before duties
                asked = [g for g in planned if self.aspects.role_of(g.section) in a.roles] or planned
                planned = [Group(section=g.section, units=g.units[:BRIEF_UNITS], career=g.career) for g in asked[:1]]
            groups.extend(planned)
        if not groups:  # nothing matched the plan: the best section's best units
            groups = self._prose(a, [ranked[0][0]], ranked[0][0].slug, trace)
        return Composition(groups=tuple(groups), careers=tuple(careers), inferred=inferred, choices=choices,
                           trace=tuple(trace))

    def _plan(self, a: QuestionAnalysis, sections: list[Section], slug: str, careers: Sequence[str],
              trace: list[str]) -> list[Group]:
        """The groups for one career: what the topic names outside the part asked about, then the part,
        then the first group of a second part the question also asks about (when one was retrieved)."""
        named = self._named_elsewhere(a, sections, slug, trace)
        groups = named + [g for g in self._by_type(a, sections, slug, careers, trace)
                          if all(g.section.id != n.section.id for n in named)]
        if a.also is not None and any(self.aspects.role_of(s) in a.also.roles for s in sections):
            trace.append(f"{slug}: also asked about {a.also.name}")
            second = replace(a, aspect=a.also, also=a.aspect)  # the part asked first is the other one now
            extra = [g for g in self._by_type(second, sections, slug, careers, trace)
                     if all(g.section.id != x.section.id for x in groups)]
            groups += extra[:1]
        return groups

    def _named_elsewhere(self, a: QuestionAnalysis, sections: list[Section], slug: str,
                         trace: list[str]) -> list[Group]:
        """A retrieved unit outside the part asked about that holds the topic's rare words (a company, a tool,
        a technique: 「サイバーエージェントだとDSはどんなことを？」 → its line among the employers)."""
        if not a.roles:
            return []
        rare = {t: w for t, w in a.terms.items() if w >= ANCHOR_IDF}
        best: tuple[float, Section, Unit] | None = None
        for s in sections:
            if self.aspects.role_of(s) in a.roles:
                continue
            for u in section_units(s):
                weight = sum(w for t, w in rare.items() if t in u.terms)
                if weight >= FOCUS_MIN_TEXT and (best is None or weight > best[0]):
                    best = (weight, s, u)
        if best is None:
            return []
        _, section, unit = best
        units = section_units(section)
        head = next((x for x in units if x.order == unit.parent), unit) if unit.parent is not None else unit
        trace.append(f"{section.id}: the topic's own words are here, outside the part asked about")
        text = self._detail(units, head, a) if head.kind == "item" else head.text
        return [Group(section=section, units=(text,), career=slug)]

    def _by_type(self, a: QuestionAnalysis, sections: list[Section], slug: str, careers: Sequence[str],
                 trace: list[str]) -> list[Group]:
        """The groups for one career from its sections of the answering part, by the answer type."""
        answer = a.answer_type
        in_rank = [s for s in sections if self.aspects.role_of(s) in a.roles] if a.roles else []
        # the part named first answers best (a summary: まとめ before とは), then by rank (a stable sort)
        answering = sorted(in_rank, key=lambda s: a.roles.index(self.aspects.role_of(s)))
        if a.roles and not answering:
            trace.append(f"{slug}: no retrieved section of part {'/'.join(a.roles)}; best units instead")
            return self._prose(a, sections[:1], slug, trace)
        if not a.roles:
            return self._prose(a, sections, slug, trace)
        others = [c for c in careers if c != slug]
        if answer == "table":
            return self._table(a, answering, slug, others, trace)
        if answer == "list":
            groups = self._list(a, answering[:1], slug, trace)
            if a.aspect is not None and a.aspect.name == "duties" and not a.comparison and groups \
                    and not self._focused(a, list(section_units(answering[0]))):
                # 「どんな仕事？」 asks what the job is as much as what it involves: its defining sentence first
                groups = self._defining(slug, trace) + groups
            return groups
        if answer == "steps":
            ladder_first = self.aspects.role_of(in_rank[0]) == "career_path"
            return self._steps(a, answering, slug, trace, ladder_first=ladder_first)
        if answer == "lines":
            return self._lines(a, answering, slug, trace)
        if answer in ("definition", "suited"):
            return self._definition(a, answering, slug, others, trace, suited=answer == "suited")
        if a.aspect is not None and a.aspect.name == "collaboration":
            # the one subsection about the partner asked: the one whose heading names it (「営業チームとは」 →
            # 「ビジネス（営業・マーケティング…）部門」), else the one the topic points to, else the best ranked
            asked = " ".join([normalize(a.topic), *a.partners])
            named = [s for s in answering if any(p in asked for p in self.aspects.partners_in(s))] or \
                [s for s in self._focused_sections(a, answering) if s.id not in self._leads]
            return self._prose(a, (named or answering)[:1], slug, trace)
        return self._prose(a, answering, slug, trace)

    @staticmethod
    def _mutual(a: QuestionAnalysis) -> bool:
        """A collaboration question with two subjects and no partner (「PMとDSはどう協力する？」)."""
        named = [c for c in a.careers if c.via == "named"]
        return a.aspect is not None and a.aspect.name == "collaboration" and not a.partners and len(named) >= 2

    # -- answer types -------------------------------------------------------------------------

    def _table(self, a: QuestionAnalysis, sections: list[Section], slug: str, others: Sequence[str],
               trace: list[str]) -> list[Group]:
        groups: list[Group] = []
        tables = [s for s in sections if any(u.kind == "row" for u in section_units(s))][:2] or sections[:1]
        if (named := _named_by_heading(a, tables)) is not None:
            tables = [named]  # 「ソフトスキルは？」: the table whose heading the question names, not a row that shares its words
            trace.append(f"{named.id}: the table whose heading the question names")
        for section in sorted(tables, key=self._article_order):
            units = section_units(section)
            rows = [u for u in units if u.kind == "row"] or list(units)
            by_years = rows_for_years(a.question, rows)
            picked = by_years or self._focused(a, rows)
            how = "the rows of the years of experience asked" if by_years else "rows asked about"
            if not picked:
                if a.position == "top" and rows and rows[0].kind == "row":
                    picked, how = rows[-1:], "the top row"
                elif a.position == "start" and rows and rows[0].kind == "row":
                    picked, how = rows[:1], "the first row"
                else:
                    picked, how = rows, "the whole table"
            picked += self._naming(units, others, exclude=picked)
            if note := self._table_note(a, units, rows):
                picked += note
                how += f", with its note ({len(note)})"
            trace.append(f"{section.id}: {how} ({len(picked)} units)")
            groups.append(self._group(section, picked, slug))
            if by_years or self._focused(a, rows):
                break  # one table answers a specific question
        return groups

    def _list(self, a: QuestionAnalysis, sections: list[Section], slug: str, trace: list[str]) -> list[Group]:
        groups: list[Group] = []
        for section in sections:
            units = section_units(section)
            items = [u for u in units if u.kind == "item"] or [u for u in units if u.kind == "row"]
            if not items:
                groups += self._prose(a, [section], slug, trace)
                continue
            intro = self._intro(units)
            picked = self._focused(a, items + [u for u in units if u.parent is not None])
            if picked:
                heads = list(dict.fromkeys(u.order if u.parent is None else u.parent for u in picked))
                chosen, how = [u for u in units if u.order in heads[:MAX_FOCUSED_ITEMS]], "the items asked about, in full"
            elif (near := self._nearest_item(a, units, items)) is not None:
                # 「毎日何してる？」, 「将来性は？」 ask what each item says; of other lists, each one's title
                says = a.aspect is not None and a.aspect.name in ("duties", "outlook")
                how = "every item with its first line" if says else "every item's title"
                trace.append(f"{section.id}: its summary, {how} and the item nearest in meaning in full")
                shown = [u.text for u in intro] + [self._whole(units, u) if u is near
                                                   else self._detail(units, u, a) if says else u.text for u in items]
                groups.append(Group(section=section, units=tuple(dict.fromkeys(shown)), career=slug))
                continue
            elif a.aspect is not None and a.aspect.name in ("duties", "outlook"):
                chosen, how = items, "every item with its first line"
            else:
                trace.append(f"{section.id}: its summary and every item's title ({len(intro)} + {len(items)})")
                groups.append(self._group(section, intro + items, slug))
                continue
            # an item asked about whole; the main work's and the outlook's others with their first line
            detail = [u.text for u in intro] + [self._whole(units, u) if picked else self._detail(units, u, a)
                                                for u in chosen]
            if picked and len(items) <= MAX_LIST_BESIDE:  # the rest of a short list after them, by title
                full = {u.order for u in chosen}
                rest = [u.text for u in items if u.order not in full]
                detail += rest
                how += f", then every other item's title ({len(rest)})"
            trace.append(f"{section.id}: its summary and {how} ({len(intro)} + {len(chosen)})")
            groups.append(Group(section=section, units=tuple(detail), career=slug))
        return groups

    def _steps(self, a: QuestionAnalysis, sections: list[Section], slug: str, trace: list[str], *,
               ladder_first: bool = False) -> list[Group]:
        """The ladder (for the career path, when there are no learning steps, or when the ladder ranked before
        them: ``ladder_first``, 「シニアになると何を任される？」 asked in a conversation about changing careers),
        then the learning steps in order."""
        groups: list[Group] = []
        starting = self.aspects.unit_words(a.aspect) if a.aspect else []
        ladder = next((s for s in sections if any(u.kind == "row" for u in section_units(s))), None)
        learning_part = next((s for s in sections if self.aspects.role_of(s) == "learning"), None)
        part = self._part(learning_part) if learning_part is not None else []
        learning = [s for s in part if len(s.breadcrumb) > 2]
        asked = self._focused_sections(a, learning)[:2]
        if part and len(part[0].breadcrumb) == 2:  # the part's own lead-in (「AI PMへの道は、技術とビジネスの両輪を…」)
            intro = [u for u in section_units(part[0]) if u.kind == "sentence"][:MAX_INTRO]
            if intro:
                trace.append(f"{part[0].id}: the part's lead-in ({len(intro)})")
                groups.append(self._group(part[0], intro, slug))
        if asked and a.aspect is not None and a.aspect.name == "learning":  # 「因果推論はどう勉強する？」
            for s in asked:
                trace.append(f"{s.id}: the learning step asked about, in full")
                groups.append(self._group(s, list(section_units(s)), slug))
            return groups
        if starting:  # the article's own lines about starting out (「未経験から目指す場合は…」), outside the steps
            for s in sections:
                if s in learning:
                    continue
                lines = [u for u in section_units(s) if u.kind in ("sentence", "item") and _marked(u, starting)]
                if lines:
                    trace.append(f"{s.id}: lines about starting out ({len(lines[:3])})")
                    groups.append(self._group(s, lines[:3], slug))
        if ladder is not None and (not learning or ladder_first or a.aspect is not None and a.aspect.name == "career_path"):
            units = section_units(ladder)
            rows = [u for u in units if u.kind == "row"]
            # the part's closing lines: where else the path leads (「このほか…へ転身する道」), beside the ladder's rungs
            after = [u for u in units if u.kind == "sentence" and u.parent is None
                     and u.order > rows[-1].order][:MAX_CLOSING]
            rung = self._focused(a, rows)
            if rung and a.position != "top":
                last = max(rows.index(u) for u in rung)
                rows = rows[: last + 2]  # up to the rung asked, and the one after it
                trace.append(f"{ladder.id}: the ladder up to the rung asked ({len(rows)} rows)")
            else:
                trace.append(f"{ladder.id}: the whole ladder ({len(rows)} rows)")
            if after:
                trace.append(f"{ladder.id}: and where else it leads ({len(after)})")
            groups.append(self._group(ladder, rows + after, slug))
        if learning and not asked and a.position == "start":  # 「最初に何から？」: where to begin, in full
            asked = learning[:1]
        if learning and not asked and (near := self._nearest_step(a, learning)) is not None:
            asked = [near]
        if learning:  # every step with its aim; a step the topic names (「ポートフォリオ」), in full
            trace.append(f"{slug}: the learning steps in order ({len(learning)}; {len(asked)} in full)")
            for s in learning:
                if s in asked:
                    groups.append(self._group(s, list(section_units(s)), slug))
                    continue
                aim = next((u for u in section_units(s) if u.label and u.kind == "item"), None)
                heading = strip_decorations(s.heading)
                groups.append(Group(section=s, units=(f"{heading} — {aim.text}" if aim else heading,), career=slug))
        return groups or self._prose(a, sections[:1], slug, trace)

    def _lines(self, a: QuestionAnalysis, sections: list[Section], slug: str, trace: list[str]) -> list[Group]:
        words = [p for cue in self._lines_aspects(a) for p in self.aspects.unit_words(cue)]
        part = [s for s in self._part(sections[0]) if s.id not in self._leads]
        focused = self._focused_sections(a, part)
        groups = self._marked_lines(focused, words, slug)
        if not groups:  # the sections asked about have no such line: every such line of the part
            focused, groups = [], self._marked_lines(part, words, slug)
        trace.append(f"{slug}: lines marked {'/'.join(x.name for x in self._lines_aspects(a))} from "
                     f"{len(groups)} {'sections asked about' if focused else 'sections of the part'}")
        return groups or self._steps(a, sections, slug, trace)

    @staticmethod
    def _marked_lines(sections: Sequence[Section], words: Sequence, slug: str) -> list[Group]:
        groups: list[Group] = []
        for s in sections:
            marked: list[str] = []
            for u in section_units(s):
                if u.label and any(p.search(normalize(u.label)) for p in words):
                    marked.append(u.text)
                elif u.kind != "row" and any(p.search(normalize(u.text)) for p in words):
                    # a line not labelled so: only its sentences that say it (「E資格」 inside a course line)
                    marked += [t for t in sentences(u.text) if any(p.search(normalize(t)) for p in words)]
            if marked:
                groups.append(Group(section=s, units=tuple(dict.fromkeys(marked)), career=slug))
        return groups

    def _definition(self, a: QuestionAnalysis, sections: list[Section], slug: str, others: Sequence[str],
                    trace: list[str], *, suited: bool) -> list[Group]:
        groups: list[Group] = []
        words = self.aspects.unit_words(a.aspect) if a.aspect else []
        for section in sections[:1] if not suited else sections:
            units = [u for u in section_units(section) if u.kind in ("sentence", "item")]
            if not units:
                continue
            if suited:
                fits = [u for u in units if _marked(u, words)]
                picked = sorted(fits, key=lambda u: -sum(bool(p.search(normalize(u.text))) for p in words))[:3]
                if not picked:
                    continue
                picked = sorted(picked, key=lambda u: u.order)
                trace.append(f"{section.id}: the article's words about who fits ({len(picked)})")
            else:
                contrast = [*self._naming(units, others, exclude=[]), *self._mixed_names(a, units), *self._focused(a, units)]
                contrast = list({u.order: u for u in contrast}.values())
                if not contrast and others:  # the definition does not name the other career: where it does
                    elsewhere = self._contrast_elsewhere(a, slug, others, section)
                    if elsewhere is not None:
                        groups.append(elsewhere)
                        trace.append(f"{elsewhere.section.id}: where it sets itself against the other career")
                        continue
                if contrast:  # those that set it apart and what follows them; alone, the defining sentence first
                    follow = [units[units.index(u) + 1] for u in contrast if units.index(u) + 1 < len(units)]
                    chosen = ([] if others else [units[0]]) + contrast[:2] + follow[:2]
                    picked = sorted({u.order: u for u in chosen}.values(), key=lambda u: u.order)[:4]
                    trace.append(f"{section.id}: the sentences that set it apart ({len(picked)})")
                else:  # the one-line image, then the sentence that says what the job is (「…のが〜の仕事です」)
                    says = None
                    if self.aspects.role_of(section) == "definition":  # a summary's first lines stay
                        says = next((u for u in units[1:] if u.kind == "sentence" and _ROLE_SENTENCE.search(u.text)), None)
                    picked = [units[0], says] if says is not None else units[:2]
                    how = "the defining sentences"
                    if a.terms and (near := self._nearest_unit(a, units)) is not None and near not in picked:
                        # a topic of its own (「AIエンジニアと同じ？」): the sentence nearest to it in meaning too
                        picked = sorted([*picked, near], key=lambda u: u.order)
                        how += " and the one nearest in meaning"
                    trace.append(f"{section.id}: {how}")
            groups.append(self._group(section, picked, slug))
            if suited:
                break
        return groups or self._prose(a, sections[:1], slug, trace)

    def _defining(self, slug: str, trace: list[str]) -> list[Group]:
        """The first sentence of career ``slug``'s definition part (「〜とは」), as one group (or none)."""
        article = self.knowledge.article(slug)
        section = next((s for s in article.sections if self.aspects.role_of(s) == "definition"), None) if article else None
        units = [u for u in section_units(section) if u.kind == "sentence"][:1] if section is not None else []
        if not units:
            return []
        trace.append(f"{section.id}: the defining sentence, before the duties")
        return [self._group(section, units, slug)]

    def _contrast_elsewhere(self, a: QuestionAnalysis, slug: str, others: Sequence[str],
                            definition: Section) -> Group | None:
        """The section of career ``slug``'s article that names the others most (e.g. its collaboration with
        them), with those lines; None when no section does."""
        article = self.knowledge.article(slug)
        best: tuple[int, Section, list[Unit]] | None = None
        for s in article.sections if article else ():
            if s.id == definition.id or not self.aspects.searchable(s):
                continue
            lines = self._naming(section_units(s), others, exclude=[])
            heading = any(n in normalize(s.heading) for o in others for n in self._names(o))
            score = len(lines) + (2 if heading else 0)
            if lines and (best is None or score > best[0]):
                best = (score, s, lines)
        if best is None:
            return None
        _, s, lines = best
        units = list(section_units(s))
        if any(n in normalize(s.heading) for o in others for n in self._names(o)):
            lines = units  # a whole subsection about the other career
        return self._group(s, lines[:4], slug)

    def _prose(self, a: QuestionAnalysis, sections: Sequence[Section], slug: str, trace: list[str]) -> list[Group]:
        if sections and (asked := self._every_partner_asked(a, sections[0])) is not None:
            return self._every_partner(*asked, slug, trace)
        scored: list[tuple[Section, list[Unit], float]] = []
        focus = a.focus_terms
        for section in sections[:MAX_SECTIONS]:
            units = list(section_units(section))
            if not units:
                continue
            collaboration = self.aspects.role_of(section) == "collaboration" and len(units) <= 6
            ranked = sorted(units, key=lambda u: (-self._weight(focus, u), u.order))
            best = self._weight(focus, ranked[0])
            if collaboration and section.id not in self._leads:
                picked = units
            elif best == 0:
                picked = units[:2]
            else:
                picked = [u for u in ranked[:MAX_PROSE_UNITS] if self._weight(focus, u) >= UNIT_SHARE * best]
            scored.append((section, sorted(picked, key=lambda u: u.order), best))
        if not scored:
            return []
        top = max(s for _, _, s in scored)
        kept = [scored[0]] + [x for x in scored[1:] if top > 0 and x[2] >= SECTION_SHARE * top]
        groups: list[Group] = []
        for section, picked, _ in kept:
            trace.append(f"{section.id}: the units sharing the most topic weight ({len(picked)})")
            units = section_units(section)
            shown = [self._detail(units, u, a) if u.kind == "item" else u.text for u in picked]
            groups.append(Group(section=section, units=tuple(dict.fromkeys(shown)), career=slug))
        return groups

    def _every_partner_asked(self, a: QuestionAnalysis, section: Section) -> tuple[list[Section], list[Section]] | None:
        """(``section``'s collaboration part, its partners' subsections) when the question asks with whom a career
        works (`_WHO`) and no word of it points at some partners and not at the others (「連携」, in all of them, or
        「協業スタイル」, the part's own heading, point at none); else None. A question about two careers is not one."""
        if a.aspect is None or a.aspect.name != "collaboration" or a.partners or len(a.careers) > 1:
            return None
        if not _WHO.search(normalize(a.question)):
            return None
        part = self._part(section)
        partners = [s for s in part if s.id not in self._leads and self.aspects.role_of(s) == "collaboration"]
        held = [set(terms(normalize(s.heading))).union(*(u.terms for u in section_units(s))) for s in partners]
        own = {t for s in part if s.id in self._leads for t in terms(normalize(s.heading))}
        pointing = [t for t in a.terms if t not in own and any(t in h for h in held) and not all(t in h for h in held)]
        return (part, partners) if len(partners) >= 2 and not pointing else None

    def _every_partner(self, part: Sequence[Section], partners: Sequence[Section], slug: str,
                       trace: list[str]) -> list[Group]:
        """「誰と協業する？」, "Who do they work with?": no word of the question points at one partner, so each
        partner's subsection with its first line, after the part's own lead-in."""
        trace.append(f"{slug}: every partner with its first line ({len(partners)}), none named")
        leads = [g for s in part[:1] if s.id in self._leads and (g := self._group(s, self._intro(section_units(s)), slug)).units]
        return leads + [self._group(s, section_units(s)[:1], slug) for s in partners]

    # -- helpers ----------------------------------------------------------------------------------

    def _ranked_sections(self, hits: Sequence[Hit]) -> list[tuple[Section, float]]:
        """Retrieved sections in rank order with their best score, tag lists left out."""
        seen: dict[str, tuple[Section, float]] = {}
        for h in hits:
            s = h.passage.section
            if s.id not in seen and self.aspects.searchable(s):
                seen[s.id] = (s, h.score)
        return list(seen.values())

    def _article_order(self, section: Section) -> int:
        article = self.knowledge.article(section.slug)
        return next((i for i, s in enumerate(article.sections) if s.id == section.id), 0) if article else 0

    def _part(self, section: Section) -> list[Section]:
        """The sections of the article part ``section`` belongs to (its top-level section and subsections)."""
        article = self.knowledge.article(section.slug)
        if article is None or len(section.breadcrumb) < 2:
            return [section]
        top = section.breadcrumb[:2]
        return [s for s in article.sections if s.breadcrumb[:2] == top]

    def _lines_aspects(self, a: QuestionAnalysis) -> list[Aspect]:
        """Every ``lines`` aspect the question cues (「本やコース」 asks for both)."""
        cued = [c.aspect for c in self.aspects.cues(a.search_text) if c.aspect.answer == "lines"]
        return cued or ([a.aspect] if a.aspect else [])

    @staticmethod
    def _weight(weights: Mapping[str, float], unit: Unit) -> float:
        """The weight of ``weights``' terms (a question's `focus_terms`, say) in a unit's text."""
        return sum(w for t, w in weights.items() if t in unit.terms)

    @staticmethod
    def _key_weight(weights: Mapping[str, float], unit: Unit) -> float:
        """The weight of ``weights``' terms on a unit's name: a row's first cell, an item's title, else its text."""
        if unit.kind == "row" or unit.title:
            return sum(w for t, w in weights.items() if t in set(terms(unit.title)))
        return sum(w for t, w in weights.items() if t in unit.terms)

    def _focused(self, a: QuestionAnalysis, units: Sequence[Unit]) -> list[Unit]:
        """The units the question's topic points to (by name first, else by text), or [] for none in particular.

        The topic's own words decide before the cue asked with them: in 「ベイズモデルを作るときに使うライブラリ」
        the row about Bayesian modelling, not the one named 分析ライブラリ; the cue names a unit only when the
        topic points to none (「メーカー系でも働ける？」)."""
        focus = a.focus_terms
        if not units or not focus:
            return []
        # a name the question writes whole (「ジュニア・ミドル・シニア」) names its unit, however common its words
        named = {u.order for u in units if len(core := _name_core(u.title)) >= 2 and core in a.topic}  # topic: normalised
        for weigh, bar, by in ((self._key_weight, FOCUS_MIN, a.terms), (self._weight, FOCUS_MIN_TEXT, a.terms),
                               (self._key_weight, FOCUS_MIN, focus), (self._weight, FOCUS_MIN_TEXT, focus)):
            weights = [weigh(by, u) for u in units]
            top = max(weights)
            if top >= bar:
                return [u for u, w in zip(units, weights, strict=True) if w >= FOCUS_SHARE * top or u.order in named]
        return [u for u in units if u.order in named]

    def _focused_sections(self, a: QuestionAnalysis, sections: Sequence[Section]) -> list[Section]:
        """The subsections the topic points to: by heading (「SQLの本」 → 「SQLとデータ前処理の習得」), else by text."""
        focus = a.focus_terms
        if not focus:
            return []
        heads = [sum(w for t, w in focus.items() if t in set(terms(s.heading))) for s in sections]
        if heads and max(heads) >= FOCUS_MIN:
            return [s for s, w in zip(sections, heads, strict=True) if w >= FOCUS_SHARE * max(heads)]
        texts = [max((self._weight(focus, u) for u in section_units(s)), default=0.0) for s in sections]
        if texts and max(texts) >= FOCUS_MIN_TEXT:
            return [s for s, w in zip(sections, texts, strict=True) if w >= FOCUS_SHARE * max(texts)]
        return []

    def _nearest_item(self, a: QuestionAnalysis, units: Sequence[Unit], items: Sequence[Unit]) -> Unit | None:
        """The item (with its body) the question is clearly nearest to in meaning, MEANING_MARGIN nearer than any
        other; None without unit vectors or when no item stands out. Nearness is the question's cosine less that
        of the aspect asked in general (its example questions): 「面接では何を聞かれる？」 is near every interview
        question alike, "how to stop an LLM from making things up" near the one about hallucination."""
        if self._meaning is None or self._query is None or len(items) < 2:
            return None
        heads = {u.order: u for u in items}
        cos = self._nearness(a, units)
        best: dict[int, float] = {}
        for u, c in zip(units, cos, strict=True):
            head = u.order if u.order in heads else u.parent
            if head in heads:
                best[head] = max(best.get(head, -2.0), float(c))
        ranked = sorted(best.items(), key=lambda kv: -kv[1])
        if len(ranked) < 2 or ranked[0][1] - ranked[1][1] < MEANING_MARGIN:
            return None
        return heads[ranked[0][0]]

    def _nearest_unit(self, a: QuestionAnalysis, units: Sequence[Unit]) -> Unit | None:
        """The unit the question is nearest to in meaning (as in `_nearest_item`); None without unit vectors."""
        if self._meaning is None or self._query is None or not units:
            return None
        return units[int(np.argmax(self._nearness(a, units)))]

    def _nearest_step(self, a: QuestionAnalysis, steps: Sequence[Section]) -> Section | None:
        """The learning step whose best unit the question is clearly nearest to in meaning (as in
        `_nearest_item`, MEANING_MARGIN nearer than any other step's); None without unit vectors or when no
        step stands out. "How do I get hands-on with messy data?" names no step's words."""
        if self._meaning is None or self._query is None or len(steps) < 2:
            return None
        best = [float(np.max(self._nearness(a, units), initial=-2.0)) for units in (section_units(s) for s in steps)]
        ranked = sorted(range(len(steps)), key=lambda i: -best[i])
        return steps[ranked[0]] if best[ranked[0]] - best[ranked[1]] >= MEANING_MARGIN else None

    def _nearness(self, a: QuestionAnalysis, units: Sequence[Unit]) -> np.ndarray:
        """Each unit's cosine to the question less its cosine to the aspect asked in general (its example
        questions), so that what every unit of the part shares with the aspect does not decide."""
        assert self._meaning is not None and self._query is not None
        cos = self._meaning.cosines(self._query, units)
        generic = self._meaning.generic(a.aspect.examples) if a.aspect is not None else None
        return cos - self._meaning.cosines(generic, units) if generic is not None else cos

    @staticmethod
    def _intro(units: Sequence[Unit]) -> list[Unit]:
        """The sentences before a section's first item or row (its own summary of the list)."""
        out: list[Unit] = []
        for u in units:
            if u.kind != "sentence" or u.parent is not None:
                break
            out.append(u)
        return out[:MAX_INTRO]

    def _table_note(self, a: QuestionAnalysis, units: Sequence[Unit], rows: Sequence[Unit]) -> list[Unit]:
        """A table's note (the sentences after its rows, from the one marked ※), which qualifies every figure in
        it: its first sentence, which says what the figures are (「…をもとに整理した目安であり、公式な統計値ではありません」),
        and those holding a word of the topic (「英語力によって大きく変わります」 for 「英語できると変わる？」); [] for a
        table with no note."""
        last = max((u.order for u in rows if u.kind == "row"), default=None)
        if last is None:
            return []
        after = [u for u in units if u.order > last and u.kind == "sentence"]
        start = next((i for i, u in enumerate(after) if u.text.startswith("※")), None)
        if start is None:
            return []
        note = after[start:]
        return [note[0]] + [u for u in note[1:] if not u.terms.isdisjoint(a.terms)]

    def _naming(self, units: Sequence[Unit], others: Sequence[str], *, exclude: Sequence[Unit]) -> list[Unit]:
        """Units that name one of the ``others`` careers (a comparison's contrasting lines)."""
        names = [n for slug in others for n in self._names(slug)]
        skip = {u.order for u in exclude}
        return [u for u in units if u.order not in skip and u.kind != "row"
                and any(n in normalize(u.text) for n in names)]

    @staticmethod
    def _mixed_names(a: QuestionAnalysis, units: Sequence[Unit]) -> list[Unit]:
        """Units that write a name the question writes in Latin letters and katakana together (「AIエンジニア」 in
        「AIエンジニアって機械学習エンジニアと同じもの？」), when at most two units do: where the part sets the
        career against that name. (Katakana alone, 「エンジニア」, is too common a word to point anywhere.)"""
        runs = [r for r in _MIXED_NAME.findall(normalize(a.question)) if _KATAKANA.search(r) and _LATIN.search(r)]
        texts = [normalize(u.text) for u in units]
        rare = [r for r in runs if 0 < sum(r in t for t in texts) <= 2]
        return [u for u, t in zip(units, texts) if u.kind != "row" and any(r in t for r in rare)]

    def _names(self, slug: str) -> list[str]:
        career = self.careers.get(slug)
        return [n for n in (career.names if career else ()) if len(n) >= 3]

    @staticmethod
    def _whole(units: Sequence[Unit], head: Unit) -> str:
        """An item with its whole body (every sentence and sub-item under it), written as `_detail` writes one."""
        body = " ".join(u.text for u in units if u.parent == head.order)
        return _with_body(head, body) if body else head.text

    def _detail(self, units: Sequence[Unit], head: Unit, a: QuestionAnalysis) -> str:
        """An item in brief: its title or text, then its first body sentence (or sub-item) and the ones the
        topic points to or that speak of the other part the question asks about (at most two); `_whole` for all."""
        body = [u for u in units if u.parent == head.order]
        if not body:
            return head.text
        focus = a.focus_terms
        asked = [u for u in body[1:] if self._weight(focus, u) >= FOCUS_MIN or self._names_other_part(a, u)]
        return _with_body(head, " ".join(u.text for u in ([body[0]] + asked)[:2]))

    def _names_other_part(self, a: QuestionAnalysis, unit: Unit) -> bool:
        """Whether ``unit`` speaks of the other part a question about two asks (「外資系の年収は？」: the line of the
        employers that says 年収水準は国内企業より高い), by that part's cues."""
        return a.also is not None and any(c.aspect.name == a.also.name for c in self.aspects.cues(unit.text))

    @staticmethod
    def _group(section: Section, units: Sequence[Unit], slug: str) -> Group:
        return Group(section=section, units=tuple(dict.fromkeys(u.text for u in units)), career=slug)


def _with_body(head: Unit, body: str) -> str:
    """An item written with (part of) its body: after its title, or in brackets after an item without one."""
    return f"{head.text} — {body}" if head.title else f"{head.text}（{body}）"


def _name_core(title: str) -> str:
    """A unit's name without what its parentheses add (「シニア (7年以上/リード)」 → 「シニア」), normalised."""
    return normalize(re.split(r"\s*[(（]", title, maxsplit=1)[0]).strip()


def _marked(unit: Unit, words: Sequence) -> bool:
    text = normalize(unit.text)
    return any(p.search(text) for p in words)


def _named_by_heading(a: QuestionAnalysis, sections: Sequence[Section]) -> Section | None:
    """The one section of ``sections`` whose heading alone shares a topic word with the question (「組織・管理スキル
    （ソフトスキル）」 for 「ソフトスキルは？」, when 「技術スキル（ハードスキル）」 does not), else None."""
    if len(sections) < 2:
        return None
    words = [set(terms(normalize(s.heading))) for s in sections]
    own = [w - set().union(*(o for j, o in enumerate(words) if j != i)) for i, w in enumerate(words)]
    named = [s for s, w in zip(sections, own) if any(t in a.terms for t in w)]
    return named[0] if len(named) == 1 else None
