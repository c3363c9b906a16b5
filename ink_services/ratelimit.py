"""Per-caller request rate limits for INK's APIs (a token bucket per token or session)."""

from __future__ import annotations

import hashlib
import time

from .auth import AnswerError


class RateLimiter:
    """``rate`` requests per minute on average, bursts of up to ``burst``; 0 turns it off."""

    def __init__(self, rate_per_minute: float = 600, burst: int = 120, max_callers: int = 100_000):
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self.max_callers = max_callers
        self.buckets: dict[str, tuple[float, float]] = {}  # caller -> (tokens, last time)

    def take(self, caller: str) -> float:
        """0 when the request may go; otherwise the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        tokens, last = self.buckets.get(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[caller] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self.buckets) >= self.max_callers and caller not in self.buckets:
            self.buckets.clear()  # a flood of new callers: start over rather than grow
        self.buckets[caller] = (tokens - 1, now)
        return 0.0


def caller_key(handler) -> str:
    """The token as the hub knows it (its id: the same token however the header spells it,
    ``token``, ``Bearer``, extra blanks), or, without one, the user or the address."""
    user = handler.current_user
    if user and user.get("token_id"):
        return "t:" + str(user["token_id"])
    if user:
        return "u:" + user["name"]
    return "a:" + hashlib.sha256(handler.request.remote_ip.encode()).hexdigest()[:16]


def check_rate(handler) -> None:
    limiter: RateLimiter | None = handler.settings.get("rate_limiter")
    if limiter is None:
        return
    wait = limiter.take(caller_key(handler))
    if wait:
        seconds = int(wait) + 1
        raise AnswerError(429, f"too many requests: try again in {seconds} s", {"Retry-After": str(seconds)})
