"""Two ``careerbot slack --http`` replicas (the image's entry command, real processes) on one real PostgreSQL
database (CAREERBOT_DATABASE_URL), driven by signed requests, answering through the local fake Slack Web API.

What must hold however the load balancer spreads Slack's requests: an event delivered to both (or retried to
the other) is answered once; a replica killed with SIGKILL mid-answer leaves its questions to the other;
a user's rate limit is counted across both; feedback clicked on either lands in one table; the two starting at
the same moment on an empty database apply each migration once.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import threading
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from bot.slack import pg_store
from tests.pg.cluster import URL_PASSWORD
from tests.slack.fake_slack import FakeSlack
from tests.slack.slack_events import feedback_click, new_ts

from .support import Bot, assert_no_secrets, wait_until

pytestmark = pytest.mark.slow

LEASE_SECONDS = "2"


def delivered(fake: FakeSlack, ts: str) -> list:
    return fake.calls_to("chat.postMessage", where=lambda c: c.delivered and c.body.get("thread_ts") == ts)


def answered_once(fake: FakeSlack, asked: list[str], *, timeout: float) -> None:
    """Every question in ``asked`` gets its answer, and then exactly one."""
    wait_until(lambda: all(delivered(fake, ts) for ts in asked), timeout=timeout, what=f"{len(asked)} answers",
               interval=0.25)
    fake.quiet(1.0)
    counts = Counter(c.body["thread_ts"] for c in fake.calls_to("chat.postMessage") if c.delivered)
    assert {ts: counts[ts] for ts in asked} == dict.fromkeys(asked, 1)


@pytest.fixture
def start_replicas(built_root: Path, tmp_path: Path, start_bot, pg_url: str):
    """``start_replicas(fake, env=…)``: two replicas, each with its own copy of the image's file system (its own
    data dir and index, as two containers have), on the one database; started at the same moment."""

    def start(fake: FakeSlack, *, env: dict[str, str] | None = None) -> list[Bot]:
        roots = []
        for name in ("a", "b"):
            root = tmp_path / f"replica-{name}"
            shutil.copytree(built_root, root)
            roots.append(root)
        environment = {"CAREERBOT_DATABASE_URL": pg_url, "CAREERBOT_SLACK_LEASE_SECONDS": LEASE_SECONDS,
                       **(env or {})}
        bots = [start_bot(root, fake, http=True, env=environment) for root in roots]  # no wait in between
        for bot in bots:
            bot.wait_healthy(timeout=120)
        return bots

    return start


def _inbox(url: str, sql: str, args: tuple = ()) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, args).fetchall()


def test_two_replicas_share_dedup_rate_limits_and_feedback(start_replicas, pg_url: str) -> None:
    fake = FakeSlack().start()
    try:
        a, b = start_replicas(fake, env={"CAREERBOT_SLACK_RATE_LIMIT_PER_MINUTE": "3"})
        # Both started at once on an empty database: each migration was applied once, by one of them.
        rows = _inbox(pg_url, "SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == [v for v, _, _ in pg_store.MIGRATIONS]
        upgraded = (a.log() + b.log()).count(f"database schema upgraded to version {pg_store.LATEST}")
        assert upgraded == 1
        for bot in (a, b):
            health = json.loads(bot.healthz())
            assert health["database"] == {"backend": "postgresql", "up": True, "schema_version": pg_store.LATEST}

        # The same event delivered to both at the same moment, then Slack's retry of it to each: one answer.
        ts, event_id = new_ts(), "EvREPLICA1"
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def deliver(bot: Bot) -> None:
            barrier.wait()
            statuses.append(bot.mention("AI PMの年収は？", ts=ts, event_id=event_id, user="U1")[1])

        threads = [threading.Thread(target=deliver, args=(bot,)) for bot in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200, 200]
        for bot in (b, a):
            assert bot.mention("AI PMの年収は？", ts=ts, event_id=event_id, user="U1", retry=1)[1] == 200
        answered_once(fake, [ts], timeout=120)
        [post] = delivered(fake, ts)
        assert "ai_product_manager#" in post.text
        assert "skipped slack:C100:" in a.log() + b.log()

        # A user's rate limit (3 a minute) is counted across both replicas.
        asked = []
        for i in range(5):
            mention_ts, status = (a, b)[i % 2].mention("データサイエンティストの年収は？", user="URATE")
            assert status == 200
            asked.append(mention_ts)
        wait_until(lambda: len(fake.calls_to("chat.postEphemeral", where=lambda c: c.body.get("user") == "URATE")) >= 2,
                   timeout=60, what="two rate-limit notes")
        answered_once(fake, asked[:3], timeout=120)
        assert not any(delivered(fake, t) for t in asked[3:])
        notes = fake.calls_to("chat.postEphemeral", where=lambda c: c.body.get("user") == "URATE")
        assert sorted(c.body.get("thread_ts") for c in notes) == sorted(asked[3:])

        # Feedback clicked on either replica lands in one table; a user's later click replaces theirs.
        value = post.body["blocks"][-1]["elements"][0]["negative_button"]["value"]
        positive = post.body["blocks"][-1]["elements"][0]["positive_button"]["value"]
        for i in range(6):
            click = feedback_click(value, channel="C100", message_ts=post.result["ts"], thread_ts=ts, user=f"UF{i}",
                                   response_url=fake.response_url("fb"))
            assert (a, b)[i % 2].click(click) == 200
        again = feedback_click(positive, channel="C100", message_ts=post.result["ts"], thread_ts=ts, user="UF0",
                               response_url=fake.response_url("fb"))
        assert b.click(again) == 200  # UF0 clicked 👎 on a, now 👍 on b
        rows = _inbox(pg_url, "SELECT user_id, value, question FROM feedback ORDER BY user_id")
        assert [(u, v) for u, v, _ in rows] == [("UF0", "good")] + [(f"UF{i}", "bad") for i in range(1, 6)]
        assert all(q == "AI PMの年収は？" for _, _, q in rows)

        for bot in (a, b):
            assert bot.stop(signal.SIGTERM)[0] == 0
        logs = a.log() + b.log()
        assert "Traceback" not in logs
        assert URL_PASSWORD not in logs
        assert_no_secrets(logs)
    finally:
        fake.stop()


def test_a_replica_killed_mid_answer_leaves_its_questions_to_the_other_and_each_is_answered_once(
    start_replicas, pg_url: str
) -> None:
    fake = FakeSlack().start()
    try:
        a, b = start_replicas(fake)
        gate = fake.hold("reactions.add")  # every answer stops at its first Web API call: all are in flight
        questions = ["データサイエンティストの年収は？", "PdMになるには？", "AI PMの年収は？", "MLエンジニアに必要なスキルは？"]
        asked = []
        for i in range(20):
            ts, status = (a, b)[i % 2].mention(questions[i % 4], user=f"U{i}", channel=f"C{i % 3}")
            assert status == 200
            asked.append(ts)
        # a holds its ten, some being answered (running) and the rest queued, when it is killed.
        owned = f"%:{a.proc.pid}:%"
        held = _inbox(pg_url, "SELECT state FROM inbox WHERE owner LIKE %s AND state IN ('pending', 'running')",
                      (owned,))
        assert len(held) == 10
        wait_until(lambda: _inbox(pg_url, "SELECT 1 FROM inbox WHERE owner LIKE %s AND state = 'running'", (owned,)),
                   timeout=30, what="replica a answering")
        a.kill()  # kill -9, half-way
        gate.set()
        for i in range(20, 40):  # the load balancer now sends everything to b
            ts, status = b.mention(questions[i % 4], user=f"U{i}", channel=f"C{i % 3}")
            assert status == 200
            asked.append(ts)
        answered_once(fake, asked, timeout=240)
        taken = re.findall(r"took over (\d+) question\(s\) whose replica stopped renewing its claim", b.log())
        assert sum(map(int, taken)) == 10  # exactly a's ten, whatever the batches
        left = _inbox(pg_url, "SELECT count(*) FROM inbox WHERE state IN ('pending', 'running')")
        assert left == [(0,)]
        states = dict(_inbox(pg_url, "SELECT state, count(*) FROM inbox GROUP BY state"))
        assert states == {"done": 40}
        assert b.stop(signal.SIGTERM)[0] == 0
        assert "Traceback" not in b.log()
        assert_no_secrets(a.log(), b.log())
    finally:
        fake.stop()


def test_a_replica_that_stalls_past_its_lease_does_not_post_what_the_other_replica_answered(
    start_replicas, pg_url: str
) -> None:
    fake = FakeSlack().start()
    try:
        a, b = start_replicas(fake)
        gate = fake.hold("reactions.add")
        asked = []
        for i in range(4):
            ts, status = a.mention(["データサイエンティストの年収は？", "PdMになるには？"][i % 2], user=f"U{i}")
            assert status == 200
            asked.append(ts)
        owned = f"%:{a.proc.pid}:%"
        wait_until(lambda: len(_inbox(pg_url, "SELECT 1 FROM inbox WHERE owner LIKE %s AND state = 'running'",
                                      (owned,))) == 4, timeout=30, what="replica a answering all four")
        a.send(signal.SIGSTOP)  # a stalls mid-answer (a long pause, a frozen VM): it stops renewing
        try:
            gate.set()
            answered_once(fake, asked, timeout=120)  # b took the four over and answered them
        finally:
            a.send(signal.SIGCONT)
        wait_until(lambda: a.log().count("was taken over by another replica while this one answered it") == 4,
                   timeout=60, what="replica a noticing it lost the four")
        fake.quiet(1.0)
        counts = Counter(c.body["thread_ts"] for c in fake.calls_to("chat.postMessage") if c.delivered)
        assert {ts: counts[ts] for ts in asked} == dict.fromkeys(asked, 1)  # a posted none of them again
        assert dict(_inbox(pg_url, "SELECT state, count(*) FROM inbox GROUP BY state")) == {"done": 4}
        for bot in (a, b):
            assert bot.stop(signal.SIGTERM)[0] == 0
        assert "Traceback" not in a.log() + b.log()
    finally:
        fake.stop()
