"""Slack messages and views from careerbot's data: answers, help, errors, the Home tab.

Every user-facing word comes from ``prompts/<ja|en>/slack_*.j2``; this module
only converts, escapes and fits the result within Slack's limits: no section
text over 3,000 characters, at most 50 blocks (100 in a Home view), about 12,000
characters of blocks in total, and a top-level ``text`` fallback of at most
3,000 characters. Longer content is split into sections, then cut with "…".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import yaml

from ..answer import Answer
from ..careers import career_title
from ..errors import TemplateError
from ..knowledge import Article
from ..prompts import PromptLibrary
from .mrkdwn import escape, link, markdown_to_mrkdwn, split_mrkdwn, truncate

__all__ = ["FEEDBACK_ACTION", "Renderer", "SlackMessage", "feedback_value", "parse_feedback_value"]

SECTION_LIMIT = 3000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
BLOCKS_TEXT_LIMIT = 12_000
FALLBACK_LIMIT = 3000
HEADER_LIMIT = 150
PROMPTS_MAX = 4
FEEDBACK_ACTION = "careerbot_feedback"

_URL_IN_LINE = re.compile(r"https?://[^\s）)（(、，,<>|]+")
_STRUCTURAL = re.compile(r"^\s*(?:\[\d+\]|[-*+•]\s|\d+[.)]\s|\*\*[^*]+\*\*)")
_LABEL_ONLY = re.compile(r"^\s*(?:\*\*[^*]+\*\*|__[^_]+__|#{1,6}\s+.+)\s*[:：]?\s*$")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What ``chat.postMessage`` (or ``respond``) takes: the fallback ``text`` and the ``blocks``."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def feedback_value(value: str, answer_id: str) -> str:
    """The button value carrying the rating and the stored answer's id: ``good:<id>`` / ``bad:<id>``."""
    return f"{value}:{answer_id}"


def parse_feedback_value(raw: str) -> tuple[str, str] | None:
    """``(value, answer_id)`` from a button value, None when it is not ours."""
    value, _, answer_id = (raw or "").partition(":")
    if value not in ("good", "bad") or not answer_id:
        return None
    return value, answer_id


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def strip_sources(markdown: str, urls: set[str]) -> str:
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


class Renderer:
    """Renders careerbot's Slack surfaces with the templates of one `PromptLibrary`."""

    def __init__(self, *, prompts: PromptLibrary, max_question_chars: int) -> None:
        self.prompts = prompts
        self.max_question_chars = max_question_chars
        self._labels: dict[str, dict[str, Any]] = {}

    # -- labels and plain texts -------------------------------------------------------------

    def labels(self, language: str) -> dict[str, Any]:
        """The short UI labels of ``slack_labels.yaml.j2`` for ``language``."""
        if language not in self._labels:
            self._labels[language] = _load_labels(self.prompts, language)
        return self._labels[language]

    def text(self, name: str, *, language: str, **variables: Any) -> SlackMessage:
        """A message made of one mrkdwn template (help, error, rate limit, thanks…), split into sections."""
        mrkdwn = self.prompts.render(name, language=language, **variables)
        return self._message(mrkdwn, language=language, extra=[])

    # -- answers ----------------------------------------------------------------------------

    def answer(self, answer: Answer, *, answer_id: str | None, cut: bool = False) -> SlackMessage:
        """An `Answer` as a message: the evidence, numbered source links, the confidence line, feedback buttons.

        The body is ``answer.text`` converted from Markdown with its source lines removed; the
        sources, suggestions and related careers are rendered from the structured fields.
        """
        lang = answer.language
        structured = (
            {c.url for c in answer.citations} | {s.url for s in answer.suggestions} | {r.url for r in answer.related}
        )
        body = markdown_to_mrkdwn(strip_sources(answer.text, structured))
        citations = [
            {"n": c.n, "link": link(c.url, f"{career_title(c.title)} › {c.breadcrumb}" if c.breadcrumb else c.title)}
            for c in answer.citations
        ]
        mrkdwn = self.prompts.render(
            "slack_answer.mrkdwn",
            language=lang,
            body=body,
            citations=citations,
            suggestions=[link(s.url, s.title) for s in answer.suggestions] if answer.abstained else [],
            related=[link(r.url, r.title) for r in answer.related],
            abstained=answer.abstained,
            cut=cut,
            max_chars=self.max_question_chars,
        )
        confidence = self.prompts.render(
            "slack_confidence.mrkdwn",
            language=lang,
            confident=answer.confident and not answer.abstained,
            abstained=answer.abstained,
            confidence=round(max(0.0, min(1.0, answer.retrieval.confidence)) * 100),
        )
        extra: list[dict[str, Any]] = [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": truncate(confidence, SECTION_LIMIT)}]}
        ]
        if answer_id:
            extra.append(self.feedback_block(answer_id, language=lang))
        return self._message(mrkdwn, language=lang, extra=extra)

    def draft(self, markdown: str, *, language: str) -> SlackMessage:
        """A streamed answer's draft (Markdown so far) as a plain placeholder message: the text only, in mrkdwn.

        No sources, confidence line or buttons: the final `answer` message replaces it.
        """
        return self._message(markdown_to_mrkdwn(markdown) or "…", language=language, extra=[])

    def feedback_block(self, answer_id: str, *, language: str) -> dict[str, Any]:
        """A ``context_actions`` block with 👍/👎 ``feedback_buttons`` (values ``good:<id>`` / ``bad:<id>``)."""
        labels = self.labels(language)
        return {
            "type": "context_actions",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": FEEDBACK_ACTION,
                    "positive_button": {
                        "text": {"type": "plain_text", "text": truncate(labels["feedback_good"], 75)},
                        "accessibility_label": labels["feedback_good_label"],
                        "value": feedback_value("good", answer_id),
                    },
                    "negative_button": {
                        "text": {"type": "plain_text", "text": truncate(labels["feedback_bad"], 75)},
                        "accessibility_label": labels["feedback_bad_label"],
                        "value": feedback_value("bad", answer_id),
                    },
                }
            ],
        }

    # -- the Home tab and suggested prompts ---------------------------------------------------

    def examples(self, articles: Sequence[Article], *, language: str = "ja") -> list[str]:
        """Example questions (``samples.md.j2``) for these articles."""
        names = [career_title(a.title) for a in articles]
        lines = self.prompts.render("samples.md", language=language, careers=names).splitlines()
        return [line.strip() for line in lines if line.strip()]

    def home(self, articles: Sequence[Article], *, base_url: str, language: str = "ja") -> dict[str, Any]:
        """The Home tab view: what the bot knows (an article list with links) and example questions."""
        rows = [
            {
                "link": link(f"{base_url}{a.slug}", a.title),
                "career": escape(career_title(a.title)),
                "sections": len(a.sections),
            }
            for a in articles
        ]
        mrkdwn = self.prompts.render(
            "slack_home.mrkdwn",
            language=language,
            articles=rows,
            examples=[escape(q) for q in self.examples(articles, language=language)],
            max_chars=self.max_question_chars,
        )
        header = {
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(self.labels(language)["home_header"], HEADER_LIMIT)},
        }
        sections = self._sections(mrkdwn, language=language, max_blocks=VIEW_BLOCKS - 1)
        return {"type": "home", "blocks": [header, *sections]}

    def suggested_prompts(
        self, articles: Sequence[Article], *, language: str = "ja"
    ) -> tuple[str, list[dict[str, str]]]:
        """``(title, prompts)`` for ``assistant.threads.setSuggestedPrompts`` (at most four prompts)."""
        prompts = [
            {"title": truncate(q, 75), "message": q} for q in self.examples(articles, language=language)[:PROMPTS_MAX]
        ]
        return self.labels(language)["prompts_title"], prompts

    # -- fitting within Slack's limits ----------------------------------------------------------

    def _sections(self, mrkdwn: str, *, language: str, max_blocks: int) -> list[dict[str, Any]]:
        chunks = split_mrkdwn(mrkdwn, limit=SECTION_LIMIT) or [" "]
        kept: list[str] = []
        total = 0
        cut = False
        for chunk in chunks:
            if len(kept) >= max_blocks or total + len(chunk) > BLOCKS_TEXT_LIMIT:
                cut = True
                room = BLOCKS_TEXT_LIMIT - total
                if len(kept) < max_blocks and room > 200:
                    kept.append(truncate(chunk, min(room, SECTION_LIMIT)))
                break
            kept.append(chunk)
            total += len(chunk)
        if cut:
            note = self.labels(language)["truncated"]
            last = kept[-1] if kept else ""
            kept[-1:] = [truncate(last, SECTION_LIMIT - len(note) - 1, marker="") + "\n" + escape(note)]
        return [_section(c) for c in kept]

    def _message(self, mrkdwn: str, *, language: str, extra: list[dict[str, Any]]) -> SlackMessage:
        sections = self._sections(mrkdwn, language=language, max_blocks=MESSAGE_BLOCKS - len(extra))
        return SlackMessage(text=truncate(mrkdwn, FALLBACK_LIMIT), blocks=[*sections, *extra])


_LABEL_KEYS = frozenset(
    {
        "feedback_good",
        "feedback_good_label",
        "feedback_bad",
        "feedback_bad_label",
        "status",
        "loading",
        "prompts_title",
        "home_header",
        "truncated",
    }
)


def _load_labels(prompts: PromptLibrary, language: str) -> dict[str, Any]:
    raw = prompts.render("slack_labels.yaml", language=language)
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise TemplateError(f"slack_labels.yaml.j2 ({language}): invalid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(data, dict) or not _LABEL_KEYS <= set(data):
        missing = sorted(_LABEL_KEYS - set(data)) if isinstance(data, dict) else sorted(_LABEL_KEYS)
        raise TemplateError(f"slack_labels.yaml.j2 ({language}): missing {', '.join(missing)}")
    return data
