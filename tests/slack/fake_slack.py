"""A local stand-in for Slack's Web API (and ``response_url``s), like bolt-python's tests/mock_web_api_server.

It answers the methods careerbot calls with realistic JSON, enforces the limits
Slack enforces (a section over 3,000 characters, more than 50 blocks, too long a
text), keeps threads (what ``chat.postMessage`` posts in a thread shows up in
``conversations.replies``) and records every call (method, parsed body, headers)
so that tests can count calls per method and wait for them.

Streaming (``chat.startStream`` / ``chat.appendStream`` / ``chat.stopStream``)
behaves as Slack's: a stream is a message in a thread whose ``markdown_text``
grows until it is stopped; in channels it needs ``recipient_team_id`` and
``recipient_user_id``; at most 12,000 characters a call. Set ``stream_error``
(e.g. ``"not_allowed"``) to make every ``chat.startStream`` fail, as in a
workspace (or behind a proxy) without streaming.

Faults, per method, for load and failure tests (a faulty call is recorded, with
its HTTP ``status``, and has no effect):

- `fail` — the next calls answer ``{"ok": false, "error": …}`` (HTTP 200);
- `fail_http` — the next calls answer HTTP 429 (with ``Retry-After``), 500 or 503;
- `drop` — the next calls get no response at all: the connection is closed;
- `flaky` — from now on, each call fails at random: 429 or 500. The draw depends only on
  the seed, the message's channel and thread, and how many calls that message had, so
  each question meets the same faults however the threads interleave;
- ``delays`` — a method answers only after that many seconds, and `hold` — only once the
  returned event is set (its call is recorded at once: an answer stays in flight).
"""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T0001"

SECTION_LIMIT = 3000
MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
BLOCKS_TEXT_LIMIT = 13_000
TEXT_LIMIT = 4000
STREAM_TEXT_LIMIT = 12_000


@dataclass
class Call:
    method: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)
    #: The HTTP status answered (0: the connection was dropped) and the JSON result, once known.
    status: int = 200
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        """Whether the call took effect: HTTP 200 with ``ok: true``."""
        return self.status == 200 and bool(self.result.get("ok"))

    @property
    def text(self) -> str:
        """Everything a user would read: the fallback text and every block's text, joined."""
        parts = [str(self.body.get("text") or "")]
        if self.body.get("markdown_text"):
            parts.append(str(self.body["markdown_text"]))
        blocks = self.body.get("blocks") or (self.body.get("view") or {}).get("blocks") or []
        parts.extend(_block_texts(blocks))
        return "\n".join(parts)


def _block_texts(blocks: list[dict[str, Any]]) -> list[str]:
    out = []
    for b in blocks:
        if isinstance(b.get("text"), dict):
            out.append(b["text"].get("text", ""))
        for e in b.get("elements") or []:
            if isinstance(e, dict) and "text" in e and isinstance(e["text"], str):
                out.append(e["text"])
    return out


def _blocks_problem(blocks: Any, *, max_blocks: int) -> str | None:
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > max_blocks:
        return f"more than {max_blocks} blocks"
    total = 0
    for b in blocks:
        if not isinstance(b, dict) or "type" not in b:
            return "a block without a type"
        if b["type"] == "section":
            text = (b.get("text") or {}).get("text", "")
            if not text or len(text) > SECTION_LIMIT:
                return f"section text of {len(text)} characters"
            total += len(text)
        if b["type"] == "header" and len((b.get("text") or {}).get("text", "")) > 150:
            return "header over 150 characters"
    if total > BLOCKS_TEXT_LIMIT:
        return f"{total} characters of blocks"
    return None


@dataclass(frozen=True)
class Fault:
    """What one faulty call gets: an HTTP ``status`` (``retry_after`` with 429) or, with status 0, no response."""

    status: int
    retry_after: str | None = None

    def body(self) -> dict[str, Any]:
        error = {429: "ratelimited", 503: "service_unavailable"}.get(self.status, "internal_error")
        return {"ok": False, "error": error}


class FakeSlack:
    """Start with `start()`; ``api_url`` is the SLACK_API_URL to use; `stop()` at the end."""

    def __init__(self, *, delays: dict[str, float] | None = None) -> None:
        self.calls: list[Call] = []
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.ws_url: str | None = None
        #: When set, every chat.startStream answers ``{"ok": false, "error": stream_error}``.
        self.stream_error: str | None = None
        #: Streams by ts: channel, thread_ts, the markdown so far, state (``in_progress`` / ``completed``), blocks.
        self.streams: dict[str, dict[str, Any]] = {}
        self._failures: dict[str, list[str]] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._flaky: dict[str, tuple[int, float, float, str]] = {}
        self._flaky_calls: dict[str, int] = {}
        self._holds: dict[str, threading.Event] = {}
        #: Seconds a method waits before it answers (the call is recorded at once).
        self.delays: dict[str, float] = dict(delays or {})
        self._cond = threading.Condition()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None

    # -- test-facing API ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str) -> str:
        return f"{self.url}/response/{name}"

    def set_thread(self, channel: str, messages: list[dict[str, Any]]) -> None:
        """What conversations.replies returns for the thread whose root is ``messages[0]``."""
        root = messages[0]["ts"]
        with self._cond:
            self.threads[(channel, root)] = [dict(m) for m in messages]

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` answer ``{"ok": false, "error": error}``."""
        with self._cond:
            self._failures.setdefault(method, []).extend([error] * times)

    def fail_http(self, method: str, status: int, *, times: int = 1, retry_after: str | None = "1") -> None:
        """The next ``times`` calls of ``method`` answer HTTP ``status`` (429 with ``Retry-After``), with no effect."""
        with self._cond:
            self._faults.setdefault(method, []).extend([Fault(status, retry_after if status == 429 else None)] * times)

    def drop(self, method: str, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` get no response: the connection is closed (a connection error)."""
        with self._cond:
            self._faults.setdefault(method, []).extend([Fault(0)] * times)

    def flaky(
        self, method: str, *, rate_limited: float, server_error: float, seed: int = 0, retry_after: str = "1"
    ) -> None:
        """From now on each call of ``method`` answers 429 with probability ``rate_limited``, else 500 with
        probability ``server_error``, with no effect; the draw is seeded by the message and its call count."""
        with self._cond:
            self._flaky[method] = (seed, rate_limited, server_error, retry_after)

    def hold(self, method: str) -> threading.Event:
        """From now on calls of ``method`` are recorded, then answered only once the returned event is set."""
        with self._cond:
            return self._holds.setdefault(method, threading.Event())

    def calls_to(self, method: str, where: Callable[[Call], bool] | None = None) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method and (where is None or where(c))]

    def wait_for(
        self, method: str, *, count: int = 1, timeout: float = 60.0, where: Callable[[Call], bool] | None = None
    ) -> list[Call]:
        """Block until ``count`` calls of ``method`` (matching ``where``) were made; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [c for c in self.calls if c.method == method and (where is None or where(c))]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise AssertionError(
                        f"{len(found)} of {count} {method} calls after {timeout} s (methods seen: {seen})"
                    )
                self._cond.wait(left)

    def quiet(self, seconds: float = 0.3) -> None:
        """Wait until no call has arrived for ``seconds`` (lets ignored events finish before asserting nothing)."""
        while True:
            with self._cond:
                last = self.calls[-1].at if self.calls else 0.0
            idle = time.monotonic() - last
            if idle >= seconds:
                return
            time.sleep(seconds - idle)

    # -- server --------------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                body = _parse(raw, self.headers.get("Content-Type", ""))
                path = urlparse(self.path).path
                headers = {k.lower(): v for k, v in self.headers.items()}
                if path.startswith("/response/"):
                    status, payload = fake._response_url(path.rsplit("/", 1)[1], body, headers)
                    self._send(status, payload, "text/plain")
                elif path.startswith("/api/"):
                    method = path[len("/api/") :]
                    fault = fake._fault(method, body)
                    if fault is None:
                        result = fake._api(method, body, headers)
                        time.sleep(fake.delays.get(method, 0.0))
                        if (gate := fake._holds.get(method)) is not None:
                            gate.wait(120)
                        self._send(200, json.dumps(result), "application/json")
                    else:
                        fake._record(method, body, headers, status=fault.status, result=fault.body())
                        if fault.status == 0:
                            self.close_connection = True  # no response at all
                            return
                        extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
                        self._send(fault.status, json.dumps(fault.body()), "application/json", extra)
                else:
                    self._send(404, "not found", "text/plain")

            do_GET = do_POST  # noqa: N815 - some clients GET with a query string

            def _send(self, status: int, text: str, ctype: str, extra: dict[str, str] | None = None) -> None:
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", f"{ctype}; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (extra or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # -- behaviour ---------------------------------------------------------------------------------

    def _next_ts(self) -> str:
        return f"{1800000000 + next(self._ts)}.000100"

    def _fault(self, method: str, body: dict[str, Any]) -> Fault | None:
        """The fault this call of ``method`` gets, if any."""
        with self._cond:
            queued = self._faults.get(method)
            if queued:
                return queued.pop(0)
            if method in self._flaky:
                seed, rate_limited, server_error, retry_after = self._flaky[method]
                key = f"{method}:{body.get('channel')}:{body.get('thread_ts') or body.get('ts')}"
                n = self._flaky_calls[key] = self._flaky_calls.get(key, 0) + 1
                draw = random.Random(f"{seed}:{key}:{n}").random()
                if draw < rate_limited:
                    return Fault(429, retry_after)
                if draw < rate_limited + server_error:
                    return Fault(500)
            return None

    def _record(
        self,
        method: str,
        body: dict[str, Any],
        headers: dict[str, str],
        *,
        status: int = 200,
        result: dict[str, Any] | None = None,
    ) -> Call:
        with self._cond:
            call = Call(method=method, body=body, headers=headers, status=status, result=result or {})
            self.calls.append(call)
            self._cond.notify_all()
            return call

    def _next_failure(self, method: str) -> str | None:
        with self._cond:
            failures = self._failures.get(method)
            return failures.pop(0) if failures else None

    def _response_url(self, name: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str]:
        problem = _blocks_problem(body.get("blocks"), max_blocks=MESSAGE_BLOCKS)
        status = 400 if problem else 200
        self._record("response_url", {**body, "_name": name}, headers, status=status, result={"ok": not problem})
        return (400, "invalid_blocks") if problem else (200, "ok")

    def _api(self, method: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        call = self._record(method, body, headers)
        result = self._answer(method, body, headers)
        with self._cond:
            call.result = result
            self._cond.notify_all()
        return result

    def _answer(self, method: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        auth = headers.get("authorization", "")
        error = self._next_failure(method)
        if error:
            return {"ok": False, "error": error}
        if not auth.startswith("Bearer xox") and method != "apps.connections.open":
            return {"ok": False, "error": "not_authed"}
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "careerbot",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            }
        if method == "apps.connections.open":
            if not auth.startswith("Bearer xapp-"):
                return {"ok": False, "error": "not_allowed_token_type"}
            return {"ok": True, "url": self.ws_url} if self.ws_url else {"ok": False, "error": "no_websocket"}
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            text = str(body.get("text") or "")
            if len(text) > TEXT_LIMIT:
                return {"ok": False, "error": "msg_too_long"}
            if problem := _blocks_problem(body.get("blocks"), max_blocks=MESSAGE_BLOCKS):
                return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
            if not text and not body.get("blocks"):
                return {"ok": False, "error": "no_text"}
            channel = body.get("channel", "")
            if method == "chat.postEphemeral":
                return {"ok": True, "message_ts": self._next_ts()}
            ts = body.get("ts") if method == "chat.update" else self._next_ts()
            message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": text, "ts": ts}
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
                with self._cond:
                    thread = self.threads.setdefault((channel, body["thread_ts"]), [])
                    if method == "chat.postMessage":
                        thread.append(message)
            return {"ok": True, "channel": channel, "ts": ts, "message": message}
        if method in ("chat.startStream", "chat.appendStream", "chat.stopStream"):
            return self._stream(method, body)
        if method == "chat.delete":
            channel, ts = body.get("channel", ""), body.get("ts", "")
            with self._cond:
                for (ch, _), thread in self.threads.items():
                    if ch == channel:
                        thread[:] = [m for m in thread if m.get("ts") != ts]
            return {"ok": True, "channel": channel, "ts": ts}
        if method == "conversations.replies":
            with self._cond:
                messages = list(self.threads.get((body.get("channel", ""), body.get("ts", "")), []))
            if not messages:
                return {"ok": False, "error": "thread_not_found"}
            return {"ok": True, "messages": messages, "has_more": False, "response_metadata": {"next_cursor": ""}}
        if method == "conversations.history":
            channel = body.get("channel", "")
            with self._cond:
                posted = [
                    c.body
                    for c in self.calls
                    if c.method == "chat.postMessage" and c.delivered and c.body.get("channel") == channel
                ]
            return {"ok": True, "messages": posted[-int(body.get("limit") or 100):], "has_more": False}
        if method == "views.publish":
            view = body.get("view") or {}
            if problem := _blocks_problem(view.get("blocks"), max_blocks=VIEW_BLOCKS):
                return {"ok": False, "error": "invalid_arguments", "errors": [problem]}
            return {"ok": True, "view": {"id": "V1", "type": view.get("type"), "blocks": view.get("blocks")}}
        if method in (
            "reactions.add",
            "reactions.remove",
            "assistant.threads.setStatus",
            "assistant.threads.setSuggestedPrompts",
            "assistant.threads.setTitle",
        ):
            return {"ok": True}
        return {"ok": False, "error": "unknown_method"}


    def _stream(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel", "")
        text = str(body.get("markdown_text") or "")
        if len(text) > STREAM_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        if method == "chat.startStream":
            if self.stream_error:
                return {"ok": False, "error": self.stream_error}
            if not channel or not body.get("thread_ts"):
                return {"ok": False, "error": "invalid_arguments", "errors": ["channel and thread_ts are required"]}
            if not channel.startswith("D") and not (body.get("recipient_team_id") and body.get("recipient_user_id")):
                return {"ok": False, "error": "invalid_arguments",
                        "errors": ["recipient_team_id and recipient_user_id are required in channels"]}
            ts = self._next_ts()
            message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": text, "ts": ts,
                       "thread_ts": body["thread_ts"]}
            with self._cond:
                self.streams[ts] = {"channel": channel, "thread_ts": body["thread_ts"], "markdown": text,
                                    "state": "in_progress", "blocks": None, "message": message}
                self.threads.setdefault((channel, body["thread_ts"]), []).append(message)
            return {"ok": True, "channel": channel, "ts": ts}
        ts = body.get("ts", "")
        with self._cond:
            stream = self.streams.get(ts)
            if stream is None or stream["channel"] != channel:
                return {"ok": False, "error": "message_not_found"}
            if stream["state"] != "in_progress":
                return {"ok": False, "error": "message_not_in_streaming_state"}
            if method == "chat.appendStream" and not text:
                return {"ok": False, "error": "invalid_arguments", "errors": ["markdown_text is required"]}
            if method == "chat.stopStream":
                if problem := _blocks_problem(body.get("blocks"), max_blocks=MESSAGE_BLOCKS):
                    return {"ok": False, "error": "invalid_blocks", "errors": [problem]}
                stream["state"], stream["blocks"] = "completed", body.get("blocks")
            stream["markdown"] += text
            stream["message"]["text"] = stream["markdown"]
            return {"ok": True, "channel": channel, "ts": ts}


def _parse(raw: str, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            return {"_raw": raw}
        return data if isinstance(data, dict) else {"_raw": data}
    out: dict[str, Any] = {}
    for key, values in parse_qs(raw, keep_blank_values=True).items():
        value: Any = values[-1]
        if isinstance(value, str) and value[:1] in "[{":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    return out
