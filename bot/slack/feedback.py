"""Feedback on Slack answers: one user's rating of one answer message, and the export of 👎 as a question set.

The ratings are kept by the `bot.slack.store.SlackStore`: one row per (channel, message_ts, user) — a
user's last click on a message wins (Slack's feedback buttons toggle without a "deselected" event) —
with the question, the earlier turns, the answer text and the cited section ids of the answer rated.
No Slack import here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..questions import Question

if TYPE_CHECKING:
    from .store import SlackStore

__all__ = ["VALUES", "FeedbackRow", "negative_questions"]

VALUES = ("good", "bad")


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One user's rating of one answer message."""

    channel: str
    message_ts: str
    user: str
    value: str
    answer_id: str | None
    question: str
    turns: tuple[str, ...]
    answer: str
    section_ids: tuple[str, ...]
    abstained: bool
    created: float
    updated: float


def negative_questions(store: SlackStore) -> list[Question]:
    """The 👎-rated answers as a question set for review (one question per message).

    Each is ``fb-<channel>-<message ts>`` tagged ``feedback``, ``negative`` and
    ``needs-review``, with ``turns`` from the thread. The expectation is a draft
    that a reviewer corrects: an answer that cited sections expects those
    sections (probably wrong — that is why it was rated down); an abstention is
    written as ``out_of_scope`` and tagged ``abstained`` (if the articles do
    cover it, the reviewer adds the right sections and removes ``out_of_scope``).
    Rows whose answer is no longer stored are skipped.
    """
    out: list[Question] = []
    seen: set[str] = set()
    for row in store.feedback(value="bad"):
        qid = f"fb-{row.channel}-{row.message_ts}"
        if qid in seen or not row.question.strip():
            continue
        seen.add(qid)
        tags = ["feedback", "negative", "needs-review"]
        if row.section_ids and not row.abstained:
            out.append(
                Question(
                    id=qid, question=row.question, expected_sections=row.section_ids, turns=row.turns, tags=tuple(tags)
                )
            )
        else:
            out.append(
                Question(id=qid, question=row.question, out_of_scope=True, turns=row.turns, tags=(*tags, "abstained"))
            )
    return out
