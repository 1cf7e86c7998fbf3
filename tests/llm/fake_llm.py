"""Local stand-ins for the OpenAI Chat Completions and Anthropic Messages APIs, on 127.0.0.1.

Each server speaks its API's real wire format — a JSON response, or server-sent
events when the request asks for ``stream`` — and is scripted per test with a
queue of steps:

- `Text`: the model's reply, given as the pieces it streams in (joined for a
  JSON response), with token counts.
- `Status`: an HTTP error with headers (e.g. ``Retry-After``) and the API's error body.
- any step may carry ``delay`` (seconds before the response starts); `Text`
  a ``gap`` before every streamed piece, and ``stall`` = (i, seconds): a pause
  after piece i, as when a server hangs mid-stream.

Every request is recorded (path, headers, parsed JSON body, arrival time), and
the time each streamed piece left the server, so tests can check what was sent
and when it arrived. A request with nothing left in the script gets a 500 that
says so, and a test expecting success fails loudly.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Text", "Status", "Recorded", "FakeLLMServer", "FakeOpenAI", "FakeAnthropic", "closed_port"]


@dataclass(frozen=True)
class Text:
    """A successful reply: ``pieces`` are streamed one SSE event each, or joined into one JSON body."""

    pieces: tuple[str, ...]
    input_tokens: int = 321
    output_tokens: int = 45
    delay: float = 0.0
    gap: float = 0.0
    stall: tuple[int, float] | None = None
    #: Why the reply ended: ``stop``, or ``length`` (cut at ``max_tokens``; Anthropic's ``max_tokens``).
    finish: str = "stop"

    @classmethod
    def of(cls, text: str, *, size: int = 6, **kwargs: Any) -> Text:
        """``text`` cut into pieces of ``size`` characters."""
        return cls(tuple(text[i : i + size] for i in range(0, len(text), size)) or ("",), **kwargs)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def gaps(self) -> list[float]:
        """The pause before each piece."""
        gaps = [self.gap] * len(self.pieces)
        if self.stall and self.stall[0] + 1 < len(gaps):
            gaps[self.stall[0] + 1] += self.stall[1]
        return gaps


@dataclass(frozen=True)
class Status:
    """An error response with the API's error body."""

    code: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = "scripted error"
    delay: float = 0.0


Step = Text | Status


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class FakeLLMServer:
    """Base: a threaded HTTP server with a script and a request log. Use as a context manager."""

    path = ""

    def __init__(self) -> None:
        self.script: deque[Step] = deque()
        self.requests: list[Recorded] = []
        self.sent_pieces: list[tuple[str, float]] = []
        #: When set, the server also speaks llama.cpp's ``GET /props`` (this context) and ``POST /tokenize``.
        self.n_ctx = 0
        #: Paths of the llama.cpp side endpoints asked (``/props``, ``/tokenize``), apart from `requests`.
        self.side_requests: list[str] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw or b"{}")
                if self.path == "/tokenize" and outer.n_ctx:
                    with outer._lock:
                        outer.side_requests.append(self.path)
                    self._json(200, {"tokens": list(range(outer.count_tokens(str(body.get("content", "")))))})
                    return
                with outer._lock:
                    outer.requests.append(
                        Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                    )
                    step = outer.script.popleft() if outer.script and self.path == outer.path else None
                if self.path != outer.path:
                    self._json(404, {"error": f"no route {self.path}"})
                    return
                if step is None:
                    self._json(500, outer.error_body(500, "the fake server's script is empty"))
                    return
                if step.delay:
                    time.sleep(step.delay)
                try:
                    if isinstance(step, Status):
                        self._json(step.code, outer.error_body(step.code, step.message), step.headers)
                    elif body.get("stream"):
                        self._sse(outer.sse_events(step, body))
                    else:
                        self._json(200, outer.json_body(step, body))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def do_GET(self) -> None:  # noqa: N802
                with outer._lock:
                    outer.side_requests.append(self.path)
                if self.path == "/props" and outer.n_ctx:
                    self._json(200, {"default_generation_settings": {"n_ctx": outer.n_ctx}, "total_slots": 1})
                else:
                    self._json(404, {"error": f"no route {self.path}"})

            def _json(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str | None, str, float, str | None]]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                for name, data, gap, piece in events:
                    if gap:
                        time.sleep(gap)
                    frame = (f"event: {name}\n" if name else "") + f"data: {data}\n\n"
                    self.wfile.write(frame.encode())
                    self.wfile.flush()
                    if piece is not None:
                        outer.sent_pieces.append((piece, time.monotonic()))
                self.close_connection = True

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests.clear()
            self.sent_pieces.clear()
            self.n_ctx = 0
            self.side_requests.clear()

    @staticmethod
    def count_tokens(text: str) -> int:
        """The fake tokenizer of ``/tokenize``: one token per character."""
        return len(text)

    def add(self, *steps: Step) -> None:
        with self._lock:
            self.script.extend(steps)

    # Wire formats, per API.
    def error_body(self, code: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def json_body(self, step: Text, request: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def sse_events(self, step: Text, request: dict[str, Any]) -> list[tuple[str | None, str, float, str | None]]:
        raise NotImplementedError

    # What the client sent, in one shape for both APIs.
    def system_text(self, rec: Recorded) -> str:
        raise NotImplementedError

    def user_text(self, rec: Recorded) -> str:
        raise NotImplementedError


class FakeOpenAI(FakeLLMServer):
    """``POST /v1/chat/completions``: a ``chat.completion`` object, or ``chat.completion.chunk`` events and ``[DONE]``."""

    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return self.origin + "/v1"

    def error_body(self, code: int, message: str) -> dict[str, Any]:
        kind = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(code, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    def json_body(self, step: Text, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "?"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": step.text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": step.finish,
                }
            ],
            "usage": {
                "prompt_tokens": step.input_tokens,
                "completion_tokens": step.output_tokens,
                "total_tokens": step.input_tokens + step.output_tokens,
            },
            "system_fingerprint": "fp_fake",
        }

    def sse_events(self, step: Text, request: dict[str, Any]) -> list[tuple[str | None, str, float, str | None]]:
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": request.get("model", "?"), "system_fingerprint": "fp_fake"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return json.dumps({**base, "choices": [choice]}, ensure_ascii=False)

        events: list[tuple[str | None, str, float, str | None]] = [(None, chunk({"role": "assistant", "content": ""}), 0.0, None)]
        events += [(None, chunk({"content": p}), gap, p) for p, gap in zip(step.pieces, step.gaps(), strict=True)]
        events.append((None, chunk({}, step.finish), 0.0, None))
        if (request.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": step.input_tokens, "completion_tokens": step.output_tokens,
                     "total_tokens": step.input_tokens + step.output_tokens}
            events.append((None, json.dumps({**base, "choices": [], "usage": usage}), 0.0, None))
        events.append((None, "[DONE]", 0.0, None))
        return events

    def system_text(self, rec: Recorded) -> str:
        return "\n".join(m["content"] for m in rec.body["messages"] if m["role"] == "system")

    def user_text(self, rec: Recorded) -> str:
        return "\n".join(m["content"] for m in rec.body["messages"] if m["role"] == "user")


class FakeAnthropic(FakeLLMServer):
    """``POST /v1/messages``: a ``message`` object, or message_start … message_stop events."""

    path = "/v1/messages"

    @property
    def base_url(self) -> str:
        return self.origin

    def error_body(self, code: int, message: str) -> dict[str, Any]:
        kind = {429: "rate_limit_error", 401: "authentication_error", 529: "overloaded_error"}.get(code, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def json_body(self, step: Text, request: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": request.get("model", "?"),
            "content": [{"type": "text", "text": step.text}],
            "stop_reason": "max_tokens" if step.finish == "length" else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": step.input_tokens, "output_tokens": step.output_tokens},
        }

    def sse_events(self, step: Text, request: dict[str, Any]) -> list[tuple[str | None, str, float, str | None]]:
        def ev(name: str, payload: dict[str, Any], gap: float = 0.0, piece: str | None = None) -> tuple[str, str, float, str | None]:
            return (name, json.dumps({"type": name, **payload}, ensure_ascii=False), gap, piece)

        start = {**self.json_body(step, request), "content": [], "stop_reason": None,
                 "usage": {"input_tokens": step.input_tokens, "output_tokens": 1}}
        events = [
            ev("message_start", {"message": start}),
            ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
            ev("ping", {}),
        ]
        events += [ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}}, gap, p)
                   for p, gap in zip(step.pieces, step.gaps(), strict=True)]
        events += [
            ev("content_block_stop", {"index": 0}),
            ev("message_delta", {"delta": {"stop_reason": "max_tokens" if step.finish == "length" else "end_turn",
                                           "stop_sequence": None},
                                 "usage": {"output_tokens": step.output_tokens}}),
            ev("message_stop", {}),
        ]
        return events

    def system_text(self, rec: Recorded) -> str:
        system = rec.body.get("system") or ""
        return system if isinstance(system, str) else "\n".join(b["text"] for b in system)

    def user_text(self, rec: Recorded) -> str:
        out = []
        for m in rec.body["messages"]:
            if m["role"] == "user":
                c = m["content"]
                out.append(c if isinstance(c, str) else "\n".join(b["text"] for b in c if b.get("type") == "text"))
        return "\n".join(out)


def closed_port() -> int:
    """A loopback port nobody listens on: connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
