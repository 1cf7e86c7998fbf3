"""The Slack app's state behind one interface: the inbox of accepted work, the dedup record, the answers and
feedback log, and per-user rate-limit counters. `SlackStore` is the contract; `SQLiteSlackStore` the embedded
implementation (one SQLite file, WAL). No Slack import here.

The inbox is what makes an acknowledgement a promise: a question is `accept`-ed (committed, fsync'd) before
Slack hears "200 OK", marked running when a worker `claim`-s it and `finish`-ed when answered. An item's id
(``slack:<channel>:<ts>``, ``slash:<channel>:<trigger id>``) and the event id it came with are both dedup keys
that outlive the process, so a Slack retry after a restart — or delivered to another replica — is recognised.

Several processes may share one store (PostgreSQL, `bot.slack.pg_store`): every unfinished item is *leased* to
one of them (its ``owner``) until ``lease_until``. `accept` leases the new item to the accepting process, `renew`
extends all of a process's leases, `claim` succeeds only for the holder (or when the lease has lapsed), and
`adopt` takes over the unfinished items whose holder stopped renewing (it died): so an item is worked on by
one process at a time and never left behind. `release` hands a stopping process's items back at once.
`expire` gives up on what is too old to be worth answering.

Item states::

    pending ──claim──► running ──finish──► done | failed | dropped
       └──────────────┴──expire──► expired
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from ..errors import ConfigError
from ..registry import Registry
from ..settings import Settings
from .feedback import VALUES, FeedbackRow

__all__ = [
    "FINAL_STATES",
    "KEEP_SECONDS",
    "FinalState",
    "SQLiteSlackStore",
    "STORES",
    "SlackStore",
    "WorkItem",
    "feedback_filter",
    "new_owner",
    "open_existing_store",
    "open_store",
]

log = logging.getLogger(__name__)

FinalState = Literal["done", "failed", "dropped"]
FINAL_STATES: tuple[FinalState, ...] = ("done", "failed", "dropped")
#: Finished items and seen keys are kept this long (Slack retries within minutes; a day is ample).
KEEP_SECONDS = 24 * 3600.0
#: The rate limit's sliding window.
WINDOW_SECONDS = 60.0
SCHEMA_VERSION = 3  # 1: answers and feedback only (before the inbox); 2: the inbox, without leases
#: How long an item stays leased to a process that stopped renewing (CAREERBOT_SLACK_LEASE_SECONDS).
DEFAULT_LEASE_SECONDS = 30.0

Clock = Callable[[], float]


def new_owner() -> str:
    """A name for this process as a lease holder: host, pid and a random part (unique across restarts)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A unit of accepted work: ``kind`` says how to do it, ``payload`` (JSON data) what it is about."""

    id: str
    kind: str
    payload: dict[str, Any]
    created: float
    state: str = "pending"
    attempts: int = 0


@runtime_checkable
class SlackStore(Protocol):
    """What the Slack app keeps. Every method is safe to call from many threads at once.

    Contract (the conformance suite in ``tests/slack/store_conformance.py`` checks it):

    - `accept` is atomic: of concurrent calls with one item id or event id exactly one wins — in this
      process or in any other sharing the database; both keys are remembered for `KEEP_SECONDS`, across
      restarts. It commits durably before returning, and so does `record_feedback`: the caller acknowledges
      Slack only afterwards. The new item is leased to this store's ``owner`` for ``lease_seconds``.
    - Of concurrent `claim` calls on one item (from any process) at most one gets an attempt number; the
      others get None while its lease is live. `adopt` takes only items no live lease holds.
    - `unfinished` returns the accepted items not yet finished (pending, or running when their process
      died), oldest first; `expire` moves those accepted before a time and held by no live lease to ``expired``.
    - `allow` counts a hit for a key unless it had ``per_minute`` hits in the last 60 seconds (counted
      across every process sharing the database).
    - ``durable`` is False for a stand-in kept in memory (the configured database could not be written);
      ``problem`` then says why, in one line.
    """

    @property
    def durable(self) -> bool: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def owner(self) -> str:
        """This process as a lease holder (see `new_owner`)."""
        ...

    def accept(self, item_id: str, *, kind: str, payload: Mapping[str, Any], event_id: str | None = None) -> bool:
        """Record new work, leased to this process; False (nothing recorded) when ``item_id`` or ``event_id`` was seen."""
        ...

    def claim(self, item_id: str) -> int | None:
        """Mark an item running for this process and lease it; its attempt number (1 the first time, more when
        resumed). None, changing nothing, when it is finished or another process's lease on it is live.
        `KeyError` when it was never accepted."""
        ...

    def renew(self) -> int:
        """Extend the leases of this process's unfinished items by ``lease_seconds``; how many."""
        ...

    def holds(self, item_id: str) -> bool:
        """Whether this process still holds the unfinished item (no other took it over), renewing its lease:
        asked just before an answer is posted, so that a process that stalled past its lease does not post
        what the process that took over will post."""
        ...

    def adopt(self, *, limit: int | None = None) -> list[WorkItem]:
        """Lease to this process (at most ``limit``, oldest first) the unfinished items that no live lease holds:
        those of a process that died or released them. Each is then `claim`-ed by this process's worker."""
        ...

    def release(self) -> int:
        """Give up this process's leases on its pending items (stopping: another process may adopt them now)."""
        ...

    def health(self) -> dict[str, Any]:
        """For ``/healthz``: ``{"backend": …, "up": bool, "schema_version": int | None}`` (+ ``error``); never raises."""
        ...

    def finish(self, item_id: str, state: FinalState) -> None:
        """Mark an item done, failed (nothing could be posted) or dropped (not answered on purpose)."""
        ...

    def unfinished(self) -> list[WorkItem]:
        """Pending and running items, oldest first."""
        ...

    def expire(self, *, before: float) -> int:
        """Give up on unfinished items accepted before ``before`` (a time.time() value); returns how many."""
        ...

    def allow(self, key: str, *, per_minute: int) -> bool:
        """Count a hit for ``key``; False (not counted) when it had ``per_minute`` in the last minute; 0: no limit."""
        ...

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
        """Store an answer about to be posted; returns its id (it rides in the feedback buttons)."""
        ...

    def record_feedback(self, *, answer_id: str, channel: str, message_ts: str, user: str, value: str) -> FeedbackRow:
        """Store ``user``'s rating of a message (``good``/``bad``); the user's later click on it replaces it."""
        ...

    def feedback(
        self,
        *,
        value: str | None = None,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> list[FeedbackRow]:
        """Stored ratings, oldest first, filtered by any of the arguments."""
        ...

    def prune(self) -> None:
        """Forget finished items and seen keys older than `KEEP_SECONDS`, and rate-limit hits past the window."""
        ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
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
CREATE TABLE IF NOT EXISTS inbox (
    id       TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    payload  TEXT NOT NULL,
    state    TEXT NOT NULL DEFAULT 'pending'
             CHECK (state IN ('pending', 'running', 'done', 'failed', 'dropped', 'expired')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created  REAL NOT NULL,
    updated  REAL NOT NULL,
    owner    TEXT,
    lease_until REAL
);
CREATE INDEX IF NOT EXISTS inbox_state ON inbox (state, created);
CREATE TABLE IF NOT EXISTS seen (key TEXT PRIMARY KEY, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rate_hits (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_hits_key ON rate_hits (key, at);
"""

_FEEDBACK_COLUMNS = (
    "channel, message_ts, user, value, answer_id, question, turns, answer, section_ids, abstained, created, updated"
)


class SQLiteSlackStore:
    """`SlackStore` in one SQLite file (WAL; commits before an acknowledgement are fsync'd), or in memory.

    ``path=None`` keeps everything in memory (``durable`` False, ``problem`` says why: pass ``problem``).
    Opening checks that the file can be written; `ConfigError` (naming CAREERBOT_FEEDBACK_DB) when not.
    The database of an older careerbot is upgraded in place.

    The file belongs to one process (the embedded default; several replicas share PostgreSQL instead), so
    opening it lets go of every lease a previous process held: its unfinished items can be adopted at once.
    """

    def __init__(
        self,
        *,
        path: Path | None,
        problem: str | None = None,
        clock: Clock = time.time,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        owner: str | None = None,
    ) -> None:
        self.path = path
        self._problem = problem if path is None else None
        self._clock = clock
        self.lease_seconds = lease_seconds
        self._owner = owner or new_owner()
        self._lock = threading.RLock()
        try:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                ":memory:" if path is None else path, timeout=30.0, check_same_thread=False, isolation_level=None
            )
            if path is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            with self._tx() as db:  # also proves that the file can be written
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                columns = {row[1] for row in db.execute("PRAGMA table_info(inbox)")}
                for column, kind in (("owner", "TEXT"), ("lease_until", "REAL")):
                    if column not in columns:  # an inbox of schema 2
                        db.execute(f"ALTER TABLE inbox ADD COLUMN {column} {kind}")
                db.execute("UPDATE inbox SET owner = NULL, lease_until = NULL WHERE state IN ('pending', 'running')")
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"CAREERBOT_FEEDBACK_DB: cannot write {path} ({exc})") from None

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return self.path is not None

    @property
    def problem(self) -> str | None:
        return self._problem

    @property
    def owner(self) -> str:
        return self._owner

    def health(self) -> dict[str, Any]:
        info: dict[str, Any] = {"backend": "sqlite" if self.durable else "memory", "up": True}
        try:
            rows = self._read("SELECT value FROM meta WHERE key = 'schema_version'")
            info["schema_version"] = int(rows[0][0]) if rows else None
        except sqlite3.Error as exc:
            info.update(up=False, schema_version=None, error=f"CAREERBOT_FEEDBACK_DB: {exc}")
        return info

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``durable``: fsync'd at commit (the caller acknowledges Slack afterwards)."""
        with self._lock:
            db = self._db
            if durable:
                db.execute("PRAGMA synchronous=FULL")
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            else:
                db.execute("COMMIT")
            finally:
                if durable:
                    db.execute("PRAGMA synchronous=NORMAL")

    def _read(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- the inbox and the dedup record -------------------------------------------------------------

    def accept(self, item_id: str, *, kind: str, payload: Mapping[str, Any], event_id: str | None = None) -> bool:
        now = self._clock()
        with self._tx(durable=True) as db:
            if event_id is not None and not _insert_seen(db, f"event:{event_id}", now):
                return False
            inserted = db.execute(
                "INSERT INTO inbox (id, kind, payload, created, updated, owner, lease_until) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (item_id, kind, json.dumps(dict(payload), ensure_ascii=False), now, now, self._owner,
                 now + self.lease_seconds),
            ).rowcount
            return inserted == 1

    def claim(self, item_id: str) -> int | None:
        now = self._clock()
        with self._tx() as db:
            claimed = db.execute(
                "UPDATE inbox SET state = 'running', attempts = attempts + 1, updated = ?, owner = ?, lease_until = ?"
                " WHERE id = ? AND state IN ('pending', 'running')"
                " AND (owner IS NULL OR owner = ? OR lease_until IS NULL OR lease_until < ?)",
                (now, self._owner, now + self.lease_seconds, item_id, self._owner, now),
            ).rowcount
            row = db.execute("SELECT attempts FROM inbox WHERE id = ?", (item_id,)).fetchone()
        if row is None:
            raise KeyError(item_id)
        return int(row[0]) if claimed else None

    def renew(self) -> int:
        now = self._clock()
        with self._tx() as db:
            return db.execute(
                "UPDATE inbox SET lease_until = ? WHERE owner = ? AND state IN ('pending', 'running')",
                (now + self.lease_seconds, self._owner),
            ).rowcount

    def holds(self, item_id: str) -> bool:
        with self._tx() as db:
            return db.execute(
                "UPDATE inbox SET lease_until = ? WHERE id = ? AND owner = ? AND state IN ('pending', 'running')",
                (self._clock() + self.lease_seconds, item_id, self._owner),
            ).rowcount == 1

    def adopt(self, *, limit: int | None = None) -> list[WorkItem]:
        now = self._clock()
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, kind, payload, created, state, attempts FROM inbox WHERE state IN ('pending', 'running')"
                " AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?) ORDER BY created, rowid LIMIT ?",
                (now, -1 if limit is None else max(0, limit)),
            ).fetchall()
            db.executemany(
                "UPDATE inbox SET owner = ?, lease_until = ? WHERE id = ?",
                [(self._owner, now + self.lease_seconds, r[0]) for r in rows],
            )
        return [_item(r) for r in rows]

    def release(self) -> int:
        with self._tx() as db:
            return db.execute(
                "UPDATE inbox SET owner = NULL, lease_until = NULL WHERE owner = ? AND state = 'pending'",
                (self._owner,),
            ).rowcount

    def finish(self, item_id: str, state: FinalState) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"state must be one of {FINAL_STATES}, not {state!r}")
        with self._tx() as db:
            db.execute("UPDATE inbox SET state = ?, updated = ? WHERE id = ?", (state, self._clock(), item_id))

    def unfinished(self) -> list[WorkItem]:
        rows = self._read(
            "SELECT id, kind, payload, created, state, attempts FROM inbox "
            "WHERE state IN ('pending', 'running') ORDER BY created, rowid"
        )
        return [_item(r) for r in rows]

    def expire(self, *, before: float) -> int:
        now = self._clock()
        with self._tx() as db:
            return db.execute(
                "UPDATE inbox SET state = 'expired', updated = ? WHERE state IN ('pending', 'running') AND created < ?"
                " AND (owner IS NULL OR lease_until IS NULL OR lease_until < ?)",
                (now, before, now),
            ).rowcount

    # -- rate limits --------------------------------------------------------------------------------

    def allow(self, key: str, *, per_minute: int) -> bool:
        if per_minute <= 0:
            return True
        now = self._clock()
        with self._tx() as db:
            db.execute("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (key, now - WINDOW_SECONDS))
            (hits,) = db.execute("SELECT count(*) FROM rate_hits WHERE key = ?", (key,)).fetchone()
            if hits >= per_minute:
                return False
            db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (key, now))
            return True

    # -- answers and feedback -----------------------------------------------------------------------

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
        answer_id = secrets.token_hex(8)
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (id, created, channel, thread_ts, user, question, turns, answer, section_ids,"
                " language, confident, abstained) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    self._clock(),
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
        if value not in VALUES:
            raise ValueError(f"feedback value must be one of {VALUES}, not {value!r}")
        now = self._clock()
        with self._tx(durable=True) as db:
            row = db.execute(
                "SELECT question, turns, answer, section_ids, abstained FROM answers WHERE id = ?", (answer_id,)
            ).fetchone()
            question, turns, answer, section_ids, abstained = row if row else ("", "[]", "", "[]", 0)
            db.execute(
                f"INSERT INTO feedback ({_FEEDBACK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, message_ts, user) DO UPDATE SET value = excluded.value,"
                " answer_id = excluded.answer_id, question = excluded.question, turns = excluded.turns,"
                " answer = excluded.answer, section_ids = excluded.section_ids, abstained = excluded.abstained,"
                " updated = excluded.updated",
                (channel, message_ts, user, value, answer_id, question, turns, answer, section_ids, abstained, now, now),
            )
        return self.feedback(channel=channel, message_ts=message_ts, user=user)[0]

    def feedback(
        self,
        *,
        value: str | None = None,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> list[FeedbackRow]:
        where, args = feedback_filter(
            {"value": value, "channel": channel, "message_ts": message_ts, "user": user}, placeholder="?"
        )
        sql = f"SELECT {_FEEDBACK_COLUMNS} FROM feedback{where}"
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
            for r in self._read(sql + " ORDER BY created, id", args)
        ]

    # -- housekeeping -------------------------------------------------------------------------------

    def prune(self) -> None:
        now = self._clock()
        with self._tx() as db:
            db.execute(
                "DELETE FROM inbox WHERE state NOT IN ('pending', 'running') AND updated < ?", (now - KEEP_SECONDS,)
            )
            db.execute("DELETE FROM seen WHERE at < ?", (now - KEEP_SECONDS,))
            db.execute("DELETE FROM rate_hits WHERE at <= ?", (now - WINDOW_SECONDS,))

    def close(self) -> None:
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass


def _item(r: Sequence[Any]) -> WorkItem:
    payload = r[2] if isinstance(r[2], dict) else json.loads(r[2])
    return WorkItem(id=r[0], kind=r[1], payload=payload, created=r[3], state=r[4], attempts=r[5])


def feedback_filter(wanted: Mapping[str, str | None], *, placeholder: str) -> tuple[str, list[str]]:
    """The ``WHERE`` clause (with a leading space, or empty) and its arguments for the columns asked for:
    ``wanted`` maps a column to the value it must have, None for any."""
    given = {column: value for column, value in wanted.items() if value is not None}
    if not given:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = {placeholder}" for column in given), list(given.values())


def _insert_seen(db: sqlite3.Connection, key: str, now: float) -> bool:
    return db.execute("INSERT INTO seen (key, at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, now)).rowcount == 1


#: Store factories by the scheme of CAREERBOT_DATABASE_URL: ``factory(settings, url, existing=…) -> SlackStore``.
#: ``existing``: open a database that must already exist (e.g. ``careerbot feedback export``), never create one.
STORES: Registry[Callable[..., SlackStore]] = Registry(
    kind="database scheme", group="careerbot.stores", setting="CAREERBOT_DATABASE_URL"
)


def _sqlite_factory(settings: Settings, url: str | None, *, existing: bool = False) -> SlackStore:
    path = settings.feedback_path
    if url:
        rest = url.split("://", 1)[1]
        if not rest.startswith("/") or rest == "/":
            raise ConfigError("CAREERBOT_DATABASE_URL: a SQLite URL names a file: sqlite:///path/to/file.sqlite3")
        path = Path(rest[1:] if rest.startswith("//") else rest)
    if existing and not path.is_file():
        raise ConfigError(f"CAREERBOT_FEEDBACK_DB: no feedback database at {path}")
    return SQLiteSlackStore(path=path, lease_seconds=settings.slack_lease_seconds)


def _postgres_factory(settings: Settings, url: str | None, *, existing: bool = False) -> SlackStore:
    from .pg_store import PostgresSlackStore  # psycopg is imported only when PostgreSQL is configured

    assert url is not None
    return PostgresSlackStore(
        url=url,
        pool_size=settings.database_pool_size,
        connect_timeout=settings.database_connect_timeout,
        lease_seconds=settings.slack_lease_seconds,
    )


STORES.register("sqlite", _sqlite_factory)
STORES.register("postgresql", _postgres_factory)
STORES.register("postgres", _postgres_factory)


def _configured(settings: Settings) -> tuple[str, str | None]:
    url = settings.database_url.get_secret_value().strip() if settings.database_url else None
    return (url.partition("://")[0].lower() if url else "sqlite"), url


def open_existing_store(settings: Settings) -> SlackStore:
    """The configured store for a command that reads it (``careerbot feedback export``): PostgreSQL at
    CAREERBOT_DATABASE_URL (migrated), else the SQLite file, which must exist. `ConfigError` when it cannot be opened."""
    scheme, url = _configured(settings)
    return STORES.get(scheme)(settings, url, existing=True)


def open_store(settings: Settings) -> SlackStore:
    """The store ``careerbot slack`` uses: PostgreSQL when CAREERBOT_DATABASE_URL says so (migrations applied;
    `ConfigError` naming the setting when it is unreachable or its schema is newer than this careerbot), else
    SQLite at CAREERBOT_FEEDBACK_DB (default ``<data_dir>/feedback.sqlite3``).

    When the SQLite file cannot be written (a read-only data dir), the bot still answers: from an in-memory
    stand-in whose ``problem`` says why (feedback buttons are then left out, and work is not kept across restarts).
    A PostgreSQL database that cannot be used is an error instead: replicas must not silently split their state.
    """
    scheme, url = _configured(settings)
    if scheme != "sqlite":
        return STORES.get(scheme)(settings, url)
    try:
        return STORES.get(scheme)(settings, url)
    except ConfigError as exc:
        problem = f"{exc}; questions are not kept across restarts and answers have no feedback buttons"
        log.warning("%s", problem)
        return SQLiteSlackStore(path=None, problem=problem, lease_seconds=settings.slack_lease_seconds)
