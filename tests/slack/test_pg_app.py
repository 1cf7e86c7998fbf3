"""The Slack app on a PostgreSQL store (CAREERBOT_DATABASE_URL), in process: answers, feedback and the
database's health in ``/healthz`` and ``careerbot health`` — including a database that goes away."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg

from bot.health import Heartbeat, check_heartbeat
from bot.slack import pg_store
from bot.slack.pg_store import PostgresSlackStore
from bot.slack.server import SlackHTTPServer
from tests.pg.cluster import URL_PASSWORD, PostgresServer

from .conftest import SIGNING_SECRET
from .slack_events import feedback_click


def in_thread(ts: str):
    return lambda c: c.body.get("thread_ts") == ts


def get_healthz(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_app_keeps_its_state_in_postgresql_and_healthz_reports_the_database_going_away(
    slack_app, postgres_server: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    app = slack_app(database_url=pg_url, slack_rate_limit_per_minute=5, database_connect_timeout=2)
    assert isinstance(app.bot.store, PostgresSlackStore)
    ts, reply = app.mention("AI PMの年収は？")
    assert reply.status == 200
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts), timeout=60)
    value = post.body["blocks"][-1]["elements"][0]["negative_button"]["value"]
    click = feedback_click(value, channel="C100", message_ts=post.result["ts"], thread_ts=ts, user="U7",
                           response_url=app.fake.response_url("fb"))
    assert app.action(click).status == 200
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT user_id, value, question FROM feedback").fetchall() == [("U7", "bad", "AI PMの年収は？")]
        assert conn.execute("SELECT state FROM inbox").fetchall() == [("done",)]
        assert conn.execute("SELECT count(*) FROM rate_hits").fetchone() == (1,)

    server = SlackHTTPServer(app=app.bot.app, signing_secret=SIGNING_SECRET, host="127.0.0.1", port=0,
                             health=app.bot.healthz).start()
    try:
        status, body = get_healthz(server.url)
        assert status == 200 and body["ok"] is True
        assert body["database"] == {"backend": "postgresql", "up": True, "schema_version": pg_store.LATEST}

        postgres_server.drop_database(pg_url.rsplit("/", 1)[1])  # the database goes away under the running app

        def down() -> tuple[int, dict] | None:
            got = get_healthz(server.url)
            return got if got[0] == 503 else None

        deadline = time.monotonic() + 60
        while (got := down()) is None:
            assert time.monotonic() < deadline, "healthz never reported the database down"
            time.sleep(0.5)
        status, body = got
        assert body["ok"] is False and body["database"]["up"] is False
        assert body["store_problem"].startswith("CAREERBOT_DATABASE_URL: cannot use the database at postgresql://")
        assert URL_PASSWORD not in json.dumps(body)

        # A question that cannot be recorded is not acknowledged: Slack retries it (nothing acknowledged is lost).
        _, reply = app.mention("データサイエンティストの年収は？")
        assert reply.status >= 500

        heartbeat = Heartbeat(tmp_path / "heartbeat.json", mode="http")
        heartbeat.beat(state="running", connected=True, articles=4, passages=100, stats=app.bot.stats(),
                       problems=[app.bot.stats()["store_problem"]])
        ok, line = check_heartbeat([tmp_path / "heartbeat.json"], max_age=60)
        assert not ok and "cannot use its database: CAREERBOT_DATABASE_URL: cannot use the database" in line
        assert URL_PASSWORD not in line
    finally:
        server.shutdown(timeout=1)


def test_a_stopping_replica_hands_back_what_it_did_not_start_and_another_replica_answers_it(
    slack_app, pg_url: str, caplog
) -> None:
    caplog.set_level("INFO", logger="bot.slack.app")
    settings = {"database_url": pg_url, "slack_workers": 1, "slack_lease_seconds": 1}
    first, second = slack_app(**settings), slack_app(**settings)
    gate = first.fake.hold("reactions.add")  # the first replica's only worker stops at its first Web API call
    asked = []
    for question in ("AI PMの年収は？", "データサイエンティストの年収は？", "PdMになるには？"):
        ts, reply = first.mention(question)
        assert reply.status == 200
        asked.append(ts)
    owner = first.bot.store.owner

    def rows(sql: str, *args) -> list[tuple]:
        with psycopg.connect(pg_url) as conn:
            return conn.execute(sql, args).fetchall()

    deadline = time.monotonic() + 30
    while rows("SELECT 1 FROM inbox WHERE owner = %s AND state = 'running'", owner) == []:
        assert time.monotonic() < deadline, "the first replica never started an answer"
        time.sleep(0.05)
    first.server.shutdown(timeout=1)
    drained = first.bot.drain(timeout=0.5)  # SIGTERM with a short CAREERBOT_SHUTDOWN_TIMEOUT
    assert (drained.running, drained.unstarted) == (1, 2)
    assert any("released 2 question(s) not started" in r.getMessage() for r in caplog.records)
    gate.set()
    for ts in asked:
        first.fake.wait_for("chat.postMessage", where=in_thread(ts), timeout=60)
    first.fake.quiet(1.5)  # a lease and a half: time for a wrong second answer to show
    for ts in asked:
        assert len(first.fake.calls_to("chat.postMessage", where=lambda c, ts=ts: c.delivered and in_thread(ts)(c))) == 1
    assert second.bot.counters.snapshot()["resumed"] == 2  # the two released ones, taken over by the other
    assert rows("SELECT state, count(*) FROM inbox GROUP BY state") == [("done", 3)]
