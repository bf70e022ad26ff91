"""Rate limits per caller over Django's cache, which every worker shares (the database by default).

A fixed window: at most ``limit`` requests per ``window`` seconds per key, so a burst straddling two
windows can reach twice the limit, which is fine for slowing abuse down and costs one cache entry
per key. Over the limit, ``hit`` says how long until the window ends, for ``Retry-After``.
"""

import hashlib
import math
import time
from dataclasses import dataclass

from django.core.cache import cache

from authserver.conf import app_settings


@dataclass(frozen=True)
class RateLimit:
    name: str
    limit: int
    window: int  # seconds

    def hit(self, key: str, *, now: float | None = None) -> int | None:
        """Count one request for ``key``: None when allowed, else the seconds until it will be."""
        now = time.time() if now is None else now
        window_start = int(now // self.window) * self.window
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]  # any key fits any backend's key rules
        cache_key = f"authserver:ratelimit:{self.name}:{digest}:{window_start}"
        cache.add(cache_key, 0, timeout=self.window + 1)
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the entry expired between add and incr
            cache.add(cache_key, 1, timeout=self.window + 1)
            count = 1
        if count <= self.limit:
            return None
        return max(1, math.ceil(window_start + self.window - now))


def registration_rate_limit() -> RateLimit:
    return RateLimit(
        "registration", limit=app_settings.REGISTRATION_RATE_LIMIT, window=app_settings.REGISTRATION_RATE_WINDOW_SECONDS
    )
