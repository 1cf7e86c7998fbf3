"""Fixtures for the Slack tests: a fake Slack Web API, and the real app served over HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.pipeline import Advisor
from bot.settings import Settings
from bot.slack.app import SlackBot
from bot.slack.server import SlackHTTPServer
from tests.conftest import make_settings

from .fake_slack import TEAM_ID, FakeSlack
from .slack_events import event_callback, mention_event, new_ts, sign

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-1234-5678-faketoken"
APP_TOKEN = "xapp-1-A111-222-fakeapptoken"

@dataclass(frozen=True)
class Reply:
    status: int
    body: str
    seconds: float


@dataclass
class Running:
    """The real app, served on 127.0.0.1, talking to the fake Slack."""

    bot: SlackBot
    server: SlackHTTPServer
    fake: FakeSlack
    settings: Settings

    @property
    def events_url(self) -> str:
        return f"{self.server.url}/slack/events"

    def post(
        self,
        body: str,
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        signed: bool = True,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        path: str = "/slack/events",
        method: str = "POST",
    ) -> Reply:
        all_headers = {
            "Content-Type": content_type,
            **(sign(body, secret=secret, timestamp=timestamp) if signed else {}),
        }
        all_headers.update(headers or {})
        req = urllib.request.Request(
            f"{self.server.url}{path}",
            data=body.encode("utf-8") if method == "POST" else None,
            headers=all_headers,
            method=method,
        )
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return Reply(resp.status, resp.read().decode("utf-8"), time.perf_counter() - start)
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read().decode("utf-8"), time.perf_counter() - start)

    def event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None) -> Reply:
        """Deliver an Events API ``event_callback`` as Slack does."""
        body = event_callback(event, event_id=event_id)
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return self.post(json.dumps(body, ensure_ascii=False), headers=headers)

    def mention(
        self,
        text: str,
        *,
        channel: str = "C100",
        user: str = "U1",
        ts: str | None = None,
        thread_ts: str | None = None,
        **kw: Any,
    ) -> tuple[str, Reply]:
        ts = ts or new_ts()
        event = mention_event(text, ts=ts, channel=channel, user=user)
        if thread_ts:
            event["thread_ts"] = thread_ts
        return ts, self.event(event, **kw)

    @property
    def metrics_url(self) -> str:
        return f"{self.server.url}/metrics"

    def form(self, fields: dict[str, str]) -> Reply:
        return self.post(urlencode(fields), content_type="application/x-www-form-urlencoded")

    def command(
        self, text: str, *, channel: str = "C100", user: str = "U1", response: str = "r1", trigger_id: str | None = None
    ) -> Reply:
        """A ``/career`` invocation (each with its own trigger id, as Slack sends)."""
        return self.form(
            {
                "token": "unused",
                "team_id": TEAM_ID,
                "team_domain": "fake",
                "channel_id": channel,
                "channel_name": "general",
                "user_id": user,
                "user_name": "someone",
                "command": "/career",
                "text": text,
                "api_app_id": "A111",
                "response_url": self.fake.response_url(response),
                "trigger_id": trigger_id or f"{time.time_ns()}.{uuid.uuid4().hex[:8]}",
            }
        )

    def action(self, payload: dict[str, Any]) -> Reply:
        return self.form({"payload": json.dumps(payload, ensure_ascii=False)})


@pytest.fixture(autouse=True)
def _no_slack_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's real SLACK_* variables must not leak into the tests."""
    for var in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_API_URL",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture
def slack_app(fake_slack: FakeSlack, advisor: Advisor, tmp_path: Path):
    """A factory: ``slack_app(**setting_overrides)`` starts the real app's HTTP server on a free port."""
    started: list[Running] = []

    def start(*, advisor: Advisor = advisor, **overrides: Any) -> Running:
        """``advisor``: another one than the session's (an LLM backend, a knowledge folder of its own)."""
        values: dict[str, Any] = {
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": fake_slack.api_url,
            "feedback_db": tmp_path / f"feedback-{len(started)}.sqlite3",
            "slack_rate_limit_per_minute": 0,
            **overrides,
        }
        settings = make_settings(tmp_path / "data", **values)
        bot = SlackBot(advisor=advisor, settings=settings, http=True)
        bot.resume()
        server = SlackHTTPServer(
            app=bot.app,
            signing_secret=SIGNING_SECRET,
            host="127.0.0.1",
            port=0,
            health=bot.stats,
            max_connections=settings.slack_http_max_connections,
            read_timeout=settings.slack_http_read_timeout,
            metrics=bot.metrics,
        ).start()
        running = Running(bot=bot, server=server, fake=fake_slack, settings=settings)
        started.append(running)
        return running

    yield start
    for running in started:
        running.server.shutdown(timeout=1)
        running.bot.drain(timeout=10)
        running.bot.close()
