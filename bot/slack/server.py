"""HTTP mode: bolt's WSGI adapter under a thread-per-connection server (``wsgiref`` + ``ThreadingMixIn``), hardened.

Routes: ``POST /slack/events`` (Events API, interactivity and slash commands), ``GET /healthz`` and, when
given ``metrics``, ``GET /metrics`` (Prometheus text format; OpenMetrics when the scraper asks for it).
bolt's own ``App.start()`` server handles one request at a time, so a burst of mentions misses Slack's
3-second ack; this one serves them concurrently. A bad request costs little and is answered plainly:

- the body is read only up to `MAX_BODY_BYTES` (longer: 413; no valid ``Content-Length``: 411) and its
  **signature is checked before anything parses it**: unsigned, badly signed, stale or garbled timestamps
  get 401; a signed body that is not what Slack sends gets 400. Each rejection is one log line, never a
  traceback;
- every connection has a read timeout (``read_timeout``): a client that stalls is cut off and its thread
  freed (408 when it stalled inside the body);
- at most ``max_connections`` connections are served at once; one more waits up to `SLOT_WAIT_SECONDS`
  for a free slot, then is answered 503 (Slack retries) without a thread of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from ..errors import ConfigError
from ..metrics import Metrics

__all__ = ["EVENTS_PATH", "HEALTH_PATH", "MAX_BODY_BYTES", "METRICS_PATH", "SlackHTTPServer"]

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
METRICS_PATH = "/metrics"
MAX_BODY_BYTES = 1_000_000  # Slack's payloads are far smaller
#: Slack's replay window: a request signed longer ago (or ahead) is refused.
SIGNATURE_WINDOW_SECONDS = 300
#: How long a new connection may wait for one of the ``max_connections`` slots before it is refused.
SLOT_WAIT_SECONDS = 1.0
#: Refusals for too many connections are logged at most this often (a flood must not flood the log).
REFUSAL_LOG_SECONDS = 10.0

StartResponse = Callable[..., Any]

_BUSY_BODY = b'{"ok": false, "error": "busy"}'
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    """One thread per connection, at most ``max_connections`` of them; counts them for `wait_idle`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], *, max_connections: int, read_timeout: float) -> None:
        self.max_connections = max_connections
        self.read_timeout = read_timeout
        self._active = 0
        self._idle = threading.Condition()
        self.refused = 0
        self._refusal_logged = 0.0
        super().__init__(address, _Handler)

    @property
    def active(self) -> int:
        """Connections being served now."""
        with self._idle:
            return self._active

    def process_request(self, request: Any, client_address: Any) -> None:
        refused, log_it = 0, False
        with self._idle:  # counted before its thread starts: `wait_idle` cannot miss it
            # A burst waits a moment for a free slot (newer connections queue in the listen backlog).
            self._idle.wait_for(lambda: self._active < self.max_connections, timeout=SLOT_WAIT_SECONDS)
            if self._active >= self.max_connections:
                self.refused += 1
                refused, now = self.refused, time.monotonic()
                log_it = now - self._refusal_logged >= REFUSAL_LOG_SECONDS
                if log_it:
                    self._refusal_logged = now
            else:
                self._active += 1
        if refused:
            if log_it:
                log.warning(
                    "%d connection(s) refused with 503 so far: %d are being served (CAREERBOT_SLACK_HTTP_MAX_CONNECTIONS)",
                    refused,
                    self.max_connections,
                )
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done()
            raise

    def _refuse(self, request: Any) -> None:
        try:
            request.settimeout(1.0)
            request.sendall(_BUSY_RESPONSE)
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside the WSGI app (reset, cut off): one line, no traceback."""
        exc = sys.exc_info()[1]
        log.info("connection from %s ended: %s", client_address[0] if client_address else "?", _one_line(exc))

    def _done(self) -> None:
        with self._idle:
            self._active -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is being handled (at most ``timeout`` s); True if none is."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active <= 0, timeout=max(0.0, timeout))


class _Handler(WSGIRequestHandler):
    """Logs through `logging` (never request bodies or headers); a silent client is cut off after the read timeout."""

    server: _ThreadingWSGIServer

    def setup(self) -> None:
        self.timeout = self.server.read_timeout  # StreamRequestHandler applies it to the socket
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except TimeoutError:
            log.info("closed a connection from %s that sent nothing for %g s", self.address_string(), self.timeout)
        except OSError as exc:
            log.info("connection from %s ended: %s", self.address_string(), _one_line(exc))

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002
        log.info("rejected a request from %s: %s", self.address_string(), format % args)


def _one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "?"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _well_formed(raw: bytes, content_type: str) -> bool:
    """Whether bolt can use the body: a JSON object, or a form whose ``payload`` (if any) is a JSON object."""
    try:
        text = raw.decode("utf-8")
        if content_type.startswith("application/json"):
            body = json.loads(text)
        else:
            fields = parse_qs(text, keep_blank_values=True)
            body = json.loads(fields["payload"][-1]) if "payload" in fields else {k: v[-1] for k, v in fields.items()}
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False
    if not isinstance(body, dict):
        return False
    return isinstance(body.get("event", {}), dict) and isinstance(body.get("authorizations", []), list)


def _reply(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


class SlackHTTPServer:
    """Serves ``app`` on ``host:port`` (port 0: any free port; see `port`), one thread per connection.

    ``signing_secret`` verifies every ``POST /slack/events`` before it is parsed. ``health`` adds fields to
    ``GET /healthz``'s ``{"ok": true}``; when it says ``"ok": False``, the answer is 503. ``metrics`` gets the
    server's own ``careerbot_http_connections`` and ``careerbot_http_refused_total``, and with ``serve_metrics``
    ``GET /metrics`` serves its registry (without: metrics are served elsewhere, `bot.metrics.MetricsServer`,
    and ``/metrics`` is 404).
    """

    def __init__(
        self,
        *,
        app: App,
        signing_secret: str,
        host: str,
        port: int,
        health: Callable[[], dict[str, Any]] | None = None,
        max_connections: int = 100,
        read_timeout: float = 10.0,
        metrics: Metrics | None = None,
        serve_metrics: bool = True,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"--port: expected 1–65535, got {port}")
        if not signing_secret.strip():
            raise ConfigError("SLACK_SIGNING_SECRET: not set; HTTP mode needs the app's signing secret")
        self._bolt = SlackRequestHandler(app, path=EVENTS_PATH)
        self._secret = signing_secret.strip().encode("utf-8")
        self._health = health or (lambda: {})
        try:
            self._server = _ThreadingWSGIServer(
                (host, port), max_connections=max_connections, read_timeout=read_timeout
            )
        except OSError as exc:
            raise ConfigError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        self._server.set_app(self._wsgi)
        self._thread: threading.Thread | None = None
        self._metrics_app = metrics.wsgi_app() if metrics is not None and serve_metrics else None
        if metrics is not None:
            metrics.sample("careerbot_http_connections", "HTTP connections being served now "
                           "(CAREERBOT_SLACK_HTTP_MAX_CONNECTIONS at most).", lambda: float(self._server.active))
            metrics.sample("careerbot_http_refused", "HTTP connections answered 503 because "
                           "CAREERBOT_SLACK_HTTP_MAX_CONNECTIONS were being served.",
                           lambda: float(self._server.refused), counter=True)

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """Connections being served now (at most ``max_connections``)."""
        return self._server.active

    @property
    def refused(self) -> int:
        """Connections answered 503 because ``max_connections`` were being served."""
        return self._server.refused

    def _reject(self, start_response: StartResponse, environ: dict[str, Any], status: str, reason: str) -> list[bytes]:
        log.info("rejected a request from %s with %s: %s", environ.get("REMOTE_ADDR", "?"), status, reason)
        error = status.split(" ", 1)[1].lower().replace(" ", "_")
        return _reply(start_response, status, {"ok": False, "error": error})

    def _unsigned(self, environ: dict[str, Any], raw: bytes) -> str | None:
        """Why the request is not verifiably Slack's (None: it is). Nothing of the body is parsed."""
        timestamp = environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or ""
        signature = environ.get("HTTP_X_SLACK_SIGNATURE") or ""
        if not timestamp or not signature:
            return "not signed (no X-Slack-Request-Timestamp or X-Slack-Signature)"
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return "malformed X-Slack-Request-Timestamp"
        if abs(time.time() - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
            return "X-Slack-Request-Timestamp outside the 5-minute window"
        # Slack's scheme over the raw bytes (slack_sdk's SignatureVerifier would decode them as UTF-8 first).
        expected = "v0=" + hmac.new(self._secret, b"v0:%s:%s" % (timestamp.encode(), raw), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return "bad signature"
        return None

    def _wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        try:
            if path == HEALTH_PATH and method in ("GET", "HEAD"):
                info = dict(self._health())
                ok = info.pop("ok", True) is not False  # e.g. the database does not answer: 503
                return _reply(start_response, "200 OK" if ok else "503 Service Unavailable", {"ok": ok, **info})
            if path == METRICS_PATH and self._metrics_app is not None:
                return self._metrics_app(environ, start_response)
            if path != EVENTS_PATH:
                return _reply(start_response, "404 Not Found", {"ok": False, "error": "not_found"})
            if method != "POST":
                return _reply(start_response, "405 Method Not Allowed", {"ok": False, "error": "method_not_allowed"})
            raw_length = environ.get("CONTENT_LENGTH") or ""
            if not (raw_length.isascii() and raw_length.isdigit()):
                return self._reject(start_response, environ, "411 Length Required", "no valid Content-Length")
            length = int(raw_length)
            if length > MAX_BODY_BYTES:
                return self._reject(
                    start_response, environ, "413 Content Too Large", f"a body of {length} bytes (limit {MAX_BODY_BYTES})"
                )
            try:
                raw = environ["wsgi.input"].read(length) if length else b""
            except TimeoutError:
                return self._reject(start_response, environ, "408 Request Timeout", "the body stalled")
            if len(raw) != length:
                return self._reject(start_response, environ, "400 Bad Request", "a body shorter than its Content-Length")
            if reason := self._unsigned(environ, raw):
                return self._reject(start_response, environ, "401 Unauthorized", reason)
            if not _well_formed(raw, environ.get("CONTENT_TYPE") or ""):
                return self._reject(start_response, environ, "400 Bad Request", f"a malformed body ({length} bytes)")
            environ["wsgi.input"] = io.BytesIO(raw)
            return self._bolt(environ, start_response)
        except Exception:
            log.exception("request to %s failed", path)
            return _reply(start_response, "500 Internal Server Error", {"ok": False, "error": "internal"})

    def serve_forever(self) -> None:
        """Serve until `shutdown` (or Ctrl-C in the caller)."""
        extra = f", metrics: {METRICS_PATH}" if self._metrics_app is not None else ""
        log.info("serving Slack on %s%s (health: %s%s)", self.url, EVENTS_PATH, HEALTH_PATH, extra)
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
