"""`PostgresSlackStore`: the `SlackStore` in PostgreSQL, shared by every replica of the Slack app.

Chosen by ``CAREERBOT_DATABASE_URL=postgresql://…`` (see `bot.slack.store.open_store`). psycopg 3 with a
connection pool (psycopg_pool); connections run in autocommit, and what must be atomic is one statement or
one explicit transaction, so most calls are a single round trip.

Durability as in the SQLite store: what is acknowledged to Slack afterwards — `accept`, `record_feedback` —
waits for the WAL flush (``synchronous_commit = on``); the rest (claims, leases, finishing, rate-limit hits,
the answers log) commits without waiting for it (``off``: a crash of the *database server* may forget the last
fraction of a second of those, never corrupts anything, and each is recovered from — an item not marked done
is answered again only after its thread is checked for the answer).

Sharing work between replicas:

- **Dedup**: the item id and the event id are primary keys (``inbox.id``, ``seen.key``); ``INSERT … ON
  CONFLICT DO NOTHING`` lets exactly one replica accept an event, whichever received it.
- **Leases**: an item is leased (``owner``, ``lease_until``) to the replica that accepted it; `claim` is an
  ``UPDATE`` that only the holder (or anyone, once the lease lapsed) gets a row from; `adopt` takes lapsed
  items with ``SELECT … FOR UPDATE SKIP LOCKED``, so two sweeping replicas never take the same item.
- **Rate limits**: one transaction per hit under ``pg_advisory_xact_lock`` on the key, so the count is exact
  across replicas.

The schema is versioned (`MIGRATIONS`, table ``schema_migrations``): `migrate` applies what is missing under
``pg_advisory_lock``, so replicas starting together apply each migration once; a database whose schema is newer
than this code is refused. Every error that reaches an operator names CAREERBOT_DATABASE_URL and never shows
its password (`bot.logs.redact`).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import ConfigError
from ..logs import redact
from .feedback import VALUES, FeedbackRow
from .store import (
    DEFAULT_LEASE_SECONDS,
    FINAL_STATES,
    KEEP_SECONDS,
    WINDOW_SECONDS,
    Clock,
    FinalState,
    WorkItem,
    feedback_filter,
    new_owner,
)

__all__ = ["MIGRATIONS", "CopyReport", "PostgresSlackStore", "copy_from_sqlite", "migrate", "schema_version"]

log = logging.getLogger(__name__)

SETTING = "CAREERBOT_DATABASE_URL"
#: pg_advisory_lock keys (class, object): migrations, and the rate limit of one key.
_LOCK_CLASS = 0x0CB0
_MIGRATION_LOCK = 1
_RATE_LOCK_CLASS = 0x0CB1
#: ``/healthz`` asks the database at most this often.
HEALTH_CACHE_SECONDS = 5.0

#: (version, what it does, SQL). Append only: a released migration is never edited.
MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "answers and feedback",
        """
        CREATE TABLE answers (
            id          text PRIMARY KEY,
            created     double precision NOT NULL,
            channel     text NOT NULL,
            thread_ts   text,
            user_id     text,
            question    text NOT NULL,
            turns       jsonb NOT NULL DEFAULT '[]',
            answer      text NOT NULL,
            section_ids jsonb NOT NULL DEFAULT '[]',
            language    text,
            confident   boolean,
            abstained   boolean
        );
        CREATE TABLE feedback (
            id          bigserial PRIMARY KEY,
            channel     text NOT NULL,
            message_ts  text NOT NULL,
            user_id     text NOT NULL,
            value       text NOT NULL CHECK (value IN ('good', 'bad')),
            answer_id   text,
            question    text NOT NULL,
            turns       jsonb NOT NULL DEFAULT '[]',
            answer      text NOT NULL,
            section_ids jsonb NOT NULL DEFAULT '[]',
            abstained   boolean NOT NULL DEFAULT false,
            created     double precision NOT NULL,
            updated     double precision NOT NULL,
            UNIQUE (channel, message_ts, user_id)
        );
        CREATE INDEX feedback_value ON feedback (value);
        """,
    ),
    (
        2,
        "the inbox with leases, dedup keys and rate-limit hits",
        """
        CREATE TABLE inbox (
            id          text PRIMARY KEY,
            kind        text NOT NULL,
            payload     jsonb NOT NULL,
            state       text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'running', 'done', 'failed', 'dropped', 'expired')),
            attempts    integer NOT NULL DEFAULT 0,
            created     double precision NOT NULL,
            updated     double precision NOT NULL,
            owner       text,
            lease_until double precision
        );
        CREATE INDEX inbox_open ON inbox (created) WHERE state IN ('pending', 'running');
        CREATE INDEX inbox_owner ON inbox (owner) WHERE state IN ('pending', 'running');
        CREATE INDEX inbox_finished ON inbox (updated) WHERE state NOT IN ('pending', 'running');
        CREATE TABLE seen (key text PRIMARY KEY, at double precision NOT NULL);
        CREATE INDEX seen_at ON seen (at);
        CREATE TABLE rate_hits (key text NOT NULL, at double precision NOT NULL);
        CREATE INDEX rate_hits_key ON rate_hits (key, at);
        """,
    ),
)
LATEST = MIGRATIONS[-1][0]

_FEEDBACK_COLUMNS = (
    "channel, message_ts, user_id, value, answer_id, question, turns, answer, section_ids, abstained, created, updated"
)


def _shown(url: str) -> str:
    """The URL fit for a message: the password redacted."""
    return redact(url)


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return redact(lines[0] if lines else exc.__class__.__name__)


def unreachable(url: str, exc: BaseException) -> ConfigError:
    """The one-line error for a database that cannot be reached or used."""
    return ConfigError(f"{SETTING}: cannot use the database at {_shown(url)} ({_reason(exc)})")


def _connect(url: str, *, connect_timeout: float) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(
            url, autocommit=True, connect_timeout=max(1, round(connect_timeout)), application_name="careerbot"
        )
    except psycopg.Error as exc:
        raise unreachable(url, exc) from None


def _version(conn: psycopg.Connection[Any]) -> int:
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def schema_version(url: str, *, connect_timeout: float = 10.0) -> int:
    """The schema version of the database at ``url`` (0: none yet); `ConfigError` when unreachable."""
    with _connect(url, connect_timeout=connect_timeout) as conn:
        try:
            return _version(conn)
        except psycopg.Error as exc:
            raise unreachable(url, exc) from None


def migrate(url: str, *, connect_timeout: float = 10.0) -> tuple[int, list[int]]:
    """Bring the database at ``url`` to `LATEST`; (the version now, the versions applied by this call).

    Safe when several processes call it at once: they take turns under ``pg_advisory_lock``, and each
    migration is applied once, in its own transaction. `ConfigError` naming CAREERBOT_DATABASE_URL when the
    database is unreachable, a migration fails, or the schema is newer than this careerbot knows.
    """
    applied: list[int] = []
    with _connect(url, connect_timeout=connect_timeout) as conn:
        try:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (_LOCK_CLASS, _MIGRATION_LOCK))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())"
                )
                current = _version(conn)
                if current > LATEST:
                    raise ConfigError(
                        f"{SETTING}: the database at {_shown(url)} has schema version {current}, newer than this "
                        f"careerbot knows ({LATEST}); run the careerbot version that upgraded it, or a newer one"
                    )
                for version, name, sql in MIGRATIONS:
                    if version <= current:
                        continue
                    with conn.transaction():
                        conn.execute(sql)
                        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
                    applied.append(version)
                    log.info("database schema upgraded to version %d (%s)", version, name)
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, _MIGRATION_LOCK))
        except psycopg.Error as exc:
            raise unreachable(url, exc) from None
    return max([current, *applied]), applied


class PostgresSlackStore:
    """`SlackStore` in PostgreSQL at ``url`` (a ``postgresql://`` URL), through a pool of ``pool_size`` connections.

    Opening connects (within ``connect_timeout`` seconds) and applies the missing migrations (``migrate=False``:
    only checks that the schema is the one this code knows). `ConfigError` naming CAREERBOT_DATABASE_URL, with
    the password redacted, when that fails. ``clock`` is "now" for every row written (tests move it).
    """

    def __init__(
        self,
        *,
        url: str,
        pool_size: int = 10,
        connect_timeout: float = 10.0,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Clock = time.time,
        owner: str | None = None,
        migrate_schema: bool = True,
    ) -> None:
        self.url = url
        self.lease_seconds = lease_seconds
        self._clock = clock
        self._owner = owner or new_owner()
        self._connect_timeout = connect_timeout
        if migrate_schema:
            self._schema, _ = migrate(url, connect_timeout=connect_timeout)
        else:
            self._schema = schema_version(url, connect_timeout=connect_timeout)
            if self._schema != LATEST:
                raise ConfigError(
                    f"{SETTING}: the database at {_shown(url)} has schema version {self._schema}, this careerbot "
                    f"needs {LATEST}: run `careerbot db upgrade`"
                )
        self._pool = ConnectionPool(
            conninfo=url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "application_name": "careerbot",
                    "connect_timeout": max(1, round(connect_timeout)), "options": "-c synchronous_commit=off"},
            timeout=connect_timeout,
            name="careerbot",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            self._pool.close()
            raise unreachable(url, exc) from None
        self._health: tuple[float, dict[str, Any]] | None = None
        self._health_lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def durable(self) -> bool:
        return True

    @property
    def problem(self) -> str | None:
        return None

    @property
    def owner(self) -> str:
        return self._owner

    def _one(self, sql: str, args: Mapping[str, Any] | Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._pool.connection() as conn:
            return conn.execute(sql, args).fetchone()

    def _all(self, sql: str, args: Mapping[str, Any] | Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._pool.connection() as conn:
            return conn.execute(sql, args).fetchall()

    def _count(self, sql: str, args: Mapping[str, Any] | Sequence[Any] = ()) -> int:
        with self._pool.connection() as conn:
            return conn.execute(sql, args).rowcount

    def _durable(self, sql: str, args: Mapping[str, Any] | Sequence[Any]) -> tuple[int, list[tuple[Any, ...]]]:
        """One statement whose commit waits for the WAL flush (the caller acknowledges Slack afterwards);
        (rows affected, rows returned)."""
        with self._pool.connection() as conn:
            with conn.pipeline(), conn.transaction():  # BEGIN, SET, the statement, COMMIT: one round trip
                conn.execute("SET LOCAL synchronous_commit = on")
                cur = conn.execute(sql, args)
            return cur.rowcount, cur.fetchall() if cur.description else []

    def health(self) -> dict[str, Any]:
        with self._health_lock:
            now = time.monotonic()
            if self._health is not None and now - self._health[0] < HEALTH_CACHE_SECONDS:
                return dict(self._health[1])
            info: dict[str, Any] = {"backend": "postgresql", "up": True, "schema_version": None}
            try:
                with self._pool.connection(timeout=min(2.0, self._connect_timeout)) as conn:
                    info["schema_version"] = _version(conn)
            except (PoolTimeout, psycopg.Error) as exc:
                info.update(up=False, error=str(unreachable(self.url, exc)))
            self._health = (now, info)
            return dict(info)

    # -- the inbox and the dedup record -------------------------------------------------------------

    def accept(self, item_id: str, *, kind: str, payload: Mapping[str, Any], event_id: str | None = None) -> bool:
        now = self._clock()
        args = {
            "id": item_id, "kind": kind, "payload": Jsonb(dict(payload)), "now": now, "me": self._owner,
            "until": now + self.lease_seconds, "key": f"event:{event_id}",
        }
        insert = (
            "INSERT INTO inbox (id, kind, payload, created, updated, owner, lease_until)"
            " SELECT %(id)s, %(kind)s, %(payload)s, %(now)s, %(now)s, %(me)s, %(until)s"
        )
        if event_id is None:
            sql = f"{insert} ON CONFLICT (id) DO NOTHING"
        else:  # one statement: the event key and the item, both or neither new
            sql = (
                "WITH s AS (INSERT INTO seen (key, at) VALUES (%(key)s, %(now)s) ON CONFLICT (key) DO NOTHING"
                f" RETURNING 1) {insert} WHERE EXISTS (SELECT 1 FROM s) ON CONFLICT (id) DO NOTHING"
            )
        return self._durable(sql, args)[0] == 1

    def claim(self, item_id: str) -> int | None:
        now = self._clock()
        row = self._one(
            "WITH c AS (UPDATE inbox SET state = 'running', attempts = attempts + 1, updated = %(now)s,"
            " owner = %(me)s, lease_until = %(until)s"
            " WHERE id = %(id)s AND state IN ('pending', 'running')"
            " AND (owner IS NULL OR owner = %(me)s OR lease_until IS NULL OR lease_until < %(now)s)"
            " RETURNING attempts)"
            " SELECT (SELECT attempts FROM c), EXISTS (SELECT 1 FROM inbox WHERE id = %(id)s)",
            {"now": now, "me": self._owner, "until": now + self.lease_seconds, "id": item_id},
        )
        assert row is not None
        if not row[1]:
            raise KeyError(item_id)
        return None if row[0] is None else int(row[0])

    def renew(self) -> int:
        return self._count(
            "UPDATE inbox SET lease_until = %s WHERE owner = %s AND state IN ('pending', 'running')",
            (self._clock() + self.lease_seconds, self._owner),
        )

    def holds(self, item_id: str) -> bool:
        return self._count(
            "UPDATE inbox SET lease_until = %s WHERE id = %s AND owner = %s AND state IN ('pending', 'running')",
            (self._clock() + self.lease_seconds, item_id, self._owner),
        ) == 1

    def adopt(self, *, limit: int | None = None) -> list[WorkItem]:
        now = self._clock()
        rows = self._all(
            "WITH picked AS (SELECT id FROM inbox WHERE state IN ('pending', 'running')"
            " AND (owner IS NULL OR lease_until IS NULL OR lease_until < %(now)s)"
            " ORDER BY created LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            " UPDATE inbox AS i SET owner = %(me)s, lease_until = %(until)s FROM picked WHERE i.id = picked.id"
            " RETURNING i.id, i.kind, i.payload, i.created, i.state, i.attempts",
            {"now": now, "me": self._owner, "until": now + self.lease_seconds, "limit": limit},
        )
        return sorted((_item(r) for r in rows), key=lambda item: (item.created, item.id))

    def release(self) -> int:
        return self._count(
            "UPDATE inbox SET owner = NULL, lease_until = NULL WHERE owner = %s AND state = 'pending'", (self._owner,)
        )

    def finish(self, item_id: str, state: FinalState) -> None:
        if state not in FINAL_STATES:
            raise ValueError(f"state must be one of {FINAL_STATES}, not {state!r}")
        self._count("UPDATE inbox SET state = %s, updated = %s WHERE id = %s", (state, self._clock(), item_id))

    def unfinished(self) -> list[WorkItem]:
        rows = self._all(
            "SELECT id, kind, payload, created, state, attempts FROM inbox"
            " WHERE state IN ('pending', 'running') ORDER BY created, id"
        )
        return [_item(r) for r in rows]

    def expire(self, *, before: float) -> int:
        now = self._clock()
        return self._count(
            "UPDATE inbox SET state = 'expired', updated = %(now)s WHERE state IN ('pending', 'running')"
            " AND created < %(before)s AND (owner IS NULL OR lease_until IS NULL OR lease_until < %(now)s)",
            {"now": now, "before": before},
        )

    # -- rate limits --------------------------------------------------------------------------------

    def allow(self, key: str, *, per_minute: int) -> bool:
        if per_minute <= 0:
            return True
        now = self._clock()
        with self._pool.connection() as conn:
            with conn.pipeline(), conn.transaction():  # one round trip; the server takes the lock first
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_RATE_LOCK_CLASS, key))
                cur = conn.execute(
                    "WITH gone AS (DELETE FROM rate_hits WHERE key = %(key)s AND at <= %(old)s),"
                    " n AS (SELECT count(*) AS hits FROM rate_hits WHERE key = %(key)s AND at > %(old)s)"
                    " INSERT INTO rate_hits (key, at) SELECT %(key)s, %(now)s FROM n WHERE n.hits < %(limit)s"
                    " RETURNING 1",
                    {"key": key, "old": now - WINDOW_SECONDS, "now": now, "limit": per_minute},
                )
            return cur.fetchone() is not None

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
        self._count(
            "INSERT INTO answers (id, created, channel, thread_ts, user_id, question, turns, answer, section_ids,"
            " language, confident, abstained) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (answer_id, self._clock(), channel, thread_ts, user, question, Jsonb(list(turns)), answer,
             Jsonb(list(section_ids)), language, bool(confident), bool(abstained)),
        )
        return answer_id

    def record_feedback(self, *, answer_id: str, channel: str, message_ts: str, user: str, value: str) -> FeedbackRow:
        if value not in VALUES:
            raise ValueError(f"feedback value must be one of {VALUES}, not {value!r}")
        rows = self._durable(
            f"INSERT INTO feedback ({_FEEDBACK_COLUMNS})"
            " SELECT %(channel)s, %(ts)s, %(user)s, %(value)s, %(answer_id)s, coalesce(a.question, ''),"
            " coalesce(a.turns, '[]'), coalesce(a.answer, ''), coalesce(a.section_ids, '[]'),"
            " coalesce(a.abstained, false), %(now)s, %(now)s"
            " FROM (SELECT 1) AS one LEFT JOIN answers AS a ON a.id = %(answer_id)s"
            " ON CONFLICT (channel, message_ts, user_id) DO UPDATE SET value = excluded.value,"
            " answer_id = excluded.answer_id, question = excluded.question, turns = excluded.turns,"
            " answer = excluded.answer, section_ids = excluded.section_ids, abstained = excluded.abstained,"
            f" updated = excluded.updated RETURNING {_FEEDBACK_COLUMNS}",
            {"channel": channel, "ts": message_ts, "user": user, "value": value, "answer_id": answer_id,
             "now": self._clock()},
        )[1]
        return _feedback_row(rows[0])

    def feedback(
        self,
        *,
        value: str | None = None,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
    ) -> list[FeedbackRow]:
        where, args = feedback_filter(
            {"value": value, "channel": channel, "message_ts": message_ts, "user_id": user}, placeholder="%s"
        )
        return [_feedback_row(r) for r in self._all(f"SELECT {_FEEDBACK_COLUMNS} FROM feedback{where} ORDER BY created, id", args)]

    # -- housekeeping -------------------------------------------------------------------------------

    def prune(self) -> None:
        now = self._clock()
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM inbox WHERE state NOT IN ('pending', 'running') AND updated < %s", (now - KEEP_SECONDS,)
            )
            conn.execute("DELETE FROM seen WHERE at < %s", (now - KEEP_SECONDS,))
            conn.execute("DELETE FROM rate_hits WHERE at <= %s", (now - WINDOW_SECONDS,))

    def close(self) -> None:
        self._pool.close()


def _item(r: Sequence[Any]) -> WorkItem:
    return WorkItem(id=r[0], kind=r[1], payload=dict(r[2]), created=r[3], state=r[4], attempts=r[5])


def _feedback_row(r: Sequence[Any]) -> FeedbackRow:
    return FeedbackRow(
        channel=r[0],
        message_ts=r[1],
        user=r[2],
        value=r[3],
        answer_id=r[4],
        question=r[5],
        turns=tuple(r[6]),
        answer=r[7],
        section_ids=tuple(r[8]),
        abstained=bool(r[9]),
        created=r[10],
        updated=r[11],
    )


# -- careerbot db copy ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What `copy_from_sqlite` did: rows newly written to PostgreSQL, and rows read from SQLite."""

    answers: int
    feedback: int
    answers_read: int
    feedback_read: int


def copy_from_sqlite(source: Path, url: str, *, connect_timeout: float = 10.0) -> CopyReport:
    """Copy the answers and feedback of the SQLite file ``source`` into the PostgreSQL database at ``url``.

    Idempotent: an answer already there is left alone, a rating replaces the one there only when it is newer
    (a user's last click wins, whichever store took it). All in one transaction. The inbox, dedup keys and
    rate-limit hits are not copied: they matter for minutes, not across a migration.
    """
    if not source.is_file():
        raise ConfigError(f"CAREERBOT_FEEDBACK_DB: no SQLite database at {source}")
    try:
        lite = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        answers = lite.execute(
            "SELECT id, created, channel, thread_ts, user, question, turns, answer, section_ids, language, confident,"
            " abstained FROM answers"
        ).fetchall()
        feedback = lite.execute(
            "SELECT channel, message_ts, user, value, answer_id, question, turns, answer, section_ids, abstained,"
            " created, updated FROM feedback ORDER BY created, id"
        ).fetchall()
        lite.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"CAREERBOT_FEEDBACK_DB: cannot read {source} ({exc})") from None
    migrate(url, connect_timeout=connect_timeout)
    copied_answers = copied_feedback = 0
    with _connect(url, connect_timeout=connect_timeout) as conn:
        try:
            with conn.transaction():
                for r in answers:
                    copied_answers += conn.execute(
                        "INSERT INTO answers (id, created, channel, thread_ts, user_id, question, turns, answer,"
                        " section_ids, language, confident, abstained)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                        (r[0], r[1], r[2], r[3], r[4], r[5], Jsonb(json.loads(r[6] or "[]")), r[7],
                         Jsonb(json.loads(r[8] or "[]")), r[9], None if r[10] is None else bool(r[10]),
                         None if r[11] is None else bool(r[11])),
                    ).rowcount
                for r in feedback:
                    copied_feedback += conn.execute(
                        f"INSERT INTO feedback ({_FEEDBACK_COLUMNS})"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (channel, message_ts, user_id) DO UPDATE SET value = excluded.value,"
                        " answer_id = excluded.answer_id, question = excluded.question, turns = excluded.turns,"
                        " answer = excluded.answer, section_ids = excluded.section_ids,"
                        " abstained = excluded.abstained, updated = excluded.updated"
                        " WHERE feedback.updated < excluded.updated",
                        (r[0], r[1], r[2], r[3], r[4], r[5], Jsonb(json.loads(r[6] or "[]")), r[7],
                         Jsonb(json.loads(r[8] or "[]")), bool(r[9]), r[10], r[11]),
                    ).rowcount
        except psycopg.Error as exc:
            raise unreachable(url, exc) from None
    return CopyReport(
        answers=copied_answers, feedback=copied_feedback, answers_read=len(answers), feedback_read=len(feedback)
    )
