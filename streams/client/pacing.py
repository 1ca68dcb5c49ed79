"""Pacing the broker replay: when to send each event, and at most how many a second.

With ``--speed`` s, the event with time ``ts`` is due at ``wall_start + (ts -
ts_first) / s`` (:func:`schedule`), computed from the start every time, so sleeping
never accumulates drift. ``--rate`` caps the events per second with a
:class:`TokenBucket`.

>>> schedule(61_000, 1_000, wall_start=100.0, speed=60.0)  # a minute later, at 60x
101.0
>>> bucket = TokenBucket(rate=10.0, now=0.0, burst=1.0)
>>> bucket.delay(0.0), round(bucket.delay(0.0), 3)  # one token, then wait for the next
(0.0, 0.1)
"""

from __future__ import annotations

__all__ = ["TokenBucket", "schedule"]


def schedule(ts: int, ts_first: int, wall_start: float, speed: float) -> float:
    """Wall-clock instant (same clock as ``wall_start``, seconds) to send event ``ts``."""
    return wall_start + (ts - ts_first) / (1000.0 * speed)


class TokenBucket:
    """At most ``rate`` events a second on average, bursts of at most ``burst``."""

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 20)
        self.tokens = self.burst
        self.stamp = now

    def delay(self, now: float) -> float:
        """Take a token if there is one (0.0); else the seconds until there is one."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
