"""HTTP mode against bad requests: rejected cheaply (4xx, one log line, no traceback, nothing parsed or posted);
stalled connections cut off; no more connections served at once than the bound."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import socket
import threading
import time

import pytest

from .conftest import SIGNING_SECRET


def raw_request(url: str, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send bytes as they are (no client tidying them up); what came back until the server closed."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def server_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the HTTP server logged about requests (not its start-up line, which its thread may log late)."""
    return [
        r for r in caplog.records
        if r.name.startswith("bot.slack") and r.name != "bot.slack.app" and not r.getMessage().startswith("serving")
    ]


def nested(depth: int) -> str:
    return '{"a": ' * depth + "1" + "}" * depth


def test_unsigned_nested_garbled_and_oversized_requests_get_a_4xx_and_one_line(slack_app, caplog):
    caplog.set_level(logging.INFO, logger="bot.slack")  # (DEBUG would add the access log line)
    app = slack_app()
    body = nested(300)  # about 2 KB of nested JSON
    assert 1800 < len(body) < 2500
    cases = [
        ("unsigned", lambda: app.post(body, signed=False), 401),
        ("garbage timestamp", lambda: app.post(body, headers={"X-Slack-Request-Timestamp": "12abc; drop"}), 401),
        ("huge timestamp", lambda: app.post(body, headers={"X-Slack-Request-Timestamp": "9" * 40}), 401),
        ("bad signature", lambda: app.post(body, secret="wrong-secret-0000"), 401),
        ("signed, nested 100k deep", lambda: app.post(nested(100_000)), 400),
    ]
    for name, send, status in cases:
        caplog.clear()
        reply = send()
        assert reply.status == status, (name, reply)
        assert json.loads(reply.body)["ok"] is False
        [line] = server_records(caplog)
        assert line.exc_info is None and "Traceback" not in line.getMessage(), name
        assert str(status) in line.getMessage()
    caplog.clear()
    raw = b"\xff\xfe" * 10  # signed, but not UTF-8
    stamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    reply = raw_request(
        app.server.url,
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: v0={digest}\r\n".encode()
        + f"Content-Length: {len(raw)}\r\n\r\n".encode()
        + raw,
    )
    assert reply.startswith(b"HTTP/1.0 400")
    oversized = raw_request(
        app.server.url,
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n{",
    )
    assert oversized.startswith(b"HTTP/1.0 413")  # refused from the header: the 50 MB are never read
    no_length = raw_request(app.server.url, b"POST /slack/events HTTP/1.1\r\nHost: x\r\n\r\n")
    assert no_length.startswith(b"HTTP/1.0 411")
    assert not [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]
    app.fake.quiet(0.3)
    assert [c.method for c in app.fake.calls if c.method != "auth.test"] == []  # nothing was acted on


def test_stalled_connections_are_cut_off_and_bounded(slack_app, caplog):
    caplog.set_level(logging.INFO, logger="bot.slack")
    app = slack_app(slack_http_max_connections=8, slack_http_read_timeout=3)
    host, port = app.server.url.removeprefix("http://").split(":")
    threads_before = threading.active_count()
    stalled = []
    for i in range(30):  # connect, send half a request line, then nothing
        s = socket.create_connection((host, int(port)), timeout=30)
        s.sendall(b"POST /slack/ev" if i % 2 else b"")
        stalled.append(s)
    deadline = time.monotonic() + 30
    while app.server.connections < 8 and time.monotonic() < deadline:  # the bound is reached…
        time.sleep(0.01)
    most, deadline = 0, time.monotonic() + 1.0
    while time.monotonic() < deadline:  # …and never passed
        most = max(most, app.server.connections)
        time.sleep(0.01)
    assert most == 8
    assert threading.active_count() <= threads_before + 8 + 2  # not one thread per stalled connection

    answers = []
    for s in stalled:  # every connection ends: answered 503 at once, or cut off after the read timeout
        chunks = []
        while chunk := s.recv(4096):
            chunks.append(chunk)
        answers.append(b"".join(chunks))
        s.close()
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
    assert len(refused) == app.server.refused >= 1  # (others were served once the first ones timed out)
    assert all(a == b"" or a.startswith(b"HTTP/1.1 503") for a in answers), answers
    deadline = time.monotonic() + 30
    while app.server.connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.server.connections == 0
    assert any("sent nothing for 3 s" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.exc_info]

    ts, reply = app.mention("AI PMの年収は？")  # still serving
    assert reply.status == 200
    app.fake.wait_for("chat.postMessage", where=lambda c: c.delivered and c.body.get("thread_ts") == ts)


def test_a_body_that_stalls_is_answered_408(slack_app, caplog):
    caplog.set_level(logging.INFO, logger="bot.slack")
    app = slack_app(slack_http_read_timeout=1)
    reply = raw_request(
        app.server.url,
        b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\"",
    )
    assert reply.startswith(b"HTTP/1.0 408")
    assert not [r for r in caplog.records if r.exc_info]


def test_healthz_reports_the_counts_and_no_secret(slack_app):
    app = slack_app()
    ts, _ = app.mention("AI PMの年収は？")
    app.fake.wait_for("chat.postMessage", where=lambda c: c.delivered and c.body.get("thread_ts") == ts)
    deadline = time.monotonic() + 10
    while app.bot.stats()["answered"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    reply = app.post("", path="/healthz", method="GET", signed=False)
    health = json.loads(reply.body)
    assert health["ok"] is True and health["answered"] == 1 and health["undelivered"] == 0
    assert health["store_durable"] is True and health["waiting"] == 0
    for secret in (SIGNING_SECRET, app.settings.slack_bot_token.get_secret_value()):
        assert secret not in reply.body
