"""Per-app quotas: a token bucket per client id (rate per second, burst), answered with 429.

Kept in the serving process's memory: one coordinator process enforces its own share; behind
several replicas, give each its share of the app's quota.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Quotas"]


class Quotas:
    """Token buckets; :meth:`take` answers how long to wait (0: allowed now)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client_id: str, *, rate_per_s: float, burst: int, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens of ``client_id``'s bucket: 0.0 if it could, else the seconds
        until it can (nothing is spent then)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(client_id, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate_per_s)
            if tokens >= cost:
                self._buckets[client_id] = (tokens - cost, now)
                return 0.0
            self._buckets[client_id] = (tokens, now)
            return (cost - tokens) / rate_per_s
