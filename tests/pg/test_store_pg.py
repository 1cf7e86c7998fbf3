"""The PostgreSQL `SlackStore` on a real server: the conformance suite, and what only a shared store does
(several processes on one database, migrations, errors naming CAREERBOT_DATABASE_URL, copying from SQLite)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from bot.cli import main
from bot.errors import ConfigError
from bot.settings import load_settings
from bot.slack import pg_store
from bot.slack.pg_store import PostgresSlackStore
from bot.slack.store import SQLiteSlackStore, open_existing_store, open_store
from tests.conftest import make_settings

from ..slack.store_conformance import Clock, StoreConformance, race
from .cluster import URL_PASSWORD, PostgresServer


class TestPostgresStore(StoreConformance):
    @pytest.fixture
    def open_store(self, pg_url: str):
        return lambda clock: PostgresSlackStore(url=pg_url, clock=clock, pool_size=4)


# -- several processes on one database ---------------------------------------------------------------


@pytest.fixture
def replicas(pg_url: str):
    """Two stores on one database, as two replicas have them (distinct owners, one clock)."""
    clock = Clock()
    stores = [PostgresSlackStore(url=pg_url, clock=clock, pool_size=8, lease_seconds=10) for _ in range(2)]
    yield clock, stores
    for store in stores:
        store.close()


def test_an_event_delivered_to_two_replicas_at_once_is_accepted_by_one(replicas) -> None:
    _, (a, b) = replicas
    for n in range(20):
        barrier = threading.Barrier(2)
        won: list[bool] = []

        def deliver(store: PostgresSlackStore, n: int = n) -> None:
            barrier.wait()
            won.append(store.accept(f"slack:C1:{n}.0", kind="message", payload={}, event_id=f"Ev{n}"))

        threads = [threading.Thread(target=deliver, args=(s,)) for s in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(won) == [False, True]
    assert len(a.unfinished()) == 20
    # a retry (new item id, same event id) on the other replica is a duplicate too
    assert not b.accept("slack:C1:0.0", kind="message", payload={}) and not b.accept("x", kind="m", payload={}, event_id="Ev3")


def test_a_live_lease_keeps_other_replicas_out_and_a_lapsed_one_is_taken_over_exactly_once(replicas) -> None:
    clock, (a, b) = replicas
    for n in range(30):
        assert a.accept(f"item-{n}", kind="message", payload={"n": n})
    assert a.claim("item-0") == 1
    assert b.claim("item-0") is None and b.claim("item-1") is None  # a's lease is live
    assert b.adopt() == []
    clock.now += 11  # a died: no renewal
    assert b.claim("item-0") == 2  # b takes it over: the attempt number tells it to check the thread first
    assert a.claim("item-0") is None  # a (come back) cannot take it back while b's lease is live
    assert not a.holds("item-0") and b.holds("item-0")  # so a, about to post, posts nothing
    # b and a third store sweep at once: SKIP LOCKED splits the items, none is taken twice
    c = PostgresSlackStore(url=a.url, clock=clock, pool_size=8, lease_seconds=10)
    try:
        taken: list[list[str]] = []
        barrier = threading.Barrier(2)

        def sweep(store: PostgresSlackStore) -> None:
            barrier.wait()
            ids = []
            while batch := store.adopt(limit=3):
                ids += [i.id for i in batch]
            taken.append(ids)

        threads = [threading.Thread(target=sweep, args=(s,)) for s in (b, c)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(taken[0] + taken[1]) == sorted(f"item-{n}" for n in range(1, 30))
    finally:
        c.close()


def test_claims_race_across_replicas_and_only_one_replica_wins(replicas) -> None:
    _, (a, b) = replicas
    for n in range(10):
        a.accept(f"contended-{n}", kind="message", payload={})
    a.release()  # nobody holds them
    for n in range(10):
        barrier = threading.Barrier(2)
        results: dict[str, int | None] = {}

        def claim(name: str, store: PostgresSlackStore, n: int = n) -> None:
            barrier.wait()
            results[name] = store.claim(f"contended-{n}")

        threads = [threading.Thread(target=claim, args=pair) for pair in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(results.values(), key=lambda v: v is None) == [1, None], results


def test_a_users_rate_limit_is_counted_across_replicas(replicas) -> None:
    clock, (a, b) = replicas
    stores = [a, b] * 10
    n = iter(range(20))
    lock = threading.Lock()

    def hit() -> bool:
        with lock:
            store = stores[next(n)]
        return store.allow("user:U1", per_minute=5)

    assert race(20, hit).count(True) == 5
    assert not a.allow("user:U1", per_minute=5) and not b.allow("user:U1", per_minute=5)
    clock.now += 61
    assert b.allow("user:U1", per_minute=5)


def test_feedback_clicked_on_either_replica_lands_in_one_table(replicas) -> None:
    clock, (a, b) = replicas
    answer_id = a.record_answer(channel="C1", thread_ts="1.0", user="U1", question="DSの年収は？", turns=[],
                                answer="…", section_ids=["data_scientist#年収"], language="ja", confident=True,
                                abstained=False)
    b.record_feedback(answer_id=answer_id, channel="C1", message_ts="2.0", user="U1", value="good")
    clock.now += 1
    a.record_feedback(answer_id=answer_id, channel="C1", message_ts="2.0", user="U1", value="bad")
    a.record_feedback(answer_id=answer_id, channel="C1", message_ts="2.0", user="U2", value="good")
    assert [(r.user, r.value, r.question) for r in b.feedback()] == [("U1", "bad", "DSの年収は？"),
                                                                      ("U2", "good", "DSの年収は？")]


# -- migrations -------------------------------------------------------------------------------------


def test_migrations_are_applied_once_when_many_processes_start_at_the_same_moment(pg_url: str) -> None:
    results = race(8, lambda: pg_store.migrate(pg_url))
    assert [version for version, _ in results] == [pg_store.LATEST] * 8
    applied = sorted(v for _, vs in results for v in vs)
    assert applied == [v for v, _, _ in pg_store.MIGRATIONS]  # each exactly once, by whoever came first
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    assert [r[0] for r in rows] == [v for v, _, _ in pg_store.MIGRATIONS]
    assert pg_store.migrate(pg_url) == (pg_store.LATEST, [])


def test_a_schema_newer_than_the_code_is_one_line_naming_the_setting(pg_url: str) -> None:
    pg_store.migrate(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'from the future')",
                     (pg_store.LATEST + 1,))
    with pytest.raises(ConfigError) as exc:
        PostgresSlackStore(url=pg_url)
    message = str(exc.value)
    assert message.startswith("CAREERBOT_DATABASE_URL: ") and "\n" not in message
    assert f"schema version {pg_store.LATEST + 1}, newer than this careerbot knows ({pg_store.LATEST})" in message
    assert URL_PASSWORD not in message and "[redacted]" in message


def test_an_unreachable_database_is_one_line_naming_the_setting_without_the_password(
    postgres_server: PostgresServer,
) -> None:
    with socket_closed() as port:
        url = f"postgresql://bot:{URL_PASSWORD}@127.0.0.1:{port}/careerbot"
        with pytest.raises(ConfigError) as exc:
            PostgresSlackStore(url=url, connect_timeout=2)
    message = str(exc.value)
    assert message.startswith("CAREERBOT_DATABASE_URL: cannot use the database at postgresql://bot:[redacted]@127.0.0.1:")
    assert "\n" not in message and URL_PASSWORD not in message
    missing = postgres_server.url("no_such_database")
    with pytest.raises(ConfigError, match=r'^CAREERBOT_DATABASE_URL: .*"no_such_database" does not exist'):
        PostgresSlackStore(url=missing, connect_timeout=2)


class socket_closed:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""

    def __enter__(self) -> int:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        return None


def test_an_unreachable_database_stops_careerbot_slack_with_that_line(tmp_path: Path, capsys, monkeypatch) -> None:
    with socket_closed() as port:
        monkeypatch.setenv("CAREERBOT_DATABASE_URL", f"postgresql://bot:{URL_PASSWORD}@127.0.0.1:{port}/x")
        monkeypatch.setenv("CAREERBOT_DATABASE_CONNECT_TIMEOUT", "2")
        monkeypatch.setenv("CAREERBOT_DATA_DIR", str(tmp_path))
        assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("careerbot: error: CAREERBOT_DATABASE_URL: cannot use the database at ")
    assert err.count("\n") == 1 and URL_PASSWORD not in err


def test_a_bad_scheme_is_one_line_naming_the_setting_without_showing_the_url(monkeypatch) -> None:
    monkeypatch.setenv("CAREERBOT_DATABASE_URL", f"mysql://u:{URL_PASSWORD}@h/db")
    with pytest.raises(ConfigError) as exc:
        load_settings()
    message = str(exc.value)
    assert message.startswith("CAREERBOT_DATABASE_URL: Value error, must be a postgresql:// URL, such as ")
    assert URL_PASSWORD not in message and "mysql" not in message and "\n" not in message


def test_db_upgrade_applies_the_migrations_and_says_the_version(pg_url: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("CAREERBOT_DATABASE_URL", pg_url)
    monkeypatch.setenv("CAREERBOT_DATA_DIR", str(tmp_path))
    assert main(["db", "upgrade"]) == 0
    out = capsys.readouterr().out
    assert f"schema version {pg_store.LATEST} (applied 1, 2)" in out and URL_PASSWORD not in out
    assert main(["db", "upgrade"]) == 0
    assert "(nothing to apply)" in capsys.readouterr().out


# -- the configured store, db copy, feedback export ---------------------------------------------------


def test_the_setting_switches_the_store_and_without_it_sqlite_stays(pg_url: str, tmp_path: Path) -> None:
    store = open_store(make_settings(tmp_path, database_url=pg_url, slack_lease_seconds=7))
    try:
        assert isinstance(store, PostgresSlackStore) and store.lease_seconds == 7
        assert store.health() == {"backend": "postgresql", "up": True, "schema_version": pg_store.LATEST}
    finally:
        store.close()
    lite = open_store(make_settings(tmp_path))
    try:
        assert isinstance(lite, SQLiteSlackStore) and lite.path == tmp_path / "feedback.sqlite3"
    finally:
        lite.close()


def _sqlite_with_feedback(path: Path) -> None:
    lite = SQLiteSlackStore(path=path, clock=Clock(1_700_000_000.0))  # clicked before the copy
    try:
        ids = [
            lite.record_answer(channel="C1", thread_ts=f"{n}.0", user="U1", question=f"質問{n}", turns=["前"],
                               answer=f"答え{n}", section_ids=[f"data_scientist#s{n}"], language="ja",
                               confident=True, abstained=n == 2)
            for n in range(3)
        ]
        for n, answer_id in enumerate(ids):
            lite.record_feedback(answer_id=answer_id, channel="C1", message_ts=f"{n}.5", user="U1",
                                 value="bad" if n else "good")
    finally:
        lite.close()


def test_db_copy_moves_answers_and_feedback_and_is_idempotent(pg_url: str, tmp_path: Path, capsys, monkeypatch) -> None:
    source = tmp_path / "feedback.sqlite3"
    _sqlite_with_feedback(source)
    monkeypatch.setenv("CAREERBOT_DATABASE_URL", pg_url)
    monkeypatch.setenv("CAREERBOT_DATA_DIR", str(tmp_path))
    assert main(["db", "copy"]) == 0
    out = capsys.readouterr().out
    assert "3 of 3 answer(s) and 3 of 3 rating(s) were new" in out and URL_PASSWORD not in out
    assert main(["db", "copy"]) == 0
    assert "0 of 3 answer(s) and 0 of 3 rating(s) were new" in capsys.readouterr().out

    store = PostgresSlackStore(url=pg_url)
    try:
        rows = store.feedback()
        assert [(r.message_ts, r.value, r.question, r.turns, r.section_ids, r.abstained) for r in rows] == [
            ("0.5", "good", "質問0", ("前",), ("data_scientist#s0",), False),
            ("1.5", "bad", "質問1", ("前",), ("data_scientist#s1",), False),
            ("2.5", "bad", "質問2", ("前",), ("data_scientist#s2",), True),
        ]
        # a newer click in PostgreSQL is not overwritten by the older one in SQLite
        store.record_feedback(answer_id=rows[0].answer_id or "", channel="C1", message_ts="0.5", user="U1", value="bad")
    finally:
        store.close()
    assert main(["db", "copy"]) == 0
    capsys.readouterr()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT value FROM feedback WHERE message_ts = '0.5'").fetchone() == ("bad",)
        assert conn.execute("SELECT count(*) FROM answers").fetchone() == (3,)


def test_feedback_export_reads_the_configured_store(pg_url: str, tmp_path: Path, capsys, monkeypatch) -> None:
    source = tmp_path / "other" / "feedback.sqlite3"
    source.parent.mkdir()
    _sqlite_with_feedback(source)
    monkeypatch.setenv("CAREERBOT_DATABASE_URL", pg_url)
    monkeypatch.setenv("CAREERBOT_DATA_DIR", str(tmp_path))  # no SQLite file here: it must read PostgreSQL
    assert main(["db", "copy", "--from", str(source)]) == 0
    out = tmp_path / "negative.jsonl"
    assert main(["feedback", "export", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["question"]) for r in rows] == [("fb-C1-1.5", "質問1"), ("fb-C1-2.5", "質問2")]
    assert rows[1]["out_of_scope"] is True
    assert not (tmp_path / "feedback.sqlite3").exists()
    settings = make_settings(tmp_path, database_url=pg_url)
    store = open_existing_store(settings)
    try:
        assert isinstance(store, PostgresSlackStore)
    finally:
        store.close()
