"""The SQLite `SlackStore`: the conformance suite, plus what only the embedded store does."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.slack.store import SQLiteSlackStore, open_store
from tests.conftest import make_settings

from .store_conformance import Clock, StoreConformance


class TestSQLiteStore(StoreConformance):
    @pytest.fixture
    def open_store(self, tmp_path: Path):
        path = tmp_path / "slack.sqlite3"
        return lambda clock: SQLiteSlackStore(path=path, clock=clock)


def test_the_file_is_in_wal_mode_and_records_its_schema(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    SQLiteSlackStore(path=path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "3"
    finally:
        db.close()


def test_a_database_from_before_the_inbox_is_upgraded_in_place_and_keeps_its_feedback(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE answers (id TEXT PRIMARY KEY, created REAL NOT NULL, channel TEXT NOT NULL, thread_ts TEXT,
            user TEXT, question TEXT NOT NULL, turns TEXT NOT NULL DEFAULT '[]', answer TEXT NOT NULL,
            section_ids TEXT NOT NULL DEFAULT '[]', language TEXT, confident INTEGER, abstained INTEGER);
        CREATE TABLE feedback (id INTEGER PRIMARY KEY, channel TEXT NOT NULL, message_ts TEXT NOT NULL,
            user TEXT NOT NULL, value TEXT NOT NULL CHECK (value IN ('good', 'bad')), answer_id TEXT,
            question TEXT NOT NULL, turns TEXT NOT NULL DEFAULT '[]', answer TEXT NOT NULL,
            section_ids TEXT NOT NULL DEFAULT '[]', abstained INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL,
            updated REAL NOT NULL, UNIQUE (channel, message_ts, user));
        """
    )
    db.execute(
        "INSERT INTO feedback (channel, message_ts, user, value, question, answer, section_ids, created, updated)"
        " VALUES ('C1', '1.0', 'U1', 'bad', 'DSの年収は？', 'a', ?, 1, 1)",
        (json.dumps(["data_scientist#年収"]),),
    )
    db.commit()
    db.close()
    store = SQLiteSlackStore(path=path)
    try:
        [row] = store.feedback(value="bad")
        assert row.question == "DSの年収は？" and row.section_ids == ("data_scientist#年収",)
        assert store.accept("slack:C1:2.0", kind="message", payload={})
    finally:
        store.close()


def test_an_unwritable_file_is_one_line_naming_the_setting_and_the_bot_falls_back_to_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    path = blocker / "feedback.sqlite3"  # its folder cannot be made, whoever runs the test (root too)
    with pytest.raises(ConfigError) as exc:
        SQLiteSlackStore(path=path)
    assert str(exc.value).startswith(f"CAREERBOT_FEEDBACK_DB: cannot write {path} (") and "\n" not in str(exc.value)

    store = open_store(make_settings(tmp_path / "data", feedback_db=path))
    try:
        assert not store.durable and store.problem and store.problem.startswith("CAREERBOT_FEEDBACK_DB: cannot write")
        [warning] = [r for r in caplog.records if r.name == "bot.slack.store"]
        assert warning.levelname == "WARNING" and "no feedback buttons" in warning.getMessage()
        # It still does its job for this process: dedup, inbox, rate limits.
        assert store.accept("slack:C1:1.0", kind="message", payload={}, event_id="Ev1")
        assert not store.accept("slack:C1:1.0", kind="message", payload={})
        assert store.allow("user:U1", per_minute=1) and not store.allow("user:U1", per_minute=1)
    finally:
        store.close()


def test_the_memory_store_says_it_is_not_durable() -> None:
    store = SQLiteSlackStore(path=None, problem="why", clock=Clock())
    assert (store.durable, store.problem) == (False, "why")
    store.close()


def test_an_inbox_from_before_the_leases_is_upgraded_in_place_and_its_work_resumed(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '2');
        CREATE TABLE inbox (id TEXT PRIMARY KEY, kind TEXT NOT NULL, payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'done', 'failed', 'dropped', 'expired')),
            attempts INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL, updated REAL NOT NULL);
        INSERT INTO inbox (id, kind, payload, state, attempts, created, updated)
            VALUES ('slack:C1:1.0', 'message', '{"text": "q"}', 'running', 1, 1, 1);
        """
    )
    db.commit()
    db.close()
    store = SQLiteSlackStore(path=path, clock=Clock())
    try:
        [item] = store.adopt()  # the file's previous process is gone: its work is free at once
        assert (item.id, item.state, item.attempts, item.payload) == ("slack:C1:1.0", "running", 1, {"text": "q"})
        assert store.claim("slack:C1:1.0") == 2
    finally:
        store.close()


def test_opening_the_file_frees_what_the_previous_process_held(tmp_path: Path) -> None:
    path = tmp_path / "feedback.sqlite3"
    clock = Clock()
    first = SQLiteSlackStore(path=path, clock=clock)
    first.accept("slack:C1:1.0", kind="message", payload={})
    first.claim("slack:C1:1.0")
    first.close()  # (as if killed: its lease would still be live for lease_seconds)
    again = SQLiteSlackStore(path=path, clock=clock)
    try:
        assert [i.id for i in again.adopt()] == ["slack:C1:1.0"] and again.claim("slack:C1:1.0") == 2
    finally:
        again.close()
