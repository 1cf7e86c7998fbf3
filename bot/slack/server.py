"""HTTP mode: bolt's WSGI adapter under a thread-per-request server (``wsgiref`` + ``ThreadingMixIn``).

Routes: ``POST /slack/events`` (Events API, interactivity and slash commands;
requests are verified with the signing secret by bolt) and ``GET /healthz``.
bolt's own ``App.start()`` server handles one request at a time, so a burst of
mentions misses Slack's 3-second ack; this one serves them concurrently.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from ..errors import ConfigError

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "SlackHTTPServer"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller

StartResponse = Callable[..., Any]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._active = 0
        self._idle = threading.Condition()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._idle:  # counted before its thread starts: `wait_idle` cannot miss it
            self._active += 1
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def _done(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled (at most ``timeout`` s); True if none is."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active <= 0, timeout=max(0.0, timeout))


class _Handler(WSGIRequestHandler):
    """Logs through `logging` (not stderr) and never logs request bodies or headers."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        log.warning("%s %s", self.address_string(), format % args)


def _well_formed(raw: bytes, content_type: str) -> bool:
    """Whether bolt can parse the body: a JSON object, or a form whose ``payload`` (if any) is a JSON object.

    bolt parses before it verifies the signature and raises on malformed bodies; this
    answers them with 400 instead of a logged 500.
    """
    try:
        text = raw.decode("utf-8")
        if content_type.startswith("application/json"):
            body = json.loads(text)
        else:
            fields = parse_qs(text, keep_blank_values=True)
            body = json.loads(fields["payload"][-1]) if "payload" in fields else {k: v[-1] for k, v in fields.items()}
    except (UnicodeDecodeError, ValueError):
        return False
    if not isinstance(body, dict):
        return False
    return isinstance(body.get("event", {}), dict) and isinstance(body.get("authorizations", []), list)


def _reply(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class SlackHTTPServer:
    """Serves ``app`` on ``host:port`` (port 0: any free port; see `port`), one thread per request."""

    def __init__(self, *, app: App, host: str, port: int, health: Callable[[], dict[str, Any]] | None = None) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port: expected 1–65535, got {port}")
        self._bolt = SlackRequestHandler(app, path=EVENTS_PATH)
        self._health = health or (lambda: {})
        try:
            self._server = make_server(
                host, port, self._wsgi, server_class=_ThreadingWSGIServer, handler_class=_Handler
            )
        except OSError as exc:
            raise ConfigError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        try:
            if path == HEALTH_PATH and method in ("GET", "HEAD"):
                return _reply(start_response, "200 OK", {"ok": True, **self._health()})
            if path != EVENTS_PATH:
                return _reply(start_response, "404 Not Found", {"ok": False, "error": "not_found"})
            if method != "POST":
                return _reply(start_response, "405 Method Not Allowed", {"ok": False, "error": "method_not_allowed"})
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY_BYTES:
                return _reply(start_response, "413 Content Too Large", {"ok": False, "error": "bad_length"})
            raw = environ["wsgi.input"].read(length) if length else b""
            if not _well_formed(raw, environ.get("CONTENT_TYPE") or ""):
                log.info("rejected a malformed request body (%d bytes)", len(raw))
                return _reply(start_response, "400 Bad Request", {"ok": False, "error": "malformed_body"})
            environ["wsgi.input"] = io.BytesIO(raw)
            return self._bolt(environ, start_response)
        except Exception:
            log.exception("request to %s failed", path)
            return _reply(start_response, "500 Internal Server Error", {"ok": False, "error": "internal"})

    def serve_forever(self) -> None:
        """Serve until `shutdown` (or Ctrl-C in the caller)."""
        log.info("serving Slack on %s%s (health: %s)", self.url, EVENTS_PATH, HEALTH_PATH)
        self._server.serve_forever(poll_interval=0.2)

    def start(self) -> SlackHTTPServer:
        """Serve in a background thread (tests, embedding); returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="careerbot-slack-http", daemon=True)
        self._thread.start()
        return self

    @property
    def serving(self) -> bool:
        """Whether the background thread of `start` is serving."""
        return self._thread is not None and self._thread.is_alive()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting requests, let those being handled finish (at most ``timeout`` s), close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        if not self._server.wait_idle(timeout):
            log.warning("closing with HTTP requests still being handled after %.0f s", timeout)
        self._server.server_close()
