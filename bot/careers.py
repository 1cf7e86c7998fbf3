"""Which careers a question names, learned from the articles themselves.

Each article contributes its names: front-matter ``aliases``, the head of its
title (``AIプロダクトマネージャーの年収…`` → ``AIプロダクトマネージャー``, plus a
parenthesised short form), its slug read as words (``ai product manager``),
and abbreviations the text defines for one of those names
(``AI Product Manager（AI PM）``). Matching is on normalised text, longest name
first, so ``AI PM`` is not also read as ``PM``. No career is hard-coded.

A career whose name is another's with a qualifier in front (``AI PM`` = ``AI`` +
``PM``) is also named by that qualifier shortly before the other's name, in one
noun phrase: 「AIのPM」, 「AIプロダクトのPM」 and 「AI系PM」 are AI PMs; 「AIとPM」
(two things) and 「AIに仕事を奪われるPM」 (a clause) are not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .knowledge import Article
from .text import as_typed, normalize, normalize_with_spans

__all__ = ["Career", "CareerLexicon", "career_title"]

_TITLE_HEAD = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?(.+?)(?:の|[:：?？!！、。|｜]|$)")
_PARENS = re.compile(r"[(（]([^)）]{1,20})[)）]")
_ABBREVIATION = r"{name}\s*[(（]\s*([a-z][a-z0-9 ./-]{{0,14}}[a-z0-9])\s*[)）]"

#: Endings that make a noun a job title. Language knowledge, not a list of careers: it lets the
#: bot notice that a question is about a career no article covers (「Webエンジニア」, 「看護師」).
JOB_TITLE_ENDINGS_KANA = (
    "エンジニア", "マネージャー", "マネジャー", "デザイナー", "アナリスト", "コンサルタント", "ディレクター",
    "プログラマー", "プランナー", "リサーチャー", "サイエンティスト", "アーキテクト", "スペシャリスト",
    "クリエイター", "ライター", "オペレーター", "アシスタント", "トレーダー", "セールス",
)
#: Single-kanji endings (看護師, 弁護士, 営業職, 会社員); only in words of three or more
#: characters, so that 就職, 転職, 修士 and 社員 are not read as job titles.
JOB_TITLE_ENDINGS_KANJI = ("師", "士", "職", "員", "官")
#: Words with such an ending that name no job: 「シニア同士」 (between seniors), 「チーム全員」 (everyone).
NOT_JOB_TITLE_ENDINGS = ("同士", "全員", "人員", "定員")
_EN_TITLE = re.compile(
    r"\b((?:[a-z][a-z+#./-]*\s+){1,2}(?:engineer|manager|designer|analyst|consultant|developer|scientist"
    r"|architect|director|researcher|writer|planner|programmer)s?)\b"
)
#: Words that are never part of a job title: a title match starts after them ("than backend engineers",
#: "as a QA engineer"), and a match that is only them and the ending ("become a manager") names no title.
_NOT_TITLE_WORD = re.compile(r"a|an|the|my|our|your|than|as|and|or|vs|versus|to|from|do|does|are|is|with|for|of")
#: A job title's ending and the name of its field: "data science" and 「データサイエンス」 name the data scientist's
#: career as much as its title does ("torn between data science and product management").
FIELD_OF_TITLE = (
    ("scientist", "science"), ("engineer", "engineering"), ("manager", "management"),
    ("サイエンティスト", "サイエンス"), ("エンジニア", "エンジニアリング"), ("マネージャー", "マネジメント"),
)
#: Other ways people write the katakana of a name: the long vowel left off at the end or in the middle
#: (マネージャ, マネジャー: house styles) and a small ィ typed large (サイエンテイスト).
KATAKANA_VARIANTS = (("ージャー", "ージャ"), ("ージャー", "ジャー"), ("ティ", "テイ"), ("ディ", "デイ"), ("ニア", "ニヤ"))
#: What may stand between a qualifier and the career name it qualifies (「AI|プロダクトの|PM」): at most a
#: short noun and の/系/向け — no particle that joins two things (と, や) and no clause.
_QUALIFIED_GAP = re.compile(r"\s*(?:[\u30a0-\u30ff\u3400-\u9fffa-z]{1,8}\s*)?(?:の|系の?|向けの?)?\s*")
_WORD_RUN = re.compile(r"[a-z0-9\u30a0-\u30ff\u3400-\u9fff\uf900-\ufaff]+")


@dataclass(frozen=True, slots=True)
class Career:
    """One article seen as a career: its slug, display name and normalised names."""

    slug: str
    name: str
    names: tuple[str, ...]


def career_title(title: str) -> str:
    """The career an article title names: ``AIプロダクトマネージャーの年収・…`` → ``AIプロダクトマネージャー``."""
    head = _TITLE_HEAD.match(title)
    return (_PARENS.sub("", head.group(1)).strip() if head else "") or title


def _names_of(article: Article) -> tuple[str, list[str]]:
    raw: list[str] = list(article.aliases)
    head = _TITLE_HEAD.match(article.title)
    display = career_title(article.title)
    raw.append(display)
    if head:
        for inner in _PARENS.findall(head.group(1)):
            raw.extend(re.split(r"[/／・,、]", inner))
    raw.append(article.slug.replace("_", " ").replace("-", " "))
    names = {normalize(n).strip() for n in raw if n.strip()}
    text = normalize("\n".join(s.text for s in article.sections[:3]))
    for name in sorted(names, key=len, reverse=True):
        for abbr in re.findall(_ABBREVIATION.format(name=re.escape(name)), text):
            names.add(abbr.strip())
    for n in list(names):
        names.update(n[: -len(title)] + field for title, field in FIELD_OF_TITLE
                     if n.endswith(title) and len(n) > len(title) + 1)
    variants = set(names)
    for n in names:
        if n.isascii() and " " in n:
            variants.add(n.replace(" ", ""))
    for written, variant in KATAKANA_VARIANTS:
        variants.update(v.replace(written, variant) for v in list(variants) if written in v)
    return display, sorted((v for v in variants if len(v) >= 2), key=len, reverse=True)


def _pattern(name: str) -> str:
    escaped = re.escape(name).replace(r"\ ", r"\s*")
    if name.isascii():
        return rf"(?<![a-z0-9]){escaped}s?(?![a-z0-9])"
    return escaped


class CareerLexicon:
    """Finds the careers a text names. Built from the loaded articles."""

    def __init__(self, *, careers: Sequence[Career]) -> None:
        self.careers = tuple(careers)
        self._by_slug = {c.slug: c for c in self.careers}
        entries = sorted(((n, c.slug) for c in self.careers for n in c.names), key=lambda e: len(e[0]), reverse=True)
        self._slug_of_group: list[str] = [slug for _, slug in entries]
        alternation = "|".join(f"({_pattern(n)})" for n, _ in entries)
        self._regex = re.compile(alternation) if entries else None
        #: slug of the qualified name's career → (qualifier pattern, slug of the career it qualifies)
        self._qualified = _qualifiers(self.careers)

    @classmethod
    def from_articles(cls, articles: Iterable[Article]) -> CareerLexicon:
        careers = []
        for article in articles:
            display, names = _names_of(article)
            careers.append(Career(slug=article.slug, name=display, names=tuple(names)))
        return cls(careers=careers)

    def get(self, slug: str) -> Career | None:
        return self._by_slug.get(slug)

    def _matches(self, norm: str) -> list[tuple[str, int, int]]:
        """(slug, start, end) of every career name in normalised ``norm``, qualified names read as such."""
        if self._regex is None:
            return []
        found = [(self._slug_of_group[(m.lastindex or 1) - 1], m.start(), m.end()) for m in self._regex.finditer(norm)]
        out: list[tuple[str, int, int]] = []
        for slug, start, end in found:
            for qualified, (qualifier, base) in self._qualified.items():
                if base != slug:
                    continue
                floor = out[-1][2] if out else 0
                for q in qualifier.finditer(norm, floor, start):
                    if _QUALIFIED_GAP.fullmatch(norm, q.end(), start):
                        slug, start = qualified, q.start()
                        break
            out.append((slug, start, end))
        return out

    def strip(self, text: str, *, only: str | None = None) -> str:
        """``text`` normalised, with the names of career ``only`` (default: every career) removed.

        With ``only``, other careers' names stay, spelled as their articles name them
        (``MLE`` → ``機械学習エンジニア``), so they match those careers' headings.
        """
        norm = normalize(text)
        pieces, at = [], 0
        for slug, start, end in self._matches(norm):
            pieces.append(norm[at:start])
            if only is None or slug == only:
                pieces.append(" ")
            else:
                name = normalize(self._by_slug[slug].name)
                for own in self._by_slug[only].names:  # 「AIプロダクトマネージャー」 in the PM article: just 「AI」
                    name = name.replace(own, " ")
                pieces.append(f" {name.strip()} ")
            at = end
        pieces.append(norm[at:])
        return re.sub(r"\s+", " ", "".join(pieces)).strip()

    def uncovered(self, text: str) -> str | None:
        """A job title in ``text`` that names no covered career (「Webエンジニア」), or None.

        A run of letters ending like a job title counts when it is more than the
        ending alone and contains none of the covered careers' names. It is matched
        on normalised text but returned as the user typed it (「Webエンジニア」, not 「webエンジニア」).
        """
        norm, spans = normalize_with_spans(text)
        found = self.uncovered_spans(norm)
        return as_typed(text, spans, *found[0]) if found else None

    def uncovered_spans(self, norm: str) -> list[tuple[int, int]]:
        """(start, end) of every job title in normalised ``norm`` that names no covered career, English
        titles first, as `uncovered` reads them."""
        known = [n for c in self.careers for n in c.names]
        candidates = []  # (start, end) in norm
        for m in _EN_TITLE.finditer(norm):
            words = [w.span() for w in re.finditer(r"\S+", m.group(1))]
            # the title starts after the last word that cannot be part of one ("than backend engineers")
            cut = [i for i, (a, b) in enumerate(words[:-1]) if _NOT_TITLE_WORD.fullmatch(m.group(1)[a:b])]
            first = cut[-1] + 1 if cut else 0
            ending = m.group(1)[words[-1][0] : words[-1][1]].removesuffix("s")
            # the bare ending is a title when no covered career is one ("a designer", not "a manager")
            if first < len(words) - 1 or not any(name.endswith(ending) for name in known):
                candidates.append((m.start(1) + words[first][0], m.end(1)))
        for m in _WORD_RUN.finditer(norm):
            run = m.group()
            if any(run.endswith(e) and len(run) > len(e) for e in JOB_TITLE_ENDINGS_KANA) or (
                len(run) >= 3 and run[-1] in JOB_TITLE_ENDINGS_KANJI and not run.endswith(NOT_JOB_TITLE_ENDINGS)
            ):
                candidates.append(m.span())
        return [(start, end) for start, end in candidates if not any(name in norm[start:end] for name in known)]

    def spans(self, text: str) -> list[tuple[str, str, int, int]]:
        """Every career name in ``text``: (slug, the name as matched, start, end), offsets in ``normalize(text)``."""
        norm = normalize(text)
        return [(slug, norm[start:end], start, end) for slug, start, end in self._matches(norm)]

    def mentions(self, text: str) -> list[str]:
        """Slugs of the careers ``text`` names, in order of first appearance, without repeats."""
        return list(dict.fromkeys(slug for slug, _, _ in self._matches(normalize(text))))


def _qualifiers(careers: Sequence[Career]) -> dict[str, tuple[re.Pattern[str], str]]:
    """For each career named as another's name with a qualifier in front (``ai pm`` = ``ai`` + ``pm``):
    the qualifiers as one pattern, and the career qualified (the first such one). A qualifier is a word
    of two or more letters."""
    words: dict[str, list[str]] = {}
    bases: dict[str, str] = {}
    for career in careers:
        for other in careers:
            if other.slug == career.slug:
                continue
            for name in career.names:
                for base in other.names:
                    prefix = name[: -len(base)].strip() if name.endswith(base) else ""
                    if len(prefix) < 2 or not re.fullmatch(r"\w+", prefix):
                        continue
                    if bases.setdefault(career.slug, other.slug) == other.slug and prefix not in words.setdefault(career.slug, []):
                        words[career.slug].append(prefix)
    return {
        slug: (re.compile("|".join(_pattern(w) for w in sorted(ws, key=len, reverse=True))), bases[slug])
        for slug, ws in words.items()
    }
