"""A local WebSocket standing in for Slack's Socket Mode endpoint (``apps.connections.open`` returns its ``url``)."""

from __future__ import annotations

import json
import queue
import threading
import uuid
from typing import Any

from .slack_events import event_callback, mention_event, new_ts, socket_envelope

__all__ = ["SocketModeServer"]


class SocketModeServer:
    """A local WebSocket standing in for Slack's Socket Mode endpoint: says hello, sends envelopes, collects acks."""

    def __init__(self) -> None:
        from websockets.sync.server import serve

        self.acks: queue.Queue[str] = queue.Queue()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        self._server = serve(self._session, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._server.socket.getsockname()[1]}/link/?ticket=t1&app_id=A111"

    def _session(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        ws.send(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A111"},
                            "debug_info": {"host": "fake", "approximate_connection_time": 3600}}))
        with self._lock:
            self._clients.append(ws)
        try:
            for message in ws:
                data = json.loads(message)
                if data.get("envelope_id"):
                    self.acks.put(data["envelope_id"])
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self._clients.remove(ws)

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._clients)

    def send(self, envelope: dict[str, Any]) -> None:
        """Send an envelope to the most recently connected client."""
        with self._lock:
            assert self._clients, "no Socket Mode client is connected"
            self._clients[-1].send(json.dumps(envelope, ensure_ascii=False))

    def mention(self, text: str, *, channel: str = "C200") -> tuple[str, str]:
        """Send an ``app_mention`` envelope to the connected client; (the message ts, the envelope id)."""
        ts, envelope_id = new_ts(), f"env-{uuid.uuid4().hex[:8]}"
        payload = event_callback(mention_event(text, ts=ts, channel=channel))
        self.send(socket_envelope(payload, envelope_id=envelope_id))
        return ts, envelope_id

    def close(self) -> None:
        self._server.shutdown()
