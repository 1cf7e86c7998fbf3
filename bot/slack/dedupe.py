"""A bounded, thread-safe set of recently seen keys: Slack retries and double deliveries are answered once."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["SeenKeys"]


class SeenKeys:
    """Remembers keys (event ids, ``channel:ts`` of messages) for ``ttl_seconds``, at most ``max_keys`` of them.

    `claim` is atomic: of several threads claiming the same key, exactly one gets True.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float = 3600.0,
        max_keys: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds <= 0 or max_keys < 1:
            raise ValueError("ttl_seconds must be positive and max_keys at least 1")
        self.ttl = ttl_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, key: str) -> bool:
        """True the first time ``key`` is seen within the TTL; False for a repeat."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            if key in self._seen:
                return False
            self._seen[key] = now
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            return True

    def __contains__(self, key: object) -> bool:
        with self._lock:
            self._expire(self._clock())
            return key in self._seen

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._seen)

    def _expire(self, now: float) -> None:
        while self._seen:
            key, at = next(iter(self._seen.items()))
            if now - at < self.ttl:
                break
            del self._seen[key]
