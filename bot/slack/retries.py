"""How careerbot's Slack Web API client retries: slack_sdk's own retry handlers, bounded.

- **429** (rate limited): retried after the ``Retry-After`` Slack sends (plus up to 1 s of jitter); a wait
  longer than `MAX_RETRY_AFTER` seconds, or an unreadable header, is not waited for: the call fails.
- **500 / 503** and **connection errors** (refused, reset, dropped): retried with exponential backoff and
  jitter (0.5 s, 1 s, 2 s, …).

Each kind is retried at most ``max_retries`` times per call. What still fails raises as usual
(`slack_sdk.errors.SlackApiError`, `urllib.error.URLError`…), and the caller decides. ``on_retry`` is told
of every retry (the request's URL and ``rate_limited``, ``server_error`` or ``connection``) before it waits:
the app counts them (``careerbot_slack_api_retries_total``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

__all__ = ["MAX_RETRY_AFTER", "OnRetry", "retry_handlers"]

log = logging.getLogger(__name__)

#: The longest Retry-After (seconds) a worker sleeps through before trying again.
MAX_RETRY_AFTER = 30.0

#: Told of each retry: (the request's URL, why: ``rate_limited`` | ``server_error`` | ``connection``).
OnRetry = Callable[[str, str], None]


def _tell(on_retry: OnRetry | None, request: Any, reason: str) -> None:
    if on_retry is None:
        return
    try:
        on_retry(str(getattr(request, "url", "") or ""), reason)
    except Exception:  # noqa: BLE001 - counting must never stop a retry
        log.debug("on_retry failed", exc_info=True)


def _retry_after(response: Any) -> float | None:
    """The response's Retry-After in seconds; None when missing or unreadable."""
    for key, values in (response.headers or {}).items():
        if key.lower() == "retry-after":
            raw = values[0] if isinstance(values, list) and values else values
            try:
                seconds = float(raw)
            except (TypeError, ValueError):
                return None
            return seconds if seconds >= 0 else None
    return None


class BoundedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """slack_sdk's 429 handler, except that it gives up on a Retry-After over ``max_wait`` (or a garbled one)."""

    def __init__(
        self, *, max_retry_count: int, max_wait: float = MAX_RETRY_AFTER, on_retry: OnRetry | None = None
    ) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self.on_retry = on_retry

    def _can_retry(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        wait = _retry_after(response)
        if wait is None or wait > self.max_wait:
            log.warning("Slack rate limited a call with Retry-After %s: not waiting that long", wait)
            return False
        return True

    def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> None:
        wait = _retry_after(response) or 0.0
        _tell(self.on_retry, request, "rate_limited")
        log.debug("Slack rate limited a call: retrying in %.0f s (Retry-After)", wait)
        state.next_attempt_requested = True
        time.sleep(wait + random.random())
        state.increment_current_attempt()


class _ToldServerErrorRetryHandler(ServerErrorRetryHandler):
    """slack_sdk's 500/503 handler (exponential backoff with jitter), telling ``on_retry``."""

    def __init__(self, *, max_retry_count: int, on_retry: OnRetry | None) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.on_retry = on_retry

    def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> None:
        _tell(self.on_retry, request, "server_error")
        super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)


class _ToldConnectionErrorRetryHandler(ConnectionErrorRetryHandler):
    """slack_sdk's connection-error handler (refused, reset, dropped), telling ``on_retry``."""

    def __init__(self, *, max_retry_count: int, on_retry: OnRetry | None) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.on_retry = on_retry

    def prepare_for_next_attempt(self, *, state: Any, request: Any, response: Any = None, error: Any = None) -> None:
        _tell(self.on_retry, request, "connection")
        super().prepare_for_next_attempt(state=state, request=request, response=response, error=error)


def retry_handlers(*, max_retries: int, on_retry: OnRetry | None = None) -> list[RetryHandler]:
    """The retry handlers for careerbot's `WebClient` (none when ``max_retries`` is 0); see the module doc."""
    if max_retries <= 0:
        return []
    return [
        BoundedRateLimitRetryHandler(max_retry_count=max_retries, on_retry=on_retry),
        _ToldServerErrorRetryHandler(max_retry_count=max_retries, on_retry=on_retry),
        _ToldConnectionErrorRetryHandler(max_retry_count=max_retries, on_retry=on_retry),
    ]
