"""The Socket Mode path: bolt's built-in client connects to a local WebSocket server standing in for Slack's."""

from __future__ import annotations

import time

from bot.slack.app import SlackBot
from tests.conftest import make_settings

from .conftest import APP_TOKEN, BOT_TOKEN
from .fake_socket_mode import SocketModeServer
from .slack_events import event_callback, mention_event, new_ts, socket_envelope


def test_socket_mode_acknowledges_the_envelope_and_answers(fake_slack, advisor, tmp_path):
    ts = new_ts()
    payload = event_callback(mention_event("AI PMの年収は？", ts=ts, channel="C200"), event_id="EvSOCKET1")
    envelope = socket_envelope(payload, envelope_id="env-1")
    retried = socket_envelope(payload, envelope_id="env-2", retry_attempt=1, retry_reason="timeout")
    server = SocketModeServer()
    fake_slack.ws_url = server.url
    settings = make_settings(
        tmp_path / "data",
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=fake_slack.api_url,
        feedback_db=tmp_path / "fb.sqlite3",
    )
    bot = SlackBot(advisor=advisor, settings=settings, http=False)
    handler = bot.socket_mode_handler()
    try:
        handler.connect()
        deadline = time.monotonic() + 10
        while not server.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        server.send(envelope)
        server.send(retried)
        acks = {server.acks.get(timeout=10), server.acks.get(timeout=10)}
        assert acks == {"env-1", "env-2"}  # both envelopes acknowledged…
        [post] = fake_slack.wait_for("chat.postMessage")  # …and the question answered once, in its thread
        assert post.body["thread_ts"] == ts and "ai_product_manager#" in post.text
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}"  # through SLACK_API_URL, with the app token
        fake_slack.quiet()
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
    finally:
        handler.close()
        server.close()
        bot.close()
