"""The Slack app end to end over HTTP: signed requests in, Web API calls out (to a local fake Slack)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import pytest

from bot.answer import section_url
from bot.cli import main
from bot.questions import load_question_set, resolve_sections

from .conftest import new_ts
from .fake_slack import BOT_ID, BOT_USER_ID

SKILL_IDS = {
    "ai_product_manager#必要なスキルとツール",
    "ai_product_manager#技術スキルハードスキル",
    "ai_product_manager#組織管理スキルソフトスキル",
}
SALARY_ID = "ai_product_manager#日本での推定年収dodaopenwork参照"


def url_of(advisor, section_id: str) -> str:
    section = next(s for s in advisor.knowledge.sections if s.id == section_id)
    return section_url(advisor.settings.article_base_url, section)


def in_thread(ts: str):
    return lambda c: c.body.get("thread_ts") == ts


def answer_rows(running) -> list[sqlite3.Row]:
    db = sqlite3.connect(running.settings.feedback_path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM answers ORDER BY created").fetchall()
    finally:
        db.close()


def feedback_rows(running) -> list[sqlite3.Row]:
    db = sqlite3.connect(running.settings.feedback_path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM feedback").fetchall()
    finally:
        db.close()


def test_mention_is_answered_in_its_thread_with_a_cited_link(slack_app, advisor):
    app = slack_app()
    ts, reply = app.mention("AI PMの年収は？")
    assert reply.status == 200 and reply.seconds < 3
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    assert post.body["channel"] == "C100"
    salary = url_of(advisor, SALARY_ID)
    assert f"[1] <{salary}|AIプロダクトマネージャー › " in post.text  # a numbered link to the salary section
    assert "**" not in post.text and "](" not in post.text  # mrkdwn, not Markdown
    kinds = [b["type"] for b in post.body["blocks"]]
    assert kinds[-2:] == ["context", "context_actions"]  # the confidence line, then the feedback buttons
    assert ":white_check_mark:" in post.body["blocks"][-2]["elements"][0]["text"]
    buttons = post.body["blocks"][-1]["elements"][0]
    assert buttons["type"] == "feedback_buttons"
    # Progress was shown and cleared.
    app.fake.wait_for("reactions.remove")
    [added] = app.fake.calls_to("reactions.add")
    assert added.body["timestamp"] == ts and added.body["name"] == "hourglass_flowing_sand"
    assert [json.loads(r["section_ids"]) for r in answer_rows(app)] == [[SALARY_ID]]


def test_mention_inside_a_thread_replies_in_that_thread(slack_app):
    app = slack_app()
    root = new_ts()
    app.fake.set_thread(
        "C100", [{"type": "message", "user": "U2", "text": "データサイエンティストに興味があります", "ts": root}]
    )
    ts, _ = app.mention("年収は？", thread_ts=root)
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(root))
    assert "data_scientist" in post.text
    assert not app.fake.calls_to("chat.postMessage", where=in_thread(ts))


def test_direct_message_is_answered(slack_app, advisor):
    app = slack_app()
    ts = new_ts()
    reply = app.event(
        {
            "type": "message",
            "channel_type": "im",
            "channel": "D100",
            "user": "U1",
            "text": "データサイエンティストの年収は？",
            "ts": ts,
        }
    )
    assert reply.status == 200
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    assert post.body["channel"] == "D100"
    assert url_of(advisor, "data_scientist#日本での推定年収dodaopenwork参照") in post.text


def test_assistant_thread_in_a_dm_shows_and_clears_a_status(slack_app):
    app = slack_app()
    root, ts = new_ts(), new_ts()
    app.fake.set_thread(
        "D100", [{"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "こんにちは", "ts": root}]
    )
    app.event(
        {
            "type": "message",
            "channel_type": "im",
            "channel": "D100",
            "user": "U1",
            "text": "機械学習エンジニアの年収は？",
            "ts": ts,
            "thread_ts": root,
        }
    )
    app.fake.wait_for("chat.postMessage", where=in_thread(root))
    statuses = app.fake.wait_for("assistant.threads.setStatus", count=2)
    assert statuses[0].body["status"] and statuses[-1].body["status"] == ""
    assert not app.fake.calls_to("reactions.add")


def test_thread_follow_up_without_mention_uses_the_thread_history(slack_app, advisor):
    app = slack_app()
    root, bot_reply, follow_up = new_ts(), new_ts(), new_ts()
    app.fake.set_thread(
        "C100",
        [
            {
                "type": "message",
                "user": "U1",
                "text": f"<@{BOT_USER_ID}> AI PMの年収は？",
                "ts": root,
                "thread_ts": root,
            },
            {
                "type": "message",
                "user": BOT_USER_ID,
                "bot_id": BOT_ID,
                "text": "年収は…",
                "ts": bot_reply,
                "thread_ts": root,
            },
            {"type": "message", "user": "U1", "text": "そのために必要なスキルは？", "ts": follow_up, "thread_ts": root},
        ],
    )
    app.event(
        {
            "type": "message",
            "channel_type": "channel",
            "channel": "C100",
            "user": "U1",
            "text": "そのために必要なスキルは？",
            "ts": follow_up,
            "thread_ts": root,
        }
    )
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(root))
    assert any(url_of(advisor, sid) in post.text for sid in SKILL_IDS)
    [row] = answer_rows(app)
    assert json.loads(row["turns"]) == ["AI PMの年収は？"]  # the earlier user turn, mention stripped, bot excluded
    assert set(json.loads(row["section_ids"])) & SKILL_IDS


def test_thread_messages_are_ignored_where_the_bot_did_not_answer_or_mentions_are_required(slack_app):
    app = slack_app()
    root, ts = new_ts(), new_ts()
    app.fake.set_thread(
        "C100",
        [
            {"type": "message", "user": "U1", "text": "雑談", "ts": root},
            {"type": "message", "user": "U2", "text": "年収は？", "ts": ts, "thread_ts": root},
        ],
    )
    app.event(
        {
            "type": "message",
            "channel_type": "channel",
            "channel": "C100",
            "user": "U2",
            "text": "年収は？",
            "ts": ts,
            "thread_ts": root,
        }
    )
    app.fake.wait_for("conversations.replies")
    strict = slack_app(slack_require_mention=True)
    root2, ts2 = new_ts(), new_ts()
    app.fake.set_thread(
        "C100",
        [
            {"type": "message", "user": "U1", "text": "q", "ts": root2},
            {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "a", "ts": new_ts()},
        ],
    )
    strict.event(
        {
            "type": "message",
            "channel_type": "channel",
            "channel": "C100",
            "user": "U2",
            "text": "年収は？",
            "ts": ts2,
            "thread_ts": root2,
        }
    )
    app.fake.quiet()
    assert not app.fake.calls_to("chat.postMessage")


def test_a_retried_event_is_answered_once(slack_app):
    app = slack_app()
    ts = new_ts()
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": f"<@{BOT_USER_ID}> PdMの年収は？",
        "ts": ts,
        "channel": "C100",
    }
    first = app.event(event, event_id="Ev0RETRY1")
    again = app.event(event, event_id="Ev0RETRY1", retry=1)
    assert first.status == 200 and again.status == 200
    app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    # The same message delivered as a channel `message` event too (mention inside): still one answer.
    app.event({**event, "type": "message", "channel_type": "channel"})
    app.fake.quiet()
    assert len(app.fake.calls_to("chat.postMessage", where=in_thread(ts))) == 1


@pytest.mark.parametrize("how", ["bad signature", "stale timestamp", "unsigned"])
def test_unverified_requests_are_rejected(slack_app, how):
    app = slack_app()
    body = json.dumps(
        {
            "type": "event_callback",
            "event_id": "EvBAD",
            "team_id": "T0001",
            "event": {
                "type": "app_mention",
                "user": "U1",
                "text": f"<@{BOT_USER_ID}> 年収は？",
                "ts": new_ts(),
                "channel": "C100",
            },
        }
    )
    if how == "bad signature":
        reply = app.post(body, secret="not-the-secret")
    elif how == "stale timestamp":
        reply = app.post(body, timestamp=int(time.time()) - 6 * 60)
    else:
        reply = app.post(body, signed=False)
    assert reply.status == 401
    app.fake.quiet(0.3)
    assert [c.method for c in app.fake.calls if c.method != "auth.test"] == []


def test_own_bot_and_edited_messages_are_ignored(slack_app):
    app = slack_app()
    root = new_ts()
    app.fake.set_thread(
        "C100",
        [
            {"type": "message", "user": "U1", "text": "q", "ts": root},
            {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": "a", "ts": new_ts()},
        ],
    )
    base = {"type": "message", "channel_type": "channel", "channel": "C100", "thread_ts": root, "text": "年収は？"}
    app.event({**base, "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": new_ts()})  # our own message
    app.event({**base, "user": "U9", "bot_id": "BOTHER", "ts": new_ts()})  # another bot
    app.event({**base, "subtype": "bot_message", "bot_id": "BOTHER", "ts": new_ts()})  # a bot_message
    app.event(
        {
            **base,
            "subtype": "message_changed",
            "ts": new_ts(),
            "hidden": True,
            "message": {"user": "U1", "text": "年収は？", "ts": new_ts()},
        }
    )  # an edit
    app.event({**base, "subtype": "message_deleted", "ts": new_ts(), "hidden": True, "deleted_ts": root})
    app.event(
        {
            "type": "message",
            "channel_type": "im",
            "channel": "D100",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "text": "自分の回答",
            "ts": new_ts(),
        }
    )  # own DM reply
    app.fake.quiet(0.5)
    assert not app.fake.calls_to("chat.postMessage")
    assert not app.fake.calls_to("reactions.add")


def test_feedback_is_stored_last_click_wins_and_exports_as_a_question_set(slack_app, advisor, tmp_path, monkeypatch):
    app = slack_app()
    ts, _ = app.mention("AI PMの年収は？")
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    buttons = post.body["blocks"][-1]["elements"][0]
    message_ts = app.fake.threads[("C100", ts)][-1]["ts"]  # the ts chat.postMessage returned

    def click(button: str, user: str = "U1") -> int:
        element = buttons[f"{button}_button"]
        payload = {
            "type": "block_actions",
            "team": {"id": "T0001"},
            "user": {"id": user},
            "api_app_id": "A111",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": "C100",
                "thread_ts": ts,
                "is_ephemeral": False,
            },
            "channel": {"id": "C100"},
            "message": {"ts": message_ts, "thread_ts": ts, "text": post.body["text"]},
            "response_url": app.fake.response_url("fb"),
            "trigger_id": "1.2.3",
            "actions": [
                {
                    "type": "feedback_buttons",
                    "action_id": buttons["action_id"],
                    "block_id": "b1",
                    "value": element["value"],
                    "action_ts": str(time.time()),
                }
            ],
        }
        return app.action(payload).status

    assert click("positive") == 200
    app.fake.wait_for("chat.postEphemeral")
    assert [(r["user"], r["value"]) for r in feedback_rows(app)] == [("U1", "good")]
    assert click("negative") == 200
    app.fake.wait_for("chat.postEphemeral", count=2)
    rows = feedback_rows(app)
    assert [(r["user"], r["value"]) for r in rows] == [("U1", "bad")]  # replaced, not added
    assert rows[0]["question"] == "AI PMの年収は？" and json.loads(rows[0]["section_ids"]) == [SALARY_ID]
    assert rows[0]["channel"] == "C100" and rows[0]["message_ts"] == message_ts and "年収" in rows[0]["answer"]
    assert click("positive", user="U2") == 200
    app.fake.wait_for("chat.postEphemeral", count=3)
    assert sorted((r["user"], r["value"]) for r in feedback_rows(app)) == [("U1", "bad"), ("U2", "good")]

    out = tmp_path / "negative.jsonl"
    monkeypatch.setenv("CAREERBOT_FEEDBACK_DB", str(app.settings.feedback_path))
    assert main(["feedback", "export", str(out)]) == 0
    [q] = load_question_set(out)
    assert q.id == f"fb-C100-{message_ts}" and q.question == "AI PMの年収は？"
    assert q.expected_sections == (SALARY_ID,) and {"feedback", "negative", "needs-review"} <= set(q.tags)
    assert not resolve_sections([q], advisor.knowledge).unknown


@pytest.mark.parametrize("public", [False, True])
def test_slash_command_answers_ephemerally_or_in_the_channel(slack_app, advisor, public):
    app = slack_app(slack_public_slash=public)
    reply = app.command("AI PMの年収は？")
    assert reply.status == 200 and reply.seconds < 3
    [sent] = app.fake.wait_for("response_url")
    assert sent.body["response_type"] == ("in_channel" if public else "ephemeral")
    assert url_of(advisor, SALARY_ID) in sent.text
    buttons = sent.body["blocks"][-1]["elements"][0]
    if not public:  # a click on the ephemeral answer is stored and thanked through the response_url
        reply = app.action(
            {
                "type": "block_actions",
                "user": {"id": "U1"},
                "team": {"id": "T0001"},
                "api_app_id": "A111",
                "container": {
                    "type": "message",
                    "message_ts": "1800000009.000100",
                    "channel_id": "C100",
                    "is_ephemeral": True,
                },
                "channel": {"id": "C100"},
                "response_url": app.fake.response_url("thanks"),
                "trigger_id": "1.2.3",
                "actions": [
                    {
                        "type": "feedback_buttons",
                        "action_id": buttons["action_id"],
                        "block_id": "b",
                        "value": buttons["negative_button"]["value"],
                        "action_ts": "1",
                    }
                ],
            }
        )
        assert reply.status == 200
        [thanks] = app.fake.wait_for("response_url", where=lambda c: c.body["_name"] == "thanks")
        assert thanks.body["response_type"] == "ephemeral" and thanks.body["replace_original"] is False
        [row] = feedback_rows(app)
        assert (row["value"], row["question"], row["message_ts"]) == ("bad", "AI PMの年収は？", "1800000009.000100")
    empty = app.command("   ", response="r2")  # the help comes at once, as the acknowledgement's body
    assert empty.status == 200
    help_ = json.loads(empty.body)
    assert help_["response_type"] == "ephemeral" and "年収は？" in help_["text"]
    assert not app.fake.calls_to("response_url", where=lambda c: c.body["_name"] == "r2")


def test_app_home_lists_the_articles_and_assistant_threads_get_suggested_prompts(slack_app, advisor):
    app = slack_app()
    app.event({"type": "app_home_opened", "user": "U1", "channel": "D100", "tab": "home"})
    [publish] = app.fake.wait_for("views.publish")
    assert publish.body["user_id"] == "U1" and publish.body["view"]["type"] == "home"
    for article in advisor.knowledge.articles:
        assert f"<{advisor.settings.article_base_url}{article.slug}|" in publish.text
    app.event(
        {
            "type": "assistant_thread_started",
            "assistant_thread": {"user_id": "U1", "channel_id": "D100", "thread_ts": new_ts(), "context": {}},
        }
    )
    [prompts] = app.fake.wait_for("assistant.threads.setSuggestedPrompts")
    assert 1 <= len(prompts.body["prompts"]) <= 4 and all(p["message"] for p in prompts.body["prompts"])


def test_the_messages_tab_welcomes_once_with_examples(slack_app):
    app = slack_app()
    opened = {"type": "app_home_opened", "user": "U7", "channel": "D700", "tab": "messages"}
    app.event(opened)
    [welcome] = app.fake.wait_for("chat.postMessage", where=lambda c: c.body.get("channel") == "D700")
    assert "質問の例" in welcome.text and "年収は？" in welcome.text
    app.event({**opened, "user": "U8"})  # another user, same (now non-empty) conversation: no second welcome
    app.event(opened)
    app.fake.quiet()
    assert len(app.fake.calls_to("chat.postMessage", where=lambda c: c.body.get("channel") == "D700")) == 1


def test_empty_mention_gets_help_and_long_questions_are_cut(slack_app):
    app = slack_app()
    ts = new_ts()
    app.event({"type": "app_mention", "user": "U1", "text": f"<@{BOT_USER_ID}>", "ts": ts, "channel": "C100"})
    [help_] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    assert "質問の例" in help_.text and "年収は？" in help_.text
    long_ts, _ = app.mention("AI PMの年収は？" + "とても詳しく教えてください。" * 200)
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(long_ts))
    assert f"先頭の{app.settings.max_question_chars}文字" in post.text
    assert len(answer_rows(app)[-1]["question"]) <= app.settings.max_question_chars


def test_rate_limit_and_channel_allow_list(slack_app):
    app = slack_app(slack_rate_limit_per_minute=1, slack_allowed_channels=["C100"])
    first, _ = app.mention("AI PMの年収は？")
    second, _ = app.mention("PdMの年収は？")
    app.fake.wait_for("chat.postMessage", where=in_thread(first))
    [polite] = app.fake.wait_for("chat.postEphemeral", where=in_thread(second))
    assert polite.body["user"] == "U1" and "1分あたり1件" in polite.text
    elsewhere, _ = app.mention("AI PMの年収は？", channel="C999", user="U7")
    app.fake.quiet()
    assert not app.fake.calls_to("chat.postMessage", where=in_thread(second))
    assert not app.fake.calls_to("chat.postMessage", where=in_thread(elsewhere))


def test_a_reaction_left_by_an_earlier_process_is_still_cleared(slack_app):
    app = slack_app()
    app.fake.fail("reactions.add", "already_reacted")  # the process that died mid-answer had added it
    ts, _ = app.mention("AI PMの年収は？")
    app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    [removed] = app.fake.wait_for("reactions.remove")
    assert removed.body["timestamp"] == ts


def test_a_failure_posts_a_friendly_message_and_clears_progress(slack_app):
    app = slack_app()
    app.fake.fail("chat.postMessage", "internal_error")  # the answer itself cannot be posted
    ts, _ = app.mention("What does a product manager earn?")
    posts = app.fake.wait_for("chat.postMessage", count=2, where=in_thread(ts))
    assert "Sorry" in posts[-1].text  # English question, English apology
    app.fake.wait_for("reactions.remove")


def test_twenty_simultaneous_mentions_are_acked_in_time_and_answered_once(slack_app, capsys):
    app = slack_app()
    questions = [
        "AI PMの年収は？",
        "データサイエンティストの年収は？",
        "機械学習エンジニアに必要なスキルは？",
        "PdMになるには？",
        "What does a data scientist do?",
    ]
    barrier = threading.Barrier(20)
    results: dict[int, tuple[str, float, int]] = {}

    def send(i: int) -> None:
        ts = new_ts()
        barrier.wait()
        _, reply = app.mention(questions[i % len(questions)], ts=ts, user=f"U{i}", channel=f"C{i % 3}")
        results[i] = (ts, reply.seconds, reply.status)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slowest = max(s for _, s, _ in results.values())
    with capsys.disabled():
        print(f"\n20 simultaneous mentions: slowest HTTP reply {slowest * 1000:.0f} ms")
    assert all(status == 200 for _, _, status in results.values())
    assert slowest < 3.0
    app.fake.wait_for("chat.postMessage", count=20)
    app.fake.quiet()
    posted = [c.body["thread_ts"] for c in app.fake.calls_to("chat.postMessage")]
    assert sorted(posted) == sorted(ts for ts, _, _ in results.values())  # each exactly once


def test_malformed_requests_do_not_take_the_app_down(slack_app):
    app = slack_app()
    for body, ctype in [
        ("{not json", "application/json"),
        ("payload=%7Bbroken", "application/x-www-form-urlencoded"),
        ("[]", "application/json"),
        ('{"type": "event_callback", "event": "nope"}', "application/json"),
    ]:
        assert app.post(body, content_type=ctype).status == 400
    assert app.post("", path="/slack/events", method="GET", signed=False).status == 405
    assert app.post("", path="/nope", signed=False).status == 404
    health = app.post("", path="/healthz", method="GET", signed=False)
    assert health.status == 200 and json.loads(health.body)["ok"] is True
    challenge = app.post(json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}))
    assert challenge.status == 200 and "abc123" in challenge.body
    ts, reply = app.mention("AI PMの年収は？")
    assert reply.status == 200
    app.fake.wait_for("chat.postMessage", where=in_thread(ts))


def test_the_books_question_names_every_book_of_the_article(slack_app):
    app = slack_app()
    ts, _ = app.mention("AI PMになるにはどんな本で勉強すればいい？")
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    shown = " ".join(b["text"]["text"] for b in post.body["blocks"] if b.get("type") == "section")
    for book in ("『仕事ではじめる機械学習』", "『AIデザインパターン』", "『10年戦えるデータ分析入門』", "『大規模言語モデル入門』"):
        assert book in shown
    assert shown.count("*出典*") + shown.count("*Sources*") == 1  # the sources once, as links


def test_a_question_several_careers_answer_offers_a_button_per_career(slack_app):
    app = slack_app()
    ts, _ = app.mention("面接ではどんなことを聞かれますか？")
    [post] = app.fake.wait_for("chat.postMessage", where=in_thread(ts))
    [actions] = [b for b in post.body["blocks"] if b.get("type") == "actions"]
    buttons = {e["text"]["text"]: e for e in actions["elements"]}
    assert "データサイエンティストについて詳しく" in buttons and len(buttons) >= 2
    message_ts = app.fake.threads[("C100", ts)][-1]["ts"]
    button = buttons["データサイエンティストについて詳しく"]
    payload = {
        "type": "block_actions",
        "team": {"id": "T0001"},
        "user": {"id": "U7"},
        "api_app_id": "A111",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": "C100", "thread_ts": ts,
                      "is_ephemeral": False},
        "channel": {"id": "C100"},
        "message": {"ts": message_ts, "thread_ts": ts, "text": post.body["text"]},
        "response_url": app.fake.response_url("pick"),
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": button["action_id"], "block_id": "b1",
                     "value": button["value"], "action_ts": str(time.time())}],
    }
    assert app.action(payload).status == 200
    posts = app.fake.wait_for("chat.postMessage", where=in_thread(ts), count=2)
    full = " ".join(b["text"]["text"] for b in posts[-1].body["blocks"] if b.get("type") == "section")
    assert "p値とは何か" in full  # the data scientist's interview questions, in full, in the same thread
    assert not [b for b in posts[-1].body["blocks"] if b.get("type") == "actions"]  # one career now: no buttons
