"""What Slack sends: message timestamps, request signatures, Events API payloads, Socket Mode envelopes.

Shared by the Slack tests and the deployment tests, so that every test speaks
the same wire format.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
import uuid
from typing import Any

from .fake_slack import BOT_USER_ID, TEAM_ID

__all__ = ["new_ts", "sign", "mention_event", "event_callback", "socket_envelope", "feedback_click"]

_ts = itertools.count(1)


def new_ts() -> str:
    """A fresh, increasing Slack message timestamp."""
    return f"{1700000000 + next(_ts)}.{next(_ts):06d}"


def sign(body: str, *, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack sends: ``v0=`` + hex HMAC-SHA256(secret, ``v0:{ts}:{body}``)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def mention_event(text: str, *, ts: str, channel: str = "C100", user: str = "U1") -> dict[str, Any]:
    """An ``app_mention`` event: ``@careerbot {text}``."""
    return {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {text}", "ts": ts, "channel": channel}


def event_callback(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The Events API ``event_callback`` body that carries ``event``."""
    return {
        "token": "verification-token-unused",
        "team_id": TEAM_ID,
        "api_app_id": "A111",
        "event": {"event_ts": event.get("ts", new_ts()), **event},
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
    }


def socket_envelope(payload: dict[str, Any], *, envelope_id: str, retry_attempt: int = 0, retry_reason: str = "") -> dict[str, Any]:
    """A Socket Mode ``events_api`` envelope around an ``event_callback`` payload."""
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry_attempt,
        "retry_reason": retry_reason,
        "payload": payload,
    }


def feedback_click(
    value: str, *, channel: str, message_ts: str, thread_ts: str | None, user: str, response_url: str
) -> dict[str, Any]:
    """The ``block_actions`` payload of a click on a feedback button whose value is ``value``."""
    return {
        "type": "block_actions",
        "team": {"id": TEAM_ID},
        "user": {"id": user},
        "api_app_id": "A111",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "thread_ts": thread_ts,
            "is_ephemeral": False,
        },
        "channel": {"id": channel},
        "message": {"ts": message_ts, "thread_ts": thread_ts, "text": "…"},
        "response_url": response_url,
        "trigger_id": "1.2.3",
        "actions": [
            {
                "type": "feedback_buttons",
                "action_id": "careerbot_feedback",
                "block_id": "b1",
                "value": value,
                "action_ts": str(time.time()),
            }
        ],
    }
