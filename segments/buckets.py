"""Hour-bucket counters: bounded memory for sliding engagement windows.

An event counts in the bucket of its hour and stays in a window of width ``W``
until ``W`` after the end of that hour, so a count can run at most one hour late,
never early. Buckets are ``[hour, count]`` pairs sorted by hour, ready for JSON.

>>> b: list[list[int]] = []
>>> add(b, 10 * HOUR_MS + 5)
>>> add(b, 10 * HOUR_MS + 9)
>>> add(b, 2 * HOUR_MS)          # out of order: lands in its own hour
>>> b
[[2, 1], [10, 2]]
>>> count(b, now=11 * HOUR_MS, window=HOUR_MS)   # hour 10 counts until 12:00
2
>>> expiries(b, now=11 * HOUR_MS, window=HOUR_MS)
[43200000]
"""

from __future__ import annotations

from bisect import bisect_left

from segments.timefmt import HOUR_MS

__all__ = ["HOUR_MS", "add", "count", "expiries", "prune"]


def add(buckets: list[list[int]], ts: int, n: int = 1) -> None:
    hour = ts // HOUR_MS
    if buckets and buckets[-1][0] == hour:
        buckets[-1][1] += n
        return
    if not buckets or buckets[-1][0] < hour:
        buckets.append([hour, n])
        return
    i = bisect_left(buckets, [hour, -1])
    if i < len(buckets) and buckets[i][0] == hour:
        buckets[i][1] += n
    else:
        buckets.insert(i, [hour, n])


def _first_live(buckets: list[list[int]], now: int, window: int) -> int:
    # bucket h is live while now < (h + 1) * HOUR_MS + window
    threshold = (now - window) // HOUR_MS  # live iff h >= threshold
    return bisect_left(buckets, [threshold, -1])


def count(buckets: list[list[int]], now: int, window: int) -> int:
    """Events in the window that ends at ``now`` (future buckets count too)."""
    return sum(c for _, c in buckets[_first_live(buckets, now, window):])


def expiries(buckets: list[list[int]], now: int, window: int) -> list[int]:
    """Instants after ``now`` at which a live bucket leaves the window."""
    return [(h + 1) * HOUR_MS + window for h, _ in buckets[_first_live(buckets, now, window):]]


def prune(buckets: list[list[int]], now: int, window: int) -> None:
    """Forget buckets that no window of width ``window`` can see any more (most calls,
    one per counter and event, find the first bucket live and forget nothing)."""
    if buckets and buckets[0][0] < (now - window) // HOUR_MS:
        del buckets[:_first_live(buckets, now, window)]
