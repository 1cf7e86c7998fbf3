"""LLM answers streamed into Slack: the real app over HTTP, a fake OpenAI server streaming SSE, the fake Slack.

The model's reply arrives in pieces with pauses between them. The app shows the
draft while it arrives (Slack's streaming API, or a placeholder message when the
workspace refuses to stream), then replaces it with the final, verified answer:
the same message a non-streamed answer would be, sources and feedback buttons included.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.answer import section_url
from bot.pipeline import Advisor
from bot.slack.render import SlackMessage
from bot.slack.stream import STREAM_INTERVAL, UNSUPPORTED_FOR, UPDATE_INTERVAL, DraftReply, StreamSupport
from tests.conftest import make_settings
from tests.llm.fake_llm import FakeOpenAI, Text

from .conftest import BOT_TOKEN
from .fake_slack import TEAM_ID

SALARY = "AI PMの年収は？"
SALARY_ID = "ai_product_manager#日本での推定年収dodaopenwork参照"
#: The model's reply: citations already in first-use order, so the draft is the final body.
REPLY = (
    "AI PMの年収は経験年数で大きく変わります [1]。\n\n"
    "- ジュニア (0-3年): 500〜850万円 [1]\n"
    "- シニア: 1,400〜2,500万円以上 [1][2]"
)
STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")
SLACK = 0.05  # scheduling slack when comparing call times with the intervals


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def llm_settings(server: FakeOpenAI) -> dict[str, Any]:
    return {
        "backend": "openai",
        "llm_model": "test-model",
        "openai_base_url": server.base_url,
        "openai_api_key": "test-key",
        "llm_timeout": 5.0,
        "llm_max_retries": 0,
    }


@pytest.fixture(scope="module")
def advisor(advisor: Advisor, shared_data_dir, fake_openai: FakeOpenAI) -> Advisor:
    """An Advisor answering with ``openai`` (the fake server), over the session's index and embedder.

    It overrides the session ``advisor`` for this module, so ``slack_app`` serves it.
    """
    return Advisor(settings=make_settings(shared_data_dir, **llm_settings(fake_openai)), embedder=advisor.embedder)


@pytest.fixture(autouse=True)
def _fresh_script(fake_openai: FakeOpenAI) -> Iterator[None]:
    fake_openai.reset()
    yield
    fake_openai.reset()


@pytest.fixture
def llm_app(slack_app, fake_openai):
    """``slack_app`` with the openai backend (what decides whether answers stream)."""
    return lambda **overrides: slack_app(**{**llm_settings(fake_openai), **overrides})


def url_of(advisor: Advisor, section_id: str) -> str:
    section = next(s for s in advisor.knowledge.sections if s.id == section_id)
    return section_url(advisor.settings.article_base_url, section)


def in_thread(ts: str):
    return lambda c: c.body.get("thread_ts") == ts


def at_ts(ts: str):
    return lambda c: c.body.get("ts") == ts


def assert_final_answer(call, advisor: Advisor) -> dict[str, Any]:
    """The message a non-streamed answer would be: mrkdwn, numbered source links, confidence, feedback buttons."""
    assert f"[1] <{url_of(advisor, SALARY_ID)}|AIプロダクトマネージャー › " in call.text
    assert "**" not in call.text and "](" not in call.text
    kinds = [b["type"] for b in call.body["blocks"]]
    assert kinds[-2:] == ["context", "context_actions"]
    buttons = call.body["blocks"][-1]["elements"][0]
    assert buttons["type"] == "feedback_buttons"
    return buttons


def click(app, buttons: dict[str, Any], *, message_ts: str, thread_ts: str, which: str = "positive") -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": "U1"},
        "api_app_id": "A111",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C100", "thread_ts": thread_ts,
                      "is_ephemeral": False},
        "channel": {"id": "C100"},
        "message": {"ts": message_ts, "thread_ts": thread_ts},
        "response_url": app.fake.response_url("fb"),
        "trigger_id": "1.2.3",
        "actions": [{"type": "feedback_buttons", "action_id": buttons["action_id"], "block_id": "b1",
                     "value": buttons[f"{which}_button"]["value"], "action_ts": str(time.time())}],
    }
    assert app.action(payload).status == 200
    app.fake.wait_for("chat.postEphemeral")


def rows(app, table: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(app.settings.feedback_path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - a constant table name
    finally:
        db.close()


def gaps(calls) -> list[float]:
    return [b.at - a.at for a, b in zip(calls, calls[1:], strict=False)]


def test_an_llm_answer_streams_into_the_thread_then_becomes_the_final_answer(llm_app, fake_openai, advisor):
    fake_openai.add(Text.of(REPLY, size=8, gap=0.12))  # 12 pieces over ~1.4 s
    app = llm_app()
    ts, reply = app.mention(SALARY)
    assert reply.status == 200 and reply.seconds < 3

    [stop] = app.fake.wait_for("chat.stopStream")
    [start] = app.fake.calls_to("chat.startStream")
    [stream_ts] = app.fake.streams
    assert start.body["channel"] == "C100" and start.body["thread_ts"] == ts  # in the question's thread
    assert start.body["recipient_team_id"] == TEAM_ID and start.body["recipient_user_id"] == "U1"
    # It started while the model was still writing.
    assert start.at < fake_openai.sent_pieces[-1][1]
    # Batched: fewer appends than pieces, never two within the interval.
    appends = app.fake.calls_to("chat.appendStream")
    assert 1 <= len(appends) < len(fake_openai.sent_pieces)
    assert all(c.body["ts"] == stream_ts and c.body["channel"] == "C100" for c in appends)
    assert all(g >= STREAM_INTERVAL - SLACK for g in gaps([start, *appends]))
    streamed = start.body["markdown_text"] + "".join(c.body["markdown_text"] for c in appends)
    assert streamed and REPLY.startswith(streamed)  # the draft, as Markdown (what the streaming API renders)

    # Stopped, then replaced by the final answer, exactly as a non-streamed one looks.
    assert stop.body["ts"] == stream_ts and stop.at > appends[-1].at
    [final] = app.fake.wait_for("chat.update", where=at_ts(stream_ts))
    assert final.at > stop.at and final.body["channel"] == "C100"
    buttons = assert_final_answer(final, advisor)
    assert "500〜850万円 [1]" in final.text  # the model's body, cited
    assert not app.fake.calls_to("chat.postMessage", where=in_thread(ts))  # one answer message: the stream
    app.fake.wait_for("reactions.remove")  # progress cleared

    [row] = rows(app, "answers")
    assert SALARY_ID in json.loads(row["section_ids"]) and row["answer"].startswith(REPLY)
    click(app, buttons, message_ts=stream_ts, thread_ts=ts)
    [fb] = rows(app, "feedback")
    assert (fb["message_ts"], fb["value"], fb["question"]) == (stream_ts, "good", SALARY)


def test_without_streaming_a_placeholder_is_updated_at_a_bounded_rate(llm_app, fake_openai, advisor):
    fake_openai.add(Text.of(REPLY, size=6, gap=0.12))  # 16 pieces over ~1.9 s
    app = llm_app()
    app.fake.stream_error = "not_allowed"
    ts, _ = app.mention(SALARY)
    app.fake.wait_for("reactions.remove")
    done = time.monotonic()

    [start] = app.fake.calls_to("chat.startStream")  # tried once, refused
    assert not app.fake.calls_to("chat.appendStream") and not app.fake.calls_to("chat.stopStream")
    [placeholder] = app.fake.calls_to("chat.postMessage", where=in_thread(ts))
    assert placeholder.at > start.at
    draft_ts = app.fake.threads[("C100", ts)][-1]["ts"]
    assert placeholder.body["text"].startswith("AI PMの") and "context_actions" not in json.dumps(placeholder.body)
    updates = app.fake.calls_to("chat.update", where=at_ts(draft_ts))
    drafts, final = updates[:-1], updates[-1]
    assert drafts  # the draft grew in place while the model wrote (~1.9 s)
    # At most one update a second while drafting; the drafts grow and are mrkdwn.
    assert all(g >= UPDATE_INTERVAL - SLACK for g in gaps([placeholder, *drafts]))
    assert len(drafts) <= (done - placeholder.at) / UPDATE_INTERVAL + 1
    assert all(len(a.text) <= len(b.text) for a, b in zip([placeholder, *drafts], drafts, strict=False))
    assert not any(line.startswith("- ") for c in drafts for line in c.text.splitlines())  # lists as • (mrkdwn)
    buttons = assert_final_answer(final, advisor)
    click(app, buttons, message_ts=draft_ts, thread_ts=ts)
    assert rows(app, "feedback")[0]["message_ts"] == draft_ts

    # The refusal is remembered: the next answer goes straight to a placeholder.
    fake_openai.add(Text.of(REPLY, size=40, gap=0.05))
    second, _ = app.mention("AI PMの年収は？ 教えてください")
    app.fake.wait_for("chat.update", where=lambda c: c.body.get("blocks") and "context_actions" in json.dumps(c.body)
                      and c.body["ts"] != draft_ts)
    assert len(app.fake.calls_to("chat.startStream")) == 1
    assert len(app.fake.calls_to("chat.postMessage", where=in_thread(second))) == 1


def _real_reply(record_id: str) -> str:
    """A reply Gemma 3 270M wrote on a real llama.cpp server (tests/llm/fixtures/real_replies.json)."""
    records = json.loads((Path(__file__).parents[1] / "llm" / "fixtures" / "real_replies.json").read_text("utf-8"))
    return next(r["reply"] for r in records if r["id"] == record_id)


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param("年収は1億円です。\n出典は不要です。\n", id="uncited"),
        pytest.param(_real_reply("gemma-answer-5"), id="real-system-prompt-echo"),  # the rules, fences and all
        pytest.param(_real_reply("gemma-answer-4"), id="real-loop"),  # 「| ターゲットのモデルのモデル」 again and again
    ],
)
def test_a_reply_that_falls_back_never_shows_its_draft(llm_app, fake_openai, advisor, caplog, reply):
    fake_openai.add(Text.of(reply, size=3, gap=0.05))
    app = llm_app()
    with caplog.at_level(logging.INFO, logger="bot.answers"):
        ts, _ = app.mention(SALARY)
        [final] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
        app.fake.wait_for("reactions.remove")
    # Nothing was shown while the model wrote (the progress status stayed): no stream, no placeholder, no update.
    for method in (*STREAM_METHODS, "chat.update", "chat.delete"):
        assert not app.fake.calls_to(method), method
    assert "1億円" not in final.text and "一般知識" not in final.text and "ターゲットのモデル" not in final.text
    assert_final_answer(final, advisor)
    [record] = [r for r in caplog.records if r.name == "bot.answers"]
    assert record.backend == "openai→extractive"
    assert record.usage["fallback"] in ("no_valid_citation", "prompt_echo", "repetitive")
    assert "1億円" not in rows(app, "answers")[0]["answer"]


def test_a_draft_that_cannot_be_replaced_is_deleted_and_the_answer_posted(llm_app, fake_openai, advisor):
    fake_openai.add(Text.of(REPLY, size=20, gap=0.1))
    app = llm_app()
    app.fake.fail("chat.update", "cant_update_message")
    ts, _ = app.mention(SALARY)
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    assert_final_answer(post, advisor)
    [delete] = app.fake.wait_for("chat.delete")
    app.fake.wait_for("reactions.remove")  # the answer is complete
    [stream_ts] = app.fake.streams
    assert delete.body["ts"] == stream_ts and delete.at > post.at
    [left] = app.fake.threads[("C100", ts)]  # one answer message left in the thread: the posted one
    assert left["ts"] != stream_ts and left["text"] == post.body["text"]


def test_a_failure_after_the_draft_replaces_it_with_the_apology(llm_app, fake_openai, monkeypatch):
    fake_openai.add(Text.of(REPLY, size=20, gap=0.1))
    app = llm_app()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(app.bot.renderer, "answer", broken)
    ts, _ = app.mention(SALARY)
    [apology] = app.fake.wait_for("chat.update")
    assert "申し訳ありません" in apology.text and "context_actions" not in json.dumps(apology.body)
    [stream_ts] = app.fake.streams
    assert apology.body["ts"] == stream_ts
    app.fake.wait_for("reactions.remove")
    assert not app.fake.calls_to("chat.postMessage", where=in_thread(ts))


def test_no_draft_no_stream_extractive_and_abstentions_are_posted_as_before(llm_app, fake_openai, advisor):
    extractive = llm_app(backend="extractive")
    ts, _ = extractive.mention(SALARY)
    [post] = extractive.fake.wait_for("chat.postMessage", where=in_thread(ts))
    assert_final_answer(post, advisor)
    # An off-topic question: the LLM backend abstains without calling the model, so no draft either.
    llm = llm_app()
    off, _ = llm.mention("今日の東京の天気は？")
    [abstained] = llm.fake.wait_for("chat.postMessage", where=in_thread(off))
    assert "context_actions" in json.dumps(abstained.body)
    llm.fake.quiet(0.3)
    for method in (*STREAM_METHODS, "chat.update"):
        assert not llm.fake.calls_to(method), method
    assert fake_openai.requests == []


def test_drafts_are_batched_kept_inert_and_wait_out_a_rate_limit(fake_slack):
    """`DraftReply` alone, on a controlled clock: what is sent when."""
    now = [100.0]
    client = WebClient(token=BOT_TOKEN, base_url=fake_slack.api_url)
    draft = DraftReply(client, channel="C100", thread_ts="1700000000.000001", team_id=TEAM_ID, user_id="U1",
                       render_draft=lambda md: SlackMessage(text=md), support=StreamSupport(), clock=lambda: now[0])

    def appended() -> list[str]:
        return [c.body["markdown_text"] for c in fake_slack.calls_to("chat.appendStream")]

    draft.on_delta("\n")  # only whitespace: nothing to show yet
    assert not fake_slack.calls and not draft.shown
    draft.on_delta("年収は <")  # the first text starts the stream; a trailing "<" waits for what follows
    [start] = fake_slack.calls_to("chat.startStream")
    assert start.body["markdown_text"] == "\n年収は " and draft.shown
    draft.on_delta("!channel> です")  # within the interval: kept
    assert appended() == []
    now[0] += STREAM_INTERVAL
    draft.on_delta("。\n\n")  # due: one append with everything kept, the mention broken up
    assert appended() == ["<\u200b!channel> です。\n\n"]
    fake_slack.fail("chat.appendStream", "ratelimited")
    now[0] += STREAM_INTERVAL
    draft.on_delta("次")  # refused: kept, and no call for a second (no Retry-After given)
    now[0] += 0.5
    draft.on_delta("の")
    assert len(appended()) == 2
    now[0] += 0.6
    draft.on_delta("文")
    assert appended()[-1] == "次の文" and len(appended()) == 3
    # The end: stopped, then the final message put in its place.
    final = SlackMessage(text="final", blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "final"}}])
    [stream_ts] = fake_slack.streams
    assert draft.finish(final) == stream_ts and draft.delivered == "stream"
    assert fake_slack.streams[stream_ts]["state"] == "completed"
    [update] = fake_slack.calls_to("chat.update")
    assert update.body["ts"] == stream_ts and update.body["blocks"] == final.blocks


def test_streaming_refused_as_unsupported_is_not_asked_again_for_a_while():
    now = [0.0]
    support = StreamSupport(clock=lambda: now[0])
    support.refused("ratelimited")  # a passing failure: still try
    assert support.available()
    support.refused("not_allowed")
    assert not support.available()
    now[0] += UNSUPPORTED_FOR
    assert support.available()
