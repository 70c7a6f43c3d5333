"""Rate limits of expensive requests: a token bucket per (user, kind), refilled continuously.

Hand-written (a few lines) rather than a dependency: the service runs in one process, and the buckets live in
memory; behind several replicas, put the same buckets in Redis.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..errors import ConfigurationError, RateLimitedError

__all__ = ["RateLimiter"]


class RateLimiter:
    """``per_minute`` requests per user and kind, with bursts of up to ``burst`` (default: ``per_minute``)."""

    def __init__(
        self, per_minute: int, burst: int | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if per_minute < 1:
            raise ConfigurationError("rate_limit_per_minute", per_minute, "must be ≥ 1")
        self.rate = per_minute / 60.0
        self.burst = float(burst if burst is not None else per_minute)
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, user: str, what: str) -> None:
        """Spend one token of ``user`` for ``what``; RateLimitedError (HTTP 429) when the bucket is empty."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get((user, what), (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[(user, what)] = (tokens, now)
                raise RateLimitedError(user, what, (1.0 - tokens) / self.rate)
            self._buckets[(user, what)] = (tokens - 1.0, now)
