"""Slack messages and views from careerbot's data: answers, help, errors, the Home tab.

Every user-facing word comes from ``prompts/<ja|en>/slack_*.j2``; this module
only converts, escapes and fits the result within Slack's limits: no section
text over 3,000 characters, at most 50 blocks (100 in a Home view), about 12,000
characters of blocks in total, and a top-level ``text`` fallback of at most
3,000 characters. Longer content is split into sections, then cut with "…".
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..answer import Answer
from ..careers import career_title
from ..errors import TemplateError
from ..knowledge import Article
from ..prompts import PromptLibrary
from .mrkdwn import escape, link, markdown_to_mrkdwn, split_mrkdwn, truncate

__all__ = [
    "FEEDBACK_ACTION",
    "PICK_ACTION",
    "Renderer",
    "SlackMessage",
    "feedback_value",
    "parse_feedback_value",
    "parse_pick_value",
    "pick_value",
]

SECTION_LIMIT = 3000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
BLOCKS_TEXT_LIMIT = 12_000
FALLBACK_LIMIT = 3000
HEADER_LIMIT = 150
PROMPTS_MAX = 4
FEEDBACK_ACTION = "careerbot_feedback"
#: Buttons under an answer that several careers answer equally: one per career (action ids ``…:<n>``).
PICK_ACTION = "careerbot_pick_career"
#: Slack's limit for a button value is 2,000 characters; the question is cut to fit.
_PICK_QUESTION_CHARS = 1800



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


def pick_value(slug: str, question: str) -> str:
    """A career button's value: the career and the question it answers again for that career."""
    return json.dumps({"career": slug, "question": question[:_PICK_QUESTION_CHARS]}, ensure_ascii=False)


def parse_pick_value(raw: str) -> tuple[str, str] | None:
    """``(slug, question)`` from a career button's value, None when it is not ours."""
    try:
        data = json.loads(raw or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("career"), str) or not isinstance(data.get("question"), str):
        return None
    return (data["career"], data["question"]) if data["career"] and data["question"].strip() else None


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


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

    def answer(
        self,
        answer: Answer,
        *,
        answer_id: str | None,
        cut: bool = False,
        career_names: Mapping[str, str] | None = None,
    ) -> SlackMessage:
        """An `Answer` as a message: the evidence, numbered source links, the confidence line, feedback buttons.

        The body is ``answer.text`` converted from Markdown with its source lines removed; the
        sources, suggestions and related careers are rendered from the structured fields. An answer that
        several careers answer equally (``answer.choices``) gets one button per career (``career_names``:
        slug → name), which answers the question again for that career in full.
        """
        lang = answer.language
        body = markdown_to_mrkdwn(answer.body)
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
        if answer.choices and not answer.abstained:
            extra.insert(0, self.choices_block(answer, names=career_names or {}))
        if answer_id:
            extra.append(self.feedback_block(answer_id, language=lang))
        return self._message(mrkdwn, language=lang, extra=extra)

    def draft(self, markdown: str, *, language: str) -> SlackMessage:
        """A streamed answer's draft (Markdown so far) as a plain placeholder message: the text only, in mrkdwn.

        No sources, confidence line or buttons: the final `answer` message replaces it.
        """
        return self._message(markdown_to_mrkdwn(markdown) or "…", language=language, extra=[])

    def choices_block(self, answer: Answer, *, names: Mapping[str, str]) -> dict[str, Any]:
        """An ``actions`` block: a button per career of ``answer.choices`` (at most five), each asking again."""
        label = self.labels(answer.language)["choose_career"]
        return {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": f"{PICK_ACTION}:{i}",
                    "text": {"type": "plain_text", "text": truncate(label.format(career=names.get(slug, slug)), 75)},
                    "value": pick_value(slug, answer.question),
                }
                for i, slug in enumerate(answer.choices[:5])
            ],
        }

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
        "choose_career",
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
