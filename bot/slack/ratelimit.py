"""A per-user sliding-window rate limit (questions per minute)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["RateLimiter"]

WINDOW_SECONDS = 60.0


class RateLimiter:
    """Allows ``per_minute`` calls per key in any 60-second window; ``per_minute`` 0 allows everything."""

    def __init__(self, *, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 0:
            raise ValueError("per_minute must be 0 (no limit) or more")
        self.per_minute = per_minute
        self._clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        """Count a call for ``key``; False (and not counted) when the window is full."""
        if self.per_minute == 0:
            return True
        now = self._clock()
        with self._lock:
            if len(self._calls) > 10_000:  # forget idle users now and then
                for k in [k for k, q in self._calls.items() if not q or now - q[-1] >= WINDOW_SECONDS]:
                    del self._calls[k]
            calls = self._calls.setdefault(key, deque())
            while calls and now - calls[0] >= WINDOW_SECONDS:
                calls.popleft()
            if len(calls) >= self.per_minute:
                return False
            calls.append(now)
            return True
