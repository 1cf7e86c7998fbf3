"""The Socket Mode path: bolt's built-in client connects to a local WebSocket server standing in for Slack's."""

from __future__ import annotations

import json
import queue
import threading

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from bot.slack.app import SlackBot
from tests.conftest import make_settings

from .conftest import APP_TOKEN, BOT_TOKEN, new_ts
from .fake_slack import BOT_USER_ID, TEAM_ID


def test_socket_mode_acknowledges_the_envelope_and_answers(fake_slack, advisor, tmp_path):
    ts = new_ts()
    envelope = {
        "envelope_id": "env-1",
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "token": "unused",
            "team_id": TEAM_ID,
            "api_app_id": "A111",
            "type": "event_callback",
            "event_id": "EvSOCKET1",
            "event_time": 1700000000,
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
            "event": {
                "type": "app_mention",
                "user": "U1",
                "text": f"<@{BOT_USER_ID}> AI PMの年収は？",
                "ts": ts,
                "channel": "C200",
                "event_ts": ts,
            },
        },
    }
    retried = {**envelope, "envelope_id": "env-2", "retry_attempt": 1, "retry_reason": "timeout"}
    from_client: queue.Queue[dict] = queue.Queue()

    def slack_side(ws) -> None:
        ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "num_connections": 1,
                    "connection_info": {"app_id": "A111"},
                    "debug_info": {"host": "fake", "approximate_connection_time": 3600},
                }
            )
        )
        ws.send(json.dumps(envelope))
        ws.send(json.dumps(retried))
        try:
            for message in ws:
                from_client.put(json.loads(message))
        except ConnectionClosed:  # the client closes without a close frame at the end of the test
            pass

    server = serve(slack_side, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    fake_slack.ws_url = f"ws://127.0.0.1:{server.socket.getsockname()[1]}/link/?ticket=t1&app_id=A111"
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
        acks = {from_client.get(timeout=10)["envelope_id"], from_client.get(timeout=10)["envelope_id"]}
        assert acks == {"env-1", "env-2"}  # both envelopes acknowledged…
        [post] = fake_slack.wait_for("chat.postMessage")  # …and the question answered once, in its thread
        assert post.body["thread_ts"] == ts and "ai_product_manager#" in post.text
        [opened] = fake_slack.calls_to("apps.connections.open")
        assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}"  # through SLACK_API_URL, with the app token
        fake_slack.quiet()
        assert len(fake_slack.calls_to("chat.postMessage")) == 1
    finally:
        handler.close()
        server.shutdown()
        bot.close()
