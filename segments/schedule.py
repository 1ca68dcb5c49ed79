"""When can a customer's segments next change with no new event?

A membership can only flip without an event when a time-dependent feature moves:
a ``days_since_*``/``minutes_since_*`` value crosses a constant a rule compares it
with, an order or an hourly bucket leaves a window, or the local hour turns. The
:class:`Schedule` collects, once per definitions file, which of these the rules read;
:meth:`Schedule.next_due` turns them into the earliest such instant for one customer.
The engine re-evaluates there, so transitions are exact to the millisecond instead
of waiting for a batch.

>>> from segments.definitions import parse_definitions
>>> from segments.state import CustomerState
>>> defs = parse_definitions('''[segments.lapsed]
... when = "purchases_total >= 1 and days_since_last_purchase > 90"''')
>>> s = CustomerState("c-1", last_purchase=1_000, purchases_total=1)
>>> Schedule(defs).next_due(s, now=5_000) == 1_000 + 90 * DAY_MS
True
"""

from __future__ import annotations

from bisect import bisect_left

from segments.definitions import Definitions
from segments.state import CustomerState
from segments.timefmt import DAY_MS, HOUR_MS, MINUTE_MS

__all__ = ["TIME_DEPENDENT", "Schedule", "time_dependent_segments", "with_dependents"]

# time-linear feature -> (its anchor: the state attribute it counts from, unit in ms)
_ANCHORS: dict[str, tuple[str, int]] = {
    "days_since_last_purchase": ("last_purchase", DAY_MS),
    "days_since_first_purchase": ("first_purchase", DAY_MS),
    "days_since_last_seen": ("last_seen", DAY_MS),
    "minutes_since_cart_update": ("cart_updated", MINUTE_MS),
}
# feature over orders -> its window
_ORDER_WINDOWS = {
    "purchases_30d": 30, "purchases_90d": 90, "purchases_365d": 365,
    "revenue_30d": 30, "revenue_90d": 90, "revenue_365d": 365,
    "discount_orders_365d": 365, "holiday_purchases_365d": 365,
}
# feature over hourly buckets -> (counter, window)
_BUCKET_WINDOWS = {
    "sessions_7d": ("sessions", 7), "sessions_30d": ("sessions", 30),
    "page_views_7d": ("page_views", 7), "product_views_7d": ("product_views", 7),
    "cart_adds_7d": ("cart_adds", 7), "searches_7d": ("searches", 7),
    "email_opens_30d": ("email_opens", 30), "email_clicks_30d": ("email_clicks", 30),
    "app_opens_7d": ("app_opens", 7), "logins_30d": ("logins", 30),
}
_LAST_SEEN_WINDOWS = {"distinct_features_30d": "features_used", "devices_30d": "devices"}
_LOCAL_CLOCK = frozenset({"local_hour", "local_weekday"})
TIME_DEPENDENT: frozenset[str] = (frozenset(_ANCHORS) | frozenset(_ORDER_WINDOWS)
                                  | frozenset(_BUCKET_WINDOWS) | frozenset(_LAST_SEEN_WINDOWS)
                                  | _LOCAL_CLOCK)
"""Features whose value moves with the clock alone, with no event."""
_QUARTER_HOUR = 15 * MINUTE_MS  # every time zone's offset is a multiple of it


class Schedule:
    """What the rules of one definitions file make time-dependent."""

    def __init__(self, definitions: Definitions) -> None:
        reads: set[str] = set()
        thresholds: dict[str, set[float]] = {}
        polled: set[str] = set()
        for segment in definitions.segments.values():
            reads.update(segment.when.features)
            for name, values in segment.when.thresholds.items():
                thresholds.setdefault(name, set()).update(values)
            polled.update(segment.when.needs_polling)
        self.thresholds = {k: tuple(sorted(v)) for k, v in thresholds.items()}
        self.polled = {name: _ANCHORS[name][1] // (1 if name.startswith("minutes") else 24)
                       for name in polled if name in _ANCHORS}
        self.order_windows = sorted({_ORDER_WINDOWS[f] * DAY_MS
                                     for f in reads if f in _ORDER_WINDOWS})
        self.bucket_windows = sorted({(c, d * DAY_MS) for f, (c, d) in _BUCKET_WINDOWS.items()
                                      if f in reads})
        self.last_seen_windows = sorted({_LAST_SEEN_WINDOWS[f] for f in reads
                                         if f in _LAST_SEEN_WINDOWS})
        self.local_clock = bool(reads & _LOCAL_CLOCK)
        # what may move at an instant of each source: the features read over it
        self._order_features = {w: frozenset(f for f in reads if f in _ORDER_WINDOWS
                                             and _ORDER_WINDOWS[f] * DAY_MS == w)
                                for w in self.order_windows}
        self._bucket_features = {(c, w): frozenset(
            f for f in reads
            if f in _BUCKET_WINDOWS and _BUCKET_WINDOWS[f] == (c, w // DAY_MS))
            for c, w in self.bucket_windows}
        self._last_seen_features = {
            a: frozenset(f for f in reads if _LAST_SEEN_WINDOWS.get(f) == a)
            for a in self.last_seen_windows}
        self._always = frozenset(self.polled) | (reads & _LOCAL_CLOCK)
        # per thresholded feature: its anchor's attribute, the offsets of its cut points
        # from the anchor (ascending, as the cuts are), what moves there; computed once,
        # not at every due instant
        self._threshold_offsets = [
            (_ANCHORS[name][0], tuple(round(c * _ANCHORS[name][1]) for c in cuts),
             frozenset({name}))
            for name, cuts in self.thresholds.items()]
        self._polled_attrs = [(_ANCHORS[name][0], step) for name, step in self.polled.items()]

    def next_due(self, state: CustomerState, now: int) -> int | None:
        """The earliest instant at or after ``now`` where a rule may flip, if any.

        Each source is sorted (cut points, orders by time, buckets by hour), so its
        earliest candidate at or after ``now`` is found by search, not by a scan."""
        return min((t for t, _ in self._candidates(state, now)), default=None)

    def moving_at(self, state: CustomerState, instant: int) -> frozenset[str]:
        """The time-dependent features a rule reads that may move at ``instant`` (a due
        instant of :meth:`next_due`), so only the rules reading them need a look there.
        Polled features and the local clock are always in: their instants are steps
        from the previous one, not computed from the state.

        >>> from segments.definitions import parse_definitions
        >>> defs = parse_definitions('''[segments.lapsed]
        ... when = "days_since_last_purchase > 90 and purchases_30d == 0"''')
        >>> s = CustomerState("c-1", last_purchase=1_000, purchases_total=1)
        >>> sorted(Schedule(defs).moving_at(s, 1_000 + 90 * DAY_MS))
        ['days_since_last_purchase']
        """
        return self._moving_in(self._candidates(state, instant), instant)

    def at_due(self, state: CustomerState, instant: int) -> tuple[frozenset[str], int | None]:
        """``(moving_at(state, instant), next_due(state, instant + 1))``: what a time
        step at ``instant`` needs, from one walk over the sources when none of them
        has a candidate at ``instant`` itself (a step at a model's horizon or at a
        pending trigger's due): each source's earliest instant at or after ``instant``
        is then its earliest after it. A time step changes nothing the schedule reads
        (orders, buckets, anchors, devices, features used), so the engine may ask
        before the step's changes.

        >>> from segments.definitions import parse_definitions
        >>> defs = parse_definitions('''[segments.lapsed]
        ... when = "days_since_last_purchase > 90"''')
        >>> s = CustomerState("c-1", last_purchase=0, purchases_total=1)
        >>> Schedule(defs).at_due(s, DAY_MS) == (frozenset(), 90 * DAY_MS)
        True
        """
        found = self._candidates(state, instant)
        moving = self._moving_in(found, instant)
        if moving:  # a source at the instant, or polled steps or the local clock (their
            # instants count from the one asked for): walked again from just after it
            return moving, self.next_due(state, instant + 1)
        return moving, min((t for t, _ in found), default=None)

    def _moving_in(self, found: list[tuple[int, frozenset[str]]],
                   instant: int) -> frozenset[str]:
        """What moves at ``instant`` among the sources' candidates ``found`` there
        (every source's features are non-empty: empty means no source is at it)."""
        return self._always.union(*(features for t, features in found if t == instant))

    def _candidates(self, state: CustomerState, now: int) -> list[tuple[int, frozenset[str]]]:
        """Each source's earliest instant at or after ``now``, with the features that
        move there."""
        found = []
        for attr, offsets, moving in self._threshold_offsets:
            anchor = getattr(state, attr)
            if anchor is not None:
                for offset in offsets:  # ascending, and so are their instants
                    if (t := anchor + offset) >= now:
                        found.append((t, moving))
                        break
        for attr, step in self._polled_attrs:
            if getattr(state, attr) is not None:
                found.append((now + step, self._always))
        orders = state.orders
        if orders:
            for window in self.order_windows:
                # the first order whose ts + window >= now, i.e. ts >= now - window
                # (a one-item list sorts before every row it starts: no key function)
                i = bisect_left(orders, [now - window])
                if i < len(orders):
                    found.append((orders[i][0] + window, self._order_features[window]))
        for key in self.bucket_windows:
            counter, window = key
            buckets = state.counters.get(counter)
            if buckets:
                # the first bucket whose (hour + 1) * HOUR_MS + window >= now
                hour = -((window - now) // HOUR_MS) - 1  # ceil((now - window) / H) - 1
                i = bisect_left(buckets, [hour])
                if i < len(buckets):
                    found.append(((buckets[i][0] + 1) * HOUR_MS + window,
                                  self._bucket_features[key]))
        for attr in self.last_seen_windows:
            horizon = now - 30 * DAY_MS
            seen = [t for t in getattr(state, attr).values() if t >= horizon]
            if seen:
                found.append((min(seen) + 30 * DAY_MS, self._last_seen_features[attr]))
        if self.local_clock and state.last_seen is not None:
            found.append(((now // _QUARTER_HOUR + 1) * _QUARTER_HOUR, self._always))
        return found


def time_dependent_segments(definitions: Definitions) -> frozenset[str]:
    """Segments whose membership can change with no event: they read a
    :data:`TIME_DEPENDENT` feature, or refer to or nest in such a segment.

    >>> from segments.definitions import parse_definitions
    >>> sorted(time_dependent_segments(parse_definitions('''
    ... [segments.buyer]
    ... when = "purchases_total >= 1"
    ... [segments.lapsed]
    ... when = "segment('buyer') and days_since_last_purchase > 90"
    ... [segments.lapsed_vip]
    ... when = "revenue_total > 1000"
    ... parent = "lapsed"
    ... ''')))
    ['lapsed', 'lapsed_vip']
    """
    return with_dependents(definitions, {
        name for name, s in definitions.segments.items() if s.when.features & TIME_DEPENDENT})


def with_dependents(definitions: Definitions, names: set[str]) -> frozenset[str]:
    """``names`` and every segment that refers to or nests in one of them."""
    segments = definitions.segments
    grew = True
    while grew:
        before = len(names)
        names |= {name for name, s in segments.items()
                  if s.when.segments & names or s.parent in names}
        grew = len(names) > before
    return frozenset(names)
