"""Question sets: the shipped ones under ``knowledge/questions/``, the eval's input, the feedback export's output.

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
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import CareerbotError
from .knowledge import KnowledgeBase
from .text import normalize, strip_decorations

__all__ = ["Question", "QuestionSetError", "load_question_set", "load_question_sets", "resolve_sections", "write_jsonl"]


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
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "item"
            raise QuestionSetError(f"{path}: {label}: {field}: {err['msg']}") from None
        if q.id in seen:
            raise QuestionSetError(f"{path}: {label}: duplicate id {q.id!r}")
        seen.add(q.id)
        questions.append(q)
    return questions


def load_question_sets(paths: Iterable[Path]) -> list[Question]:
    """Several sets (folders stand for their *.jsonl/*.yaml files); ids must be unique across them."""
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in (".jsonl", ".yaml", ".yml")))
        else:
            files.append(p)
    out: list[Question] = []
    owner: dict[str, Path] = {}
    for f in files:
        for q in load_question_set(f):
            if q.id in owner:
                raise QuestionSetError(f"{f}: id {q.id!r} is also used in {owner[q.id]}")
            owner[q.id] = f
            out.append(q)
    return out


@dataclass(frozen=True, slots=True)
class Resolution:
    """Expected section ids per question, and the expectations that name no section."""

    sections: dict[str, frozenset[str]]
    unknown: dict[str, tuple[str, ...]]


def resolve_sections(questions: Iterable[Question], kb: KnowledgeBase) -> Resolution:
    """Map each ``expected_sections`` entry (an id or a heading) to section ids; collect unknown ones."""
    by_id = {s.id: s for s in kb.sections}
    by_heading: dict[str, set[str]] = {}
    for s in kb.sections:
        by_heading.setdefault(normalize(strip_decorations(s.heading)).strip(), set()).add(s.id)
    sections: dict[str, frozenset[str]] = {}
    unknown: dict[str, tuple[str, ...]] = {}
    for q in questions:
        ids: set[str] = set()
        missing: list[str] = []
        for ref in q.expected_sections:
            if ref in by_id:
                ids.add(ref)
            elif (key := normalize(strip_decorations(ref)).strip()) in by_heading:
                ids |= by_heading[key]
            else:
                missing.append(ref)
        sections[q.id] = frozenset(ids)
        if missing:
            unknown[q.id] = tuple(missing)
    return Resolution(sections=sections, unknown=unknown)


def write_jsonl(path: Path, questions: Iterable[Question]) -> None:
    """Write a set atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q.model_dump(exclude_defaults=True), ensure_ascii=False) + "\n")
    tmp.replace(path)
