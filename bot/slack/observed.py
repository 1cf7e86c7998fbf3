"""The Slack Web API client, counted: every call that fails for good is told to `Metrics` (method, error).

Retries are counted by the retry handlers (`bot.slack.retries`, ``on_retry``); this counts what is left
after them. Method names come from the request, never a URL, token or channel.
"""

from __future__ import annotations

import http.client
import urllib.error
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from ..metrics import Metrics

__all__ = ["RESPONSE_URL", "ObservedWebClient", "error_label", "method_of"]

#: The ``method`` label of a call to a ``response_url`` (slash commands, ephemeral messages).
RESPONSE_URL = "response_url"


def error_label(exc: BaseException) -> str:
    """How a failed call is labelled: Slack's error code, ``http_<status>``, ``connection`` or ``client_error``."""
    if isinstance(exc, SlackApiError):
        error = exc.response.get("error") if exc.response is not None else None
        if error:
            return str(error)
        return f"http_{getattr(exc.response, 'status_code', 0)}"
    if isinstance(exc, (OSError, urllib.error.URLError, http.client.HTTPException)):
        return "connection"
    return "client_error"


def method_of(url: str, api_url: str) -> str:
    """The Web API method a request URL calls (``chat.postMessage``), or `RESPONSE_URL` for any other URL."""
    if url.startswith(api_url):
        return url[len(api_url) :].split("?", 1)[0].strip("/") or RESPONSE_URL
    return RESPONSE_URL


class ObservedWebClient(WebClient):
    """A `WebClient` that counts every call failing after its retries in ``metrics``; otherwise the same."""

    def __init__(self, *, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metrics = metrics

    def api_call(self, api_method: str, **kwargs: Any) -> SlackResponse:  # type: ignore[override]
        try:
            return super().api_call(api_method, **kwargs)
        except Exception as exc:
            self.metrics.slack_error(method=api_method, error=error_label(exc))
            raise
