"""Question sets: the shipped ones under ``knowledge/questions/`` (``dev/`` to tune on, ``test/`` frozen), the
eval's input, the feedback export's output.

A set is JSONL (one object a line) or YAML (a list of objects). Each item:
``id``, ``question``, optional ``expected_sections`` (ids ``slug#anchor`` or
section headings), optional ``expected_text`` (strings; one must appear in a
retrieved passage), optional ``expected_articles`` (slugs every one of which
must be cited), ``out_of_scope`` (bool, default false), optional ``turns``
(earlier user turns, oldest first) and ``tags``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import CareerbotError
from .knowledge import KnowledgeBase
from .text import normalize, strip_decorations

__all__ = [
    "QUESTION_SUFFIXES",
    "Question",
    "QuestionSetError",
    "Resolution",
    "load_labelled_question_sets",
    "load_question_set",
    "load_question_sets",
    "question_files",
    "resolve_sections",
    "write_jsonl",
]

QUESTION_SUFFIXES = (".jsonl", ".yaml", ".yml")


class QuestionSetError(CareerbotError):
    """A question set is malformed; the message names the file, the item and the field."""


class Question(BaseModel):
    """One question of a set (see the module docstring for the fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    question: str = Field(min_length=1)
    expected_sections: tuple[str, ...] = ()
    expected_text: tuple[str, ...] = ()
    expected_articles: tuple[str, ...] = ()
    out_of_scope: bool = False
    turns: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_expectation(self) -> Question:
        if not self.question.strip():
            raise ValueError("question: is blank")
        for name in ("expected_sections", "expected_text", "expected_articles", "turns", "tags"):
            if any(not v.strip() for v in getattr(self, name)):
                raise ValueError(f"{name}: contains a blank string")
        if not self.out_of_scope and not (self.expected_sections or self.expected_text):
            raise ValueError("an in-scope question needs expected_sections or expected_text")
        if self.out_of_scope and (self.expected_sections or self.expected_text):
            raise ValueError("an out_of_scope question cannot expect sections or text")
        return self


def _items(path: Path) -> list[tuple[str, object]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionSetError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from exc
    if path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise QuestionSetError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from exc
        if data is None:
            return []
        if not isinstance(data, list):
            raise QuestionSetError(f"{path}: a YAML question set must be a list of questions")
        return [(f"item {i}", item) for i, item in enumerate(data, 1)]
    if path.suffix != ".jsonl":
        raise QuestionSetError(f"{path}: unknown question set format (use .jsonl, .yaml or .yml)")
    items: list[tuple[str, object]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append((f"line {lineno}", json.loads(line)))
        except json.JSONDecodeError as exc:
            raise QuestionSetError(f"{path}: line {lineno}: invalid JSON ({exc.msg})") from exc
    return items


def _describe(exc: ValidationError) -> str:
    """``field: what is wrong`` for the first error, on one line."""
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = f"unknown field (known: {', '.join(Question.model_fields)})"
    elif err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] in ("tuple_type", "list_type"):
        msg = "should be a list of strings"
    if not field:  # a check across fields names its field in the message
        return " ".join(msg.splitlines())
    return f"{field}: " + " ".join(msg.splitlines())


def load_question_set(path: Path) -> list[Question]:
    """Read and validate one set; raises `QuestionSetError` naming file, item and field."""
    questions: list[Question] = []
    seen: set[str] = set()
    for where, item in _items(path):
        if not isinstance(item, dict):
            raise QuestionSetError(f"{path}: {where}: a question must be an object")
        label = f"{where} (id {item['id']!r})" if isinstance(item.get("id"), str) else where
        try:
            q = Question.model_validate(item)
        except ValidationError as exc:
            raise QuestionSetError(f"{path}: {label}: {_describe(exc)}") from None
        if q.id in seen:
            raise QuestionSetError(f"{path}: {label}: duplicate id {q.id!r}")
        seen.add(q.id)
        questions.append(q)
    return questions


def question_files(paths: Iterable[Path]) -> list[Path]:
    """The set files ``paths`` stand for: a folder stands for the *.jsonl/*.yaml/*.yml files in it and its
    subfolders (sorted by path), so ``knowledge/questions`` is both splits, ``knowledge/questions/dev`` one.

    A file named twice (directly or through its folder) is read once; a missing
    path or a folder without sets raises `QuestionSetError`.
    """
    files: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in QUESTION_SUFFIXES)
            if not found:
                raise QuestionSetError(f"{p}: no question sets (*.jsonl, *.yaml, *.yml) in this folder")
        elif p.exists():
            found = [p]
        else:
            raise QuestionSetError(f"{p}: no such file or folder")
        for f in found:
            if (key := f.resolve()) not in seen:
                seen.add(key)
                files.append(f)
    return files


def load_labelled_question_sets(paths: Iterable[Path]) -> list[tuple[Path, Question]]:
    """Like `load_question_sets`, each question with the file it came from."""
    out: list[tuple[Path, Question]] = []
    owner: dict[str, Path] = {}
    for f in question_files(paths):
        for q in load_question_set(f):
            if q.id in owner:
                raise QuestionSetError(f"{f}: id {q.id!r} is also used in {owner[q.id]}")
            owner[q.id] = f
            out.append((f, q))
    return out


def load_question_sets(paths: Iterable[Path]) -> list[Question]:
    """Several sets (folders stand for their *.jsonl/*.yaml files); ids must be unique across them."""
    return [q for _, q in load_labelled_question_sets(paths)]


@dataclass(frozen=True, slots=True)
class Resolution:
    """Expected section ids per question, and the expectations that name no section.

    ``articles`` maps a question id to the slug of its first resolvable expected
    section (a heading shared by several articles gives the first slug in sort
    order); ``unknown_articles`` lists ``expected_articles`` slugs the knowledge
    base does not hold.
    """

    sections: dict[str, frozenset[str]]
    unknown: dict[str, tuple[str, ...]]
    articles: dict[str, str] = field(default_factory=dict)
    unknown_articles: dict[str, tuple[str, ...]] = field(default_factory=dict)


def resolve_sections(questions: Iterable[Question], kb: KnowledgeBase) -> Resolution:
    """Map each ``expected_sections`` entry (an id or a heading) to section ids; collect unknown ones."""
    by_id = {s.id: s for s in kb.sections}
    by_heading: dict[str, set[str]] = {}
    for s in kb.sections:
        by_heading.setdefault(normalize(strip_decorations(s.heading)).strip(), set()).add(s.id)
    slugs = {a.slug for a in kb.articles}
    sections: dict[str, frozenset[str]] = {}
    unknown: dict[str, tuple[str, ...]] = {}
    articles: dict[str, str] = {}
    unknown_articles: dict[str, tuple[str, ...]] = {}
    for q in questions:
        ids: set[str] = set()
        missing: list[str] = []
        for ref in q.expected_sections:
            if ref in by_id:
                found = {ref}
            elif (key := normalize(strip_decorations(ref)).strip()) in by_heading:
                found = by_heading[key]
            else:
                missing.append(ref)
                continue
            if q.id not in articles:
                articles[q.id] = min(by_id[i].slug for i in found)
            ids |= found
        sections[q.id] = frozenset(ids)
        if missing:
            unknown[q.id] = tuple(missing)
        if bad := tuple(a for a in q.expected_articles if a not in slugs):
            unknown_articles[q.id] = bad
    return Resolution(sections=sections, unknown=unknown, articles=articles, unknown_articles=unknown_articles)


def write_jsonl(path: Path, questions: Iterable[Question]) -> None:
    """Write a set atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.model_dump(exclude_defaults=True), ensure_ascii=False) + "\n")
    tmp.replace(path)
