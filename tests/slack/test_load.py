"""The Slack app under load and faults, over HTTP against the fake Web API: acknowledgements never wait
behind answers, a full queue says so, and Slack's 429 / 5xx / dropped connections are retried until every
question has exactly one answer or a logged, counted failure."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.deploy.support import wait_until

from .conftest import BOT_TOKEN, SIGNING_SECRET
from .slack_events import feedback_click, new_ts

QUESTIONS = [
    "AI PMの年収は？",
    "データサイエンティストの年収は？",
    "機械学習エンジニアに必要なスキルは？",
    "PdMになるには？",
    "What does a data scientist do?",
]


def in_thread(ts: str):
    return lambda c: c.body.get("thread_ts") == ts


def delivered_in(ts: str):
    return lambda c: c.delivered and c.body.get("thread_ts") == ts


def outcomes(app) -> int:
    stats = app.bot.stats()
    return stats["answered"] + stats["apologized"] + stats["undelivered"]


def mentions(app, n: int, *, senders: int = 10, ts_base: int | None = None) -> list[tuple[str, str]]:
    """``n`` mentions from ``senders`` threads at once; their (channel, ts). Each must be acknowledged with 200.

    With ``ts_base``, mention ``i`` has the timestamp ``ts_base + i``, whichever sender thread gets to it first:
    the fake's seeded faults (drawn per channel and thread) then fall on the same questions in every run.
    """

    def send(i: int) -> tuple[str, str, int]:
        channel = f"C{i % 4}"
        ts = f"{ts_base + i}.000100" if ts_base is not None else None
        ts, reply = app.mention(QUESTIONS[i % len(QUESTIONS)], user=f"U{i}", channel=channel, ts=ts)
        return channel, ts, reply.status

    with ThreadPoolExecutor(senders) as pool:
        sent = list(pool.map(send, range(n)))
    assert [status for _, _, status in sent] == [200] * n
    return [(channel, ts) for channel, ts, _ in sent]


def test_commands_and_clicks_are_acknowledged_while_60_answers_are_in_flight(slack_app):
    app = slack_app()
    ts, _ = app.mention("AI PMの年収は？")  # an answer with feedback buttons, to click on later
    [post] = app.fake.wait_for("chat.postMessage", where=delivered_in(ts))
    buttons = post.body["blocks"][-1]["elements"][0]
    message_ts = post.result["ts"]

    gate = app.fake.hold("reactions.add")  # from now on no answer gets past its first Web API call
    asked = mentions(app, 60)
    wait_until(lambda: app.bot.stats()["in_progress"] == 8, timeout=60, what="8 answers in progress")
    in_flight = app.bot.stats()
    assert (in_flight["in_progress"], in_flight["waiting"]) == (8, 52)  # all 60 in flight

    def slash(i: int):
        return app.command("データサイエンティストの年収は？", user=f"UC{i}", response=f"cmd{i}")

    def click(i: int):
        payload = feedback_click(
            buttons["negative_button"]["value"], channel="C100", message_ts=message_ts, thread_ts=ts, user=f"UF{i}",
            response_url=app.fake.response_url(f"fb{i}"),
        )
        return app.action(payload)

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(lambda i: slash(i) if i < 10 else click(i - 10), range(20)))
    # bolt answers 404 "didn't call ack()" after 3 s when a listener has not acknowledged: these all did, in time.
    assert [r.status for r in replies] == [200] * 20, [(r.status, r.body) for r in replies]
    assert max(r.seconds for r in replies) < 3.0
    # The clicks were committed before they were acknowledged.
    db = sqlite3.connect(app.settings.feedback_path)
    try:
        assert db.execute("SELECT count(*) FROM feedback WHERE value = 'bad'").fetchone()[0] == 10
    finally:
        db.close()
    assert app.bot.stats()["in_progress"] == 8  # still all in flight while they were acknowledged
    gate.set()

    # …and all the work gets done: every mention answered once, every /career answered.
    app.fake.wait_for("response_url", count=10, timeout=120, where=lambda c: c.body["_name"].startswith("cmd"))
    wait_until(lambda: outcomes(app) == 71, timeout=300, what="71 answers")
    app.fake.quiet()
    posted = Counter(c.body["thread_ts"] for c in app.fake.calls_to("chat.postMessage") if c.delivered)
    assert all(posted[ts] == 1 for _, ts in asked) and len(posted) == 61
    assert app.bot.stats()["answered"] == 71


def test_a_full_queue_tells_the_asker_to_try_again_at_once(slack_app):
    app = slack_app(slack_workers=1, slack_queue_size=1)
    gate = app.fake.hold("reactions.add")
    first, _ = app.mention("AI PMの年収は？")
    app.fake.wait_for("reactions.add", where=lambda c: c.body["timestamp"] == first)  # the one worker is busy
    second, _ = app.mention("PdMの年収は？")  # waits for the worker
    third, reply = app.mention("データサイエンティストの年収は？", user="U3")  # one too many
    assert reply.status == 200
    [busy] = app.fake.wait_for("chat.postEphemeral", where=in_thread(third))
    assert busy.body["user"] == "U3" and "ただいまご質問が集中" in busy.text
    english, _ = app.mention("What does a data scientist earn?", user="U4")
    [busy_en] = app.fake.wait_for("chat.postEphemeral", where=in_thread(english))
    assert "busy" in busy_en.text and "try again" in busy_en.text
    command = app.command("AI PMの年収は？")  # /career gets the note as its acknowledgement
    assert command.status == 200 and "ただいまご質問が集中" in json.loads(command.body)["text"]
    gate.set()

    for ts in (first, second):
        app.fake.wait_for("chat.postMessage", timeout=120, where=delivered_in(ts))
    wait_until(lambda: app.bot.stats()["answered"] == 2, timeout=120, what="both answers to be counted")
    app.fake.quiet()
    assert not app.fake.calls_to("chat.postMessage", where=in_thread(third))
    assert not app.fake.calls_to("chat.postMessage", where=in_thread(english))
    assert app.bot.stats()["busy"] == 3


def test_a_hundred_mentions_against_a_slow_and_failing_web_api(slack_app, caplog, capsys):
    """A third of chat.postMessage calls get 429 (Retry-After: 1), a tenth 500; reactions are slow."""
    caplog.set_level(logging.INFO, logger="bot")
    app = slack_app()
    app.fake.flaky("chat.postMessage", rate_limited=1 / 3, server_error=1 / 10, seed=12)
    app.fake.delays["reactions.add"] = 0.2
    asked = mentions(app, 100, ts_base=1750000000)

    wait_until(lambda: outcomes(app) == 100, timeout=300, what="an outcome for each of the 100 questions")
    app.fake.quiet()
    stats = app.bot.stats()
    undelivered = {
        r.question_id for r in caplog.records if getattr(r, "event", None) == "reply_failed"
    }
    assert len(undelivered) == stats["undelivered"]  # each failure is logged, with its question id
    for channel, ts in asked:
        got = app.fake.calls_to("chat.postMessage", where=delivered_in(ts))
        if f"slack:{channel}:{ts}" in undelivered:
            assert got == []
        else:
            assert len(got) == 1, (ts, len(got))  # exactly one message: the answer, or else the apology
    assert stats["answered"] >= 90, stats  # retries turned most failures into answers
    with capsys.disabled():
        print(f"\n100 mentions, flaky chat.postMessage: {stats['answered']} answered, {stats['apologized']} apologized, "
              f"{stats['undelivered']} undelivered")

    attempts = app.fake.calls_to("chat.postMessage")
    limited = [c for c in attempts if c.status == 429]
    assert limited and any(c.status == 500 for c in attempts)
    # Retry-After was honoured: the next attempt of a rate-limited message came at least a second later.
    for call in limited[:5]:
        later = [c for c in attempts if c.at > call.at and c.body.get("thread_ts") == call.body["thread_ts"]]
        assert later and later[0].at - call.at >= 1.0


def test_a_reply_that_cannot_be_posted_is_logged_and_counted_and_a_dropped_connection_is_retried(
    slack_app, caplog
):
    caplog.set_level(logging.INFO, logger="bot")
    app = slack_app(slack_max_retries=1)
    app.fake.drop("chat.postMessage")  # the connection goes away once: retried, answered
    ts, _ = app.mention("AI PMの年収は？")
    [answer] = app.fake.wait_for("chat.postMessage", where=delivered_in(ts))
    assert "ai_product_manager#" in answer.text
    assert [c.status for c in app.fake.calls_to("chat.postMessage", where=in_thread(ts))] == [0, 200]

    app.fake.fail_http("chat.postMessage", 503, times=4)  # the answer and the apology, each tried twice
    lost, _ = app.mention("PdMの年収は？")
    wait_until(lambda: app.bot.stats()["undelivered"] == 1, timeout=120, what="the failure to be counted")
    assert not app.fake.calls_to("chat.postMessage", where=delivered_in(lost))
    [record] = [r for r in caplog.records if getattr(r, "event", None) == "reply_failed"]
    assert record.question_id == f"slack:C100:{lost}" and record.levelname == "ERROR"
    assert f"slack:C100:{lost}" in record.getMessage() and "service_unavailable" in record.getMessage()
    assert record.exc_info is None  # one line, no traceback
    health = json.loads(app.post("", path="/healthz", method="GET", signed=False).body)
    assert health["undelivered"] == 1 and health["answered"] == 1

    app.fake.fail_http("chat.postMessage", 429, retry_after="120")  # longer than careerbot waits: not waited for
    start = time.monotonic()
    slow, _ = app.mention("機械学習エンジニアの年収は？")
    [apology] = app.fake.wait_for("chat.postMessage", where=delivered_in(slow))
    assert "申し訳ありません" in apology.text and time.monotonic() - start < 60
    wait_until(lambda: app.bot.stats()["apologized"] == 1, timeout=120, what="the apology to be counted")
    for record in caplog.records:
        assert BOT_TOKEN not in record.getMessage() and SIGNING_SECRET not in record.getMessage()


def test_concurrent_clicks_on_one_answer_each_land_once(slack_app):
    """Many users rating at once, some twice: one row per user, each user's last click."""
    app = slack_app()
    ts, _ = app.mention("AI PMの年収は？")
    [post] = app.fake.wait_for("chat.postMessage", where=delivered_in(ts))
    buttons = post.body["blocks"][-1]["elements"][0]
    barrier = threading.Barrier(12)

    def click(i: int) -> int:
        which = "negative" if i % 2 else "positive"
        payload = feedback_click(
            buttons[f"{which}_button"]["value"], channel="C100", message_ts=post.result["ts"], thread_ts=ts,
            user=f"U{i % 6}", response_url=app.fake.response_url("fb"),
        )
        barrier.wait()
        return app.action(payload).status

    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(click, range(12))) == [200] * 12
    rows = app.bot.store.feedback(message_ts=post.result["ts"])
    assert sorted(r.user for r in rows) == [f"U{i}" for i in range(6)]


@pytest.mark.parametrize("kind", ["mention", "dm"])
def test_a_retry_and_a_second_delivery_are_answered_once(slack_app, kind):
    app = slack_app()
    ts = new_ts()
    if kind == "mention":
        event = {"type": "app_mention", "user": "U1", "text": "<@UBOT> PdMの年収は？", "ts": ts, "channel": "C100"}
    else:
        event = {"type": "message", "channel_type": "im", "channel": "D100", "user": "U1", "text": "PdMの年収は？", "ts": ts}
    assert app.event(event, event_id="EvONCE").status == 200
    assert app.event(event, event_id="EvONCE", retry=1).status == 200
    assert app.event(event, event_id="EvOTHER").status == 200  # the same message under another event id
    app.fake.wait_for("chat.postMessage", where=delivered_in(ts))
    app.fake.quiet()
    assert len(app.fake.calls_to("chat.postMessage", where=in_thread(ts))) == 1
