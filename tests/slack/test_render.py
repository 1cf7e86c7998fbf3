"""Slack rendering: Markdown → mrkdwn, and every message within Slack's limits however long the answer."""

from __future__ import annotations

from dataclasses import replace

import pytest
from slack_sdk import WebClient

from bot.slack.mrkdwn import markdown_to_mrkdwn, question_text, split_mrkdwn, truncate
from bot.slack.render import Renderer, parse_feedback_value

from .fake_slack import BLOCKS_TEXT_LIMIT, MESSAGE_BLOCKS, SECTION_LIMIT


@pytest.fixture(scope="module")
def renderer(advisor) -> Renderer:
    return Renderer(prompts=advisor.prompts, max_question_chars=advisor.settings.max_question_chars)


def test_markdown_becomes_mrkdwn():
    md = (
        "**太字**と*斜体*、[記事](https://x.example/a) & <tag>\n## 見出し\n- 項目\n"
        "| 列A | 列B |\n|---|---|\n| a1 | b1 |\n[1] 記事 › 節 — https://x.example/b#c\n"
        "**関連:** 職種（https://x.example/d）"
    )
    out = markdown_to_mrkdwn(md)
    assert "*太字*と_斜体_" in out and "<https://x.example/a|記事> &amp; &lt;tag&gt;" in out
    assert "*見出し*" in out and "• 項目" in out and "• 列A: a1 / 列B: b1" in out
    assert "[1] <https://x.example/b#c|記事 › 節>" in out and "*関連:* <https://x.example/d|職種>" in out


def test_slack_text_becomes_the_question():
    text = "<@UBOT> AIの<https://a.example|記事>を読んだ &lt;3 <#C1|general> <@U2>"
    assert question_text(text, bot_user_id="UBOT") == "AIの記事を読んだ <3 #general @U2"


def test_splitting_and_cutting_keep_links_whole():
    text = "x" * 2990 + " <https://example.com/very/long|link text>"
    assert truncate(text, 3000).endswith("x…")
    chunks = split_mrkdwn("a" * 5000 + "\n\n" + "b" * 10, limit=3000)
    assert all(len(c) <= 3000 for c in chunks) and chunks[-1].endswith("b" * 10)


def _check_limits(message) -> None:
    sections = [b["text"]["text"] for b in message.blocks if b["type"] == "section"]
    assert len(message.blocks) <= MESSAGE_BLOCKS
    assert all(0 < len(t) <= SECTION_LIMIT for t in sections)
    assert sum(map(len, sections)) <= BLOCKS_TEXT_LIMIT
    assert len(message.text) <= 3500


@pytest.mark.parametrize("shape", ["many paragraphs", "one endless line", "many citations"])
def test_an_over_long_answer_is_split_within_limits_and_accepted(renderer, advisor, fake_slack, shape):
    answer = advisor.ask("AI PMの年収は？")
    if shape == "many paragraphs":
        long = replace(answer, text=(answer.text + "\n\n") * 40)
    elif shape == "one endless line":
        long = replace(answer, text="あ" * 20000)
    else:
        long = replace(answer, citations=answer.citations * 300)
    message = renderer.answer(long, answer_id="a1")
    _check_limits(message)
    assert message.blocks[-1]["type"] == "context_actions"  # the buttons survive the cut
    if shape != "many citations":
        assert len([b for b in message.blocks if b["type"] == "section"]) > 1  # split, not just cut
    assert "長いため省略しました" in message.blocks[-3]["text"]["text"]
    # The fake enforces Slack's limits: the message is accepted.
    client = WebClient(token="xoxb-1-test", base_url=fake_slack.api_url)
    assert client.chat_postMessage(channel="C1", **message.kwargs())["ok"]


def test_every_message_kind_renders_in_both_languages(renderer, advisor):
    for language in ("ja", "en"):
        labels = renderer.labels(language)
        assert labels["feedback_good"] and labels["loading"]
        for name, variables in [
            ("slack_error.mrkdwn", {}),
            ("slack_not_allowed.mrkdwn", {}),
            ("slack_rate_limited.mrkdwn", {"per_minute": 3}),
            ("slack_feedback_thanks.mrkdwn", {"value": "bad"}),
            ("slack_help.mrkdwn", {"careers": ["A"], "examples": ["q"], "max_chars": 10}),
        ]:
            _check_limits(renderer.text(name, language=language, **variables))
        view = renderer.home(advisor.knowledge.articles, base_url="https://x.example/", language=language)
        assert view["type"] == "home" and len(view["blocks"]) <= 100
    abstained = advisor.ask("東京の明日の天気は？")
    message = renderer.answer(abstained, answer_id="a2")
    assert abstained.abstained and ":information_source:" in message.blocks[-2]["elements"][0]["text"]
    assert all(f"<{s.url}|" in message.text for s in abstained.suggestions)  # offered as links
    assert parse_feedback_value("bad:a2") == ("bad", "a2") and parse_feedback_value("meh:x") is None


@pytest.mark.parametrize("question", ["AI PMの年収は？", "What does a data scientist do?"])
def test_the_sources_block_appears_once_with_each_link_once(renderer, advisor, question):
    """The answer text lists its sources with readable (decoded) links; the message shows them once, encoded."""
    answer = advisor.ask(question)
    assert answer.citations and any("%" in c.url for c in answer.citations)  # the case that broke: Japanese anchors
    message = renderer.answer(answer, answer_id="a1")
    label = "*出典*" if answer.language == "ja" else "*Sources*"
    assert message.text.count(label) == 1, message.text
    for citation in answer.citations:
        assert message.text.count(citation.url) == 1
    assert "— https://" not in message.text  # the Markdown source lines are gone, not converted
