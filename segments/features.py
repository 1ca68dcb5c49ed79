"""Feature values of one customer at one instant, computed on demand.

:class:`Features` is a read-only mapping over a :class:`~segments.state.CustomerState`
and a clock: a rule pays only for the features it reads, each computed once. Every
time is event time; a feature that does not apply yet (no purchase, no model) is
``None``.

>>> from segments.events import Interaction
>>> from segments.state import CustomerState, apply
>>> s = CustomerState("c-1")
>>> apply(s, Interaction("e1", "c-1", "purchase", 0, {"order_id": "o1", "revenue": 80.0}))
>>> f = Features(s, now=40 * DAY_MS)
>>> f["purchases_30d"], f["purchases_90d"], f["days_since_last_purchase"]
(0, 1, 40.0)
>>> f["rfm_segment"] is None  # no population cut points yet: see segments.rfm
True
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from segments import buckets
from segments.rfm import RfmCuts, rfm_segment
from segments.state import CustomerState
from segments.timefmt import DAY_MS, HOUR_MS, MINUTE_MS, local_time, zone

__all__ = ["FEATURES", "FEATURE_GROUPS", "MODEL_FEATURES", "Features", "ModelScorer"]

MODEL_FEATURES = ("purchase_propensity", "churn_risk", "p_alive", "expected_clv_365d",
                  "cluster")
"""Features a model computes (:mod:`segments.models`); null until that model is warm."""


_MISSING = object()


class ModelScorer(Protocol):
    """What computes the model features: a partition's models (segments.models)."""

    def score(self, name: str, features: Features) -> Any: ...


class Features(Mapping[str, Any]):
    """Lazy, cached feature values for ``state`` at instant ``now``.

    With ``models``, the model features are computed from the partition's current
    models when first read; without, they are the values the customer was last
    scored with (``state.scores``), which is what ``segstream profile`` shows."""

    __slots__ = ("_cache", "default_tz", "models", "now", "rfm", "state")

    def __init__(self, state: CustomerState, now: int, *, rfm: RfmCuts | None = None,
                 default_tz: str = "UTC", models: ModelScorer | None = None) -> None:
        self.state = state
        self.now = now
        self.rfm = rfm
        self.default_tz = default_tz
        self.models = models
        self._cache: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        cache = self._cache
        value = cache.get(name, _MISSING)
        if value is not _MISSING:
            return value
        group = _GROUP_OF.get(name)
        if group is not None:  # its siblings come in the same pass
            group(self, cache)
            return cache[name]
        compute = FEATURES.get(name)
        if compute is None:
            if name.startswith("profile."):
                value = self.state.profile.get(name[8:])
            else:
                raise KeyError(name)
        else:
            value = compute(self)
        self._cache[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(FEATURES)

    def __len__(self) -> int:
        return len(FEATURES)

    def read_all(self, names: tuple[str, ...],
                 get: Callable[[dict[str, Any]], tuple[Any, ...]]) -> tuple[Any, ...]:
        """The features ``names`` at once; ``get`` is ``operator.itemgetter(*names)``
        (two or more names), which reads them from the cache in one call once each is
        computed (a model vector reads 18)."""
        try:
            return get(self._cache)
        except KeyError:
            for name in names:
                self[name]
            return get(self._cache)

    # helpers the feature functions share
    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """A value computed once per instance under ``key`` (not a feature name)."""
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = compute()
            return value

    def orders_since(self, window: int) -> list[list[Any]]:
        key = f"orders/{window}"  # purchases_90d and revenue_90d share one scan
        rows: list[list[Any]] | None = self._cache.get(key)
        if rows is None:
            cutoff, now = self.now - window, self.now
            rows = self._cache[key] = [row for row in self.state.orders
                                       if cutoff < row[0] <= now]
        return rows

    def counted(self, counter: str, window: int) -> int:
        series = self.state.counters.get(counter)
        return buckets.count(series, self.now, window) if series else 0

    def days_since(self, instant: int | None) -> float | None:
        return None if instant is None else (self.now - instant) / DAY_MS

    def local(self) -> datetime:
        return local_time(self.now, self.state.context.get("tz"), self.default_tz)


def _count(window_days: int) -> Callable[[Features], int]:
    return lambda f: len(f.orders_since(window_days * DAY_MS))


def _revenue(window_days: int) -> Callable[[Features], float]:
    return lambda f: round(sum(row[1] for row in f.orders_since(window_days * DAY_MS)), 2)


def _counter(name: str, window_days: int) -> Callable[[Features], int]:
    return lambda f: f.counted(name, window_days * DAY_MS)


def _distinct(attr: str, window_days: int) -> Callable[[Features], int]:
    def compute(f: Features) -> int:
        cutoff = f.now - window_days * DAY_MS
        return sum(1 for t in getattr(f.state, attr).values() if cutoff < t <= f.now)
    return compute


def _avg_order_value(f: Features) -> float | None:
    s = f.state
    return round(s.revenue_total / s.purchases_total, 2) if s.purchases_total else None


def _minutes_since_cart_update(f: Features) -> float | None:
    updated = f.state.cart_updated
    return None if updated is None else (f.now - updated) / MINUTE_MS


def _rfm_r(f: Features) -> int | None:
    last = f.state.last_purchase
    return None if f.rfm is None or last is None else f.rfm.score_r(last)


def _rfm_f(f: Features) -> int | None:
    if f.rfm is None or f.state.purchases_total == 0:
        return None
    return f.rfm.score_f(f.state.purchases_total)


def _rfm_m(f: Features) -> int | None:
    if f.rfm is None or f.state.purchases_total == 0:
        return None
    return f.rfm.score_m(f.state.revenue_total)


def _rfm_segment(f: Features) -> str | None:
    r, fr = f["rfm_r"], f["rfm_f"]
    return None if r is None or fr is None else rfm_segment(r, fr)


def _holiday_purchases(f: Features) -> int:
    return sum(1 for row in f.orders_since(365 * DAY_MS) if _is_holiday(row[0]))


def _is_holiday(ts: int) -> bool:
    return _is_holiday_day(ts // DAY_MS)


@lru_cache(maxsize=8192)
def _is_holiday_day(day_number: int) -> bool:
    """Occasion windows in UTC: Black Friday to New Year (Nov 15 - Dec 31), Valentine's
    week (Feb 7 - 14) and Mother's Day fortnight (May 1 - 14)."""
    day = datetime.fromtimestamp(day_number * 86_400, _UTC)
    month, dom = day.month, day.day
    return (month == 11 and dom >= 15) or month == 12 or (month == 2 and 7 <= dom <= 14) or (
        month == 5 and dom <= 14)


_UTC = zone("UTC")


def _session(key: str) -> Callable[[Features], int]:
    return lambda f: int(f.state.session.get(key, 0))


def _session_max(key: str) -> Callable[[Features], int]:
    return lambda f: max(f.state.session.get(key, {}).values(), default=0)


def _score(name: str) -> Callable[[Features], Any]:
    def compute(f: Features) -> Any:
        models = f.models
        return f.state.scores.get(name) if models is None else models.score(name, f)
    return compute


def _context(name: str) -> Callable[[Features], Any]:
    return lambda f: f.state.context.get(name)


# --- groups: features computed together in one pass over the state -----------------
# Each yields exactly what its members' functions in FEATURES yield (the same
# arithmetic in the same order; tests/segments/test_catalog.py compares them): a rule,
# a model vector and a reason then share one scan of the orders and of the counters.

_ORDER_WINDOWS = (30 * DAY_MS, 90 * DAY_MS, 365 * DAY_MS)


def _orders_group(f: Features, cache: dict[str, Any]) -> None:
    now = f.now
    c30, c90, c365 = now - _ORDER_WINDOWS[0], now - _ORDER_WINDOWS[1], now - _ORDER_WINDOWS[2]
    n30 = n90 = n365 = discounts = holidays = 0
    r30: float = 0
    r90: float = 0
    r365: float = 0
    orders = f.state.orders
    # sorted by ts: start at the first order inside the 365-day window; the sums still
    # run from the oldest order in each window to the newest, as they always have
    start = bisect_right(orders, c365, key=_order_ts) if orders and orders[0][0] <= c365 else 0
    holiday = _HOLIDAY_DAYS
    for i in range(start, len(orders)):
        ts, revenue, _, discounted = orders[i]
        if ts > now:
            break
        n365 += 1
        r365 += revenue
        discounts += discounted
        day = ts // DAY_MS
        is_holiday = holiday.get(day)
        if is_holiday is None:
            is_holiday = holiday[day] = _is_holiday_day(day)
        if is_holiday:
            holidays += 1
        if ts > c90:
            n90 += 1
            r90 += revenue
            if ts > c30:
                n30 += 1
                r30 += revenue
    cache.update(purchases_30d=n30, purchases_90d=n90, purchases_365d=n365,
                 revenue_30d=round(r30, 2), revenue_90d=round(r90, 2),
                 revenue_365d=round(r365, 2), discount_orders_365d=discounts,
                 holiday_purchases_365d=holidays)


_HOLIDAY_DAYS: dict[int, bool] = {}  # day number -> in a holiday window (a calendar fact)


def _order_ts(row: list[Any]) -> int:
    return int(row[0])


def _window_sum(series: list[list[int]] | None, threshold: int) -> int:
    if not series:
        return 0
    if series[0][0] >= threshold:
        return sum(c for _, c in series)
    return sum(c for _, c in series[bisect_left(series, [threshold, -1]):])


def _counters_group(f: Features, cache: dict[str, Any]) -> None:
    # a bucket h is live while h >= (now - window) // HOUR_MS (segments.buckets)
    week = (f.now - 7 * DAY_MS) // HOUR_MS
    month = (f.now - 30 * DAY_MS) // HOUR_MS
    get = f.state.counters.get
    cache.update(
        sessions_7d=_window_sum(get("sessions"), week),
        sessions_30d=_window_sum(get("sessions"), month),
        page_views_7d=_window_sum(get("page_views"), week),
        product_views_7d=_window_sum(get("product_views"), week),
        cart_adds_7d=_window_sum(get("cart_adds"), week),
        searches_7d=_window_sum(get("searches"), week),
        email_opens_30d=_window_sum(get("email_opens"), month),
        email_clicks_30d=_window_sum(get("email_clicks"), month),
        app_opens_7d=_window_sum(get("app_opens"), week),
        logins_30d=_window_sum(get("logins"), month))


def _purchase_group(f: Features, cache: dict[str, Any]) -> None:
    s, now = f.state, f.now
    total = s.purchases_total
    last, first, seen = s.last_purchase, s.first_purchase, s.last_seen
    cache.update(
        purchases_total=total, revenue_total=s.revenue_total,
        avg_order_value=round(s.revenue_total / total, 2) if total else None,
        days_since_last_purchase=None if last is None else (now - last) / DAY_MS,
        days_since_first_purchase=None if first is None else (now - first) / DAY_MS,
        days_since_last_seen=None if seen is None else (now - seen) / DAY_MS)


_GROUPS = {
    ("purchases_30d", "purchases_90d", "purchases_365d", "revenue_30d", "revenue_90d",
     "revenue_365d", "discount_orders_365d", "holiday_purchases_365d"): _orders_group,
    ("sessions_7d", "sessions_30d", "page_views_7d", "product_views_7d", "cart_adds_7d",
     "searches_7d", "email_opens_30d", "email_clicks_30d", "app_opens_7d",
     "logins_30d"): _counters_group,
    ("purchases_total", "revenue_total", "avg_order_value", "days_since_last_purchase",
     "days_since_first_purchase", "days_since_last_seen"): _purchase_group,
}
_GROUP_OF: dict[str, Callable[[Features, dict[str, Any]], None]] = {
    name: group for names, group in _GROUPS.items() for name in names}


FEATURES: dict[str, Callable[[Features], Any]] = {
    # purchases: exact windows over per-order timestamps
    "purchases_total": lambda f: f.state.purchases_total,
    "revenue_total": lambda f: f.state.revenue_total,
    "purchases_30d": _count(30),
    "purchases_90d": _count(90),
    "purchases_365d": _count(365),
    "revenue_30d": _revenue(30),
    "revenue_90d": _revenue(90),
    "revenue_365d": _revenue(365),
    "avg_order_value": _avg_order_value,
    "days_since_last_purchase": lambda f: f.days_since(f.state.last_purchase),
    "days_since_first_purchase": lambda f: f.days_since(f.state.first_purchase),
    "discount_orders_365d": lambda f: sum(row[3] for row in f.orders_since(365 * DAY_MS)),
    "holiday_purchases_365d": _holiday_purchases,
    # engagement: 1-hour buckets
    "sessions_7d": _counter("sessions", 7),
    "sessions_30d": _counter("sessions", 30),
    "page_views_7d": _counter("page_views", 7),
    "product_views_7d": _counter("product_views", 7),
    "cart_adds_7d": _counter("cart_adds", 7),
    "searches_7d": _counter("searches", 7),
    "email_opens_30d": _counter("email_opens", 30),
    "email_clicks_30d": _counter("email_clicks", 30),
    "app_opens_7d": _counter("app_opens", 7),
    "logins_30d": _counter("logins", 30),
    "distinct_features_30d": _distinct("features_used", 30),
    "devices_30d": _distinct("devices", 30),
    "days_since_last_seen": lambda f: f.days_since(f.state.last_seen),
    # the latest session's intent signals (what micro-moment scores read)
    "session_events": _session("events"),
    "session_product_views": _session("views"),
    "session_searches": _session("searches"),
    "session_cart_adds": _session("cart_adds"),
    "session_content_views": _session("content"),
    "session_locator_uses": _session("locator"),
    "session_max_category_views": _session_max("cats"),
    "session_max_product_views": _session_max("products"),
    # cart
    "cart_items": lambda f: f.state.cart_items,
    "cart_value": lambda f: f.state.cart_value,
    "minutes_since_cart_update": _minutes_since_cart_update,
    # RFM
    "rfm_r": _rfm_r,
    "rfm_f": _rfm_f,
    "rfm_m": _rfm_m,
    "rfm_segment": _rfm_segment,
    # context
    "device": _context("device"),
    "channel": _context("channel"),
    "country": _context("country"),
    "city": _context("city"),
    "tz": _context("tz"),
    "local_hour": lambda f: f.local().hour,
    "local_weekday": lambda f: f.local().weekday(),
    # consent
    "consent_marketing": lambda f: f.state.consent_marketing,
    # models (segments.models; null until warm)
    "purchase_propensity": _score("purchase_propensity"),
    "churn_risk": _score("churn_risk"),
    "p_alive": _score("p_alive"),
    "expected_clv_365d": _score("expected_clv_365d"),
    "cluster": _score("cluster"),
}

FEATURE_GROUPS = {names: group for names, group in _GROUPS.items()}
"""The groups of features computed in one pass, by member names."""
