"""Per-tenant token buckets: one noisy sender cannot flood the pipeline behind the webhooks.

A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes one or
is refused with the seconds until one is back (the `Retry-After` of a 429). Buckets live in the
function instance: a limit of `rate` per instance, `rate × max instances` in all — a shared
counter in Firestore would add a round trip to every webhook for a limit that only has to be
of the right order, not exact.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate, self._burst, self._clock = rate, burst, clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float | None = None, burst: float | None = None) -> float:
        """0 when allowed; otherwise the whole seconds to wait (≥ 1)."""
        rate, burst = rate or self._rate, burst or self._burst
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return float(max(1, math.ceil((1 - bucket.tokens) / rate)))
