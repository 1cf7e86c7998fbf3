"""The durable store of Slack answers and feedback clicks (SQLite, WAL), and the export of 👎 as a question set.

Two tables. ``answers``: one row per answer posted (its id rides in the feedback
buttons' value), with the question, the earlier turns, the answer text and the
cited section ids. ``feedback``: one row per (channel, message_ts, user) — a
user's last click on a message wins (Slack's feedback buttons toggle without a
"deselected" event). Each thread gets its own connection; no Slack import here.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..questions import Question

__all__ = ["FeedbackRow", "FeedbackStore", "negative_questions"]

VALUES = ("good", "bad")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    id          TEXT PRIMARY KEY,
    created     REAL NOT NULL,
    channel     TEXT NOT NULL,
    thread_ts   TEXT,
    user        TEXT,
    question    TEXT NOT NULL,
    turns       TEXT NOT NULL DEFAULT '[]',
    answer      TEXT NOT NULL,
    section_ids TEXT NOT NULL DEFAULT '[]',
    language    TEXT,
    confident   INTEGER,
    abstained   INTEGER
);
CREATE TABLE IF NOT EXISTS feedback (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    message_ts  TEXT NOT NULL,
    user        TEXT NOT NULL,
    value       TEXT NOT NULL CHECK (value IN ('good', 'bad')),
    answer_id   TEXT,
    question    TEXT NOT NULL,
    turns       TEXT NOT NULL DEFAULT '[]',
    answer      TEXT NOT NULL,
    section_ids TEXT NOT NULL DEFAULT '[]',
    abstained   INTEGER NOT NULL DEFAULT 0,
    created     REAL NOT NULL,
    updated     REAL NOT NULL,
    UNIQUE (channel, message_ts, user)
);
CREATE INDEX IF NOT EXISTS feedback_value ON feedback (value);
"""


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


class FeedbackStore:
    """SQLite at ``path`` (created with its folder); safe to use from many threads at once."""

    def __init__(self, *, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db().executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"CAREERBOT_FEEDBACK_DB: cannot open {path} ({exc})") from exc

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def record_answer(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        user: str | None,
        question: str,
        turns: Sequence[str],
        answer: str,
        section_ids: Sequence[str],
        language: str,
        confident: bool,
        abstained: bool,
    ) -> str:
        """Store an answer about to be posted; returns its id (for the feedback buttons)."""
        answer_id = secrets.token_hex(8)
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (id, created, channel, thread_ts, user, question, turns, answer, section_ids,"
                " language, confident, abstained) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    time.time(),
                    channel,
                    thread_ts,
                    user,
                    question,
                    json.dumps(list(turns), ensure_ascii=False),
                    answer,
                    json.dumps(list(section_ids), ensure_ascii=False),
                    language,
                    int(confident),
                    int(abstained),
                ),
            )
        return answer_id

    def record_feedback(self, *, answer_id: str, channel: str, message_ts: str, user: str, value: str) -> FeedbackRow:
        """Store ``user``'s rating of a message; a later click of the same user on the same message replaces it."""
        if value not in VALUES:
            raise ValueError(f"feedback value must be one of {VALUES}, not {value!r}")
        now = time.time()
        with self._tx() as db:
            row = db.execute(
                "SELECT question, turns, answer, section_ids, abstained FROM answers WHERE id = ?", (answer_id,)
            ).fetchone()
            question, turns, answer, section_ids, abstained = row if row else ("", "[]", "", "[]", 0)
            db.execute(
                "INSERT INTO feedback (channel, message_ts, user, value, answer_id, question, turns, answer,"
                " section_ids, abstained, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, message_ts, user) DO UPDATE SET value = excluded.value,"
                " answer_id = excluded.answer_id, question = excluded.question, turns = excluded.turns,"
                " answer = excluded.answer, section_ids = excluded.section_ids, abstained = excluded.abstained,"
                " updated = excluded.updated",
                (
                    channel,
                    message_ts,
                    user,
                    value,
                    answer_id,
                    question,
                    turns,
                    answer,
                    section_ids,
                    abstained,
                    now,
                    now,
                ),
            )
        rows = self.feedback(channel=channel, message_ts=message_ts, user=user)
        return rows[0]

    def feedback(
        self,
        *,
        value: str | None = None,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> list[FeedbackRow]:
        """Stored ratings, oldest first, filtered by any of the arguments."""
        where, args = [], []
        for column, wanted in (("value", value), ("channel", channel), ("message_ts", message_ts), ("user", user)):
            if wanted is not None:
                where.append(f"{column} = ?")
                args.append(wanted)
        sql = (
            "SELECT channel, message_ts, user, value, answer_id, question, turns, answer, section_ids, abstained,"
            " created, updated FROM feedback"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self._db().execute(sql + " ORDER BY created, id", args).fetchall()
        return [
            FeedbackRow(
                channel=r[0],
                message_ts=r[1],
                user=r[2],
                value=r[3],
                answer_id=r[4],
                question=r[5],
                turns=tuple(json.loads(r[6])),
                answer=r[7],
                section_ids=tuple(json.loads(r[8])),
                abstained=bool(r[9]),
                created=r[10],
                updated=r[11],
            )
            for r in rows
        ]

    def close(self) -> None:
        """Close every thread's connection."""
        with self._lock:
            for db in self._connections:
                try:
                    db.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
        self._local = threading.local()


def negative_questions(store: FeedbackStore) -> list[Question]:
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
