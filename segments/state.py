"""Per-customer behavioural state: everything the features need, nothing more.

One :class:`CustomerState` per customer, mutated in place by :func:`apply` and
stored as one compact JSON document (``to_dict``/``from_dict``). It keeps what the
feature catalog reads, bounded: orders of the last 365 days (exact windows), hourly
counters for the engagement windows, the open cart, the latest context, consent and
profile attributes. It never keeps free text a producer may put in an event (e-mail
addresses, phone numbers, street addresses): only the fields read below, and profile
attributes outside :data:`PII_KEYS`.

>>> from segments.events import Interaction
>>> s = CustomerState("c-1")
>>> apply(s, Interaction("e1", "c-1", "purchase", 1_000, {"order_id": "o1", "revenue": 59.0}))
>>> s.purchases_total, s.revenue_total, s.last_purchase
(1, 59.0, 1000)
>>> CustomerState.from_dict(s.to_dict()) == s
True
"""

from __future__ import annotations

import hashlib
from bisect import insort
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from segments import buckets
from segments.events import Interaction
from segments.timefmt import DAY_MS

__all__ = ["COUNTED", "PII_KEYS", "BuyerDays", "CustomerState", "apply", "buyer_days",
           "event_hash"]

ORDER_HORIZON_MS = 365 * DAY_MS
COUNTER_HORIZON_MS = 30 * DAY_MS
DISTINCT_LIMIT = 32
SESSION_GAP_MS = 30 * 60_000

# Event types counted in hourly buckets, under the counter name the features read.
COUNTED: dict[str, str] = {
    "product_view": "product_views",
    "add_to_cart": "cart_adds",
    "search": "searches",
    "email_open": "email_opens",
    "email_click": "email_clicks",
    "app_open": "app_opens",
    "login": "logins",
    "page_view": "page_views",
}

PII_KEYS = frozenset({
    "email", "e_mail", "mail", "phone", "mobile", "telephone", "address", "street",
    "postcode", "postal_code", "zip", "ip", "ip_address", "name", "first_name",
    "last_name", "full_name", "birthdate", "date_of_birth", "ssn", "passport",
})

CONTEXT_FIELDS = ("device", "channel", "tz")
GEO_FIELDS = ("country", "city")


def event_hash(text: str) -> str:
    """A short stable digest: dedupe memory and order ids without keeping raw ids."""
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


@dataclass(slots=True)
class CustomerState:
    """What segstream knows about one customer. Times are epoch ms of event time."""

    customer_id: str
    first_seen: int | None = None
    last_seen: int | None = None
    # purchases: [ts, revenue, order hash, discounted 0/1], sorted by ts, last 365 days
    orders: list[list[Any]] = field(default_factory=list)
    purchases_total: int = 0
    revenue_total: float = 0.0
    first_purchase: int | None = None
    last_purchase: int | None = None
    # buy-till-you-die summary: distinct UTC purchase days, and what the first one spent
    purchase_days: int = 0
    first_day_revenue: float = 0.0
    # engagement: counter name -> [[hour, count], ...]
    counters: dict[str, list[list[int]]] = field(default_factory=dict)
    session_last: int | None = None
    # the current session's intent signals (see _session_signals); reset on a new session
    session: dict[str, Any] = field(default_factory=dict)
    features_used: dict[str, int] = field(default_factory=dict)  # feature -> last use
    devices: dict[str, int] = field(default_factory=dict)  # device -> last seen
    # cart: product id -> [quantity, price, category]
    cart: dict[str, list[Any]] = field(default_factory=dict)
    cart_updated: int | None = None
    categories: dict[str, int] = field(default_factory=dict)  # category -> views+adds
    context: dict[str, Any] = field(default_factory=dict)
    context_ts: int | None = None
    consent_marketing: bool | None = None
    consent_personalization: bool | None = None
    profile: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    # model memory: open predictions awaiting their label (see segments.models)
    models: dict[str, Any] = field(default_factory=dict)
    # evaluation memory
    segments: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # event hash -> ts (dedupe)
    due: int | None = None  # next instant a time-based transition may happen
    definitions: str | None = None  # version of the definitions that set `segments`
    moments: dict[str, Any] = field(default_factory=dict)  # per-moment policy memory
    # the offset of the latest record applied, on the customer's partition: a record
    # delivered again after a takeover is recognised by it (Processor.recover), even
    # when its event id has left ``seen``
    applied_offset: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fields, shallow: nested lists and dicts are the state's own (serialize,
        don't mutate). ``dataclasses.asdict`` deep-copied them, at a third of the
        worker's time."""
        return {name: getattr(self, name) for name in _FIELD_NAMES}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerState:
        return cls(**data)

    @property
    def cart_items(self) -> int:
        return sum(int(item[0]) for item in self.cart.values())

    @property
    def cart_value(self) -> float:
        return round(sum(float(item[0] * (item[1] or 0.0)) for item in self.cart.values()), 2)


class BuyerDays(NamedTuple):
    """A buyer as BG/NBD counts: in UTC days, all orders of a day one purchase."""

    first_day: int       # the first purchase's day number
    last_day: int        # the latest purchase's
    repeat_days: int     # purchase days after the first (BG/NBD's frequency x)
    monetary: float      # mean spend of those repeat days (0 without any)


def buyer_days(state: CustomerState) -> BuyerDays | None:
    """The customer's :class:`BuyerDays`; None before a purchase.

    >>> buyer_days(CustomerState("c", first_purchase=0, last_purchase=3 * DAY_MS,
    ...            purchases_total=3, revenue_total=30.0, purchase_days=2,
    ...            first_day_revenue=10.0))
    BuyerDays(first_day=0, last_day=3, repeat_days=1, monetary=20.0)
    """
    first, last = state.first_purchase, state.last_purchase
    if first is None or last is None or state.purchases_total == 0:
        return None
    x = max(state.purchase_days - 1, 0)
    monetary = max(state.revenue_total - state.first_day_revenue, 0.0) / x if x else 0.0
    return BuyerDays(first // DAY_MS, last // DAY_MS, x, monetary)


def apply(state: CustomerState, event: Interaction) -> None:
    """Fold one validated event into the state."""
    ts = event.ts
    if state.first_seen is None or ts < state.first_seen:
        state.first_seen = ts
    new_session = _touch_session(state, ts)
    _session_signals(state, event, new_session)
    if state.last_seen is None or ts > state.last_seen:
        state.last_seen = ts
    _update_context(state, event)
    counter = COUNTED.get(event.type)
    if counter is not None:
        buckets.add(state.counters.setdefault(counter, []), ts)
    handler = _HANDLERS.get(event.type)
    if handler is not None:
        handler(state, event)
    _prune(state)


def _touch_session(state: CustomerState, ts: int, gap: int = SESSION_GAP_MS) -> bool:
    # A session starts after `gap` of silence; late events inside a past gap are not
    # re-split (documented: sessions count starts seen in arrival order).
    last = state.session_last
    started = last is None or ts - last > gap
    if started:
        buckets.add(state.counters.setdefault("sessions", []), ts)
    if last is None or ts > last:
        state.session_last = ts
    return started


_SESSION_KINDS = {"product_view": "views", "search": "searches", "add_to_cart": "cart_adds",
                  "content_view": "content", "store_locator": "locator"}


def _session_signals(state: CustomerState, event: Interaction, new_session: bool) -> None:
    """Counts of the current session: what the micro-moment scores read.

    A late event from a past session (older than the gap before the latest event)
    adds nothing: the moment it belonged to has passed.
    """
    if new_session:
        state.session = {"start": event.ts, "events": 0}
    elif state.session_last is not None and event.ts < state.session_last - SESSION_GAP_MS:
        return
    session = state.session
    session["events"] = session.get("events", 0) + 1
    kind = _SESSION_KINDS.get(event.type)
    if kind is None:
        return
    session[kind] = session.get(kind, 0) + 1
    props = event.properties
    if event.type in ("product_view", "add_to_cart"):
        category, product = props.get("category"), props.get("product_id")
        if isinstance(category, str):
            _bump(session.setdefault("cats", {}), category[:64])
        if isinstance(product, str) and event.type == "product_view":
            _bump(session.setdefault("products", {}), product[:64])


def _update_context(state: CustomerState, event: Interaction) -> None:
    ctx = event.context
    if not ctx:
        return
    device = ctx.get("device")
    if isinstance(device, str):
        state.devices[device] = max(event.ts, state.devices.get(device, event.ts))
        _cap(state.devices)
    if state.context_ts is not None and event.ts < state.context_ts:
        return  # an older event does not overwrite newer context
    state.context_ts = event.ts
    for key in CONTEXT_FIELDS:
        if key in ctx:
            state.context[key] = ctx[key]
    geo = ctx.get("geo")
    if isinstance(geo, dict):
        for key in GEO_FIELDS:
            if key in geo:
                state.context[key] = geo[key]


def _purchase(state: CustomerState, event: Interaction) -> None:
    props = event.properties
    revenue = float(props["revenue"])
    discounted = 1 if (props.get("discount") or 0) > 0 else 0
    insort(state.orders, [event.ts, revenue, event_hash(str(props["order_id"])), discounted])
    state.purchases_total += 1
    state.revenue_total = round(state.revenue_total + revenue, 2)
    _purchase_day(state, event.ts, revenue)
    if state.first_purchase is None or event.ts < state.first_purchase:
        state.first_purchase = event.ts
    if state.last_purchase is None or event.ts > state.last_purchase:
        state.last_purchase = event.ts
    if state.cart_updated is None or event.ts >= state.cart_updated:
        state.cart.clear()
        state.cart_updated = event.ts


def _purchase_day(state: CustomerState, ts: int, revenue: float) -> None:
    """Count distinct purchase days as BG/NBD does (all orders of a UTC day are one).

    Days are counted in arrival order: an order later than the last purchase on a new
    day is a new day; one on the first day adds to the first day's spend. A late
    order on an earlier, unseen day is not counted as a day (documented limit)."""
    day = ts // DAY_MS
    if state.first_purchase is None:
        state.purchase_days = 1
        state.first_day_revenue = round(revenue, 2)
        return
    if day == state.first_purchase // DAY_MS:
        state.first_day_revenue = round(state.first_day_revenue + revenue, 2)
    elif state.last_purchase is not None and day > state.last_purchase // DAY_MS:
        state.purchase_days += 1


def _refund(state: CustomerState, event: Interaction) -> None:
    amount = float(event.properties["amount"])
    order = event_hash(str(event.properties["order_id"]))
    for row in state.orders:
        if row[2] == order:
            row[1] = round(max(0.0, row[1] - amount), 2)
            break
    state.revenue_total = round(max(0.0, state.revenue_total - amount), 2)


def _add_to_cart(state: CustomerState, event: Interaction) -> None:
    props = event.properties
    item = state.cart.setdefault(str(props["product_id"]), [0, None, None])
    item[0] += int(props.get("quantity") or 1)
    if props.get("price") is not None:
        item[1] = float(props["price"])
    if props.get("category") is not None:
        item[2] = props["category"]
        _bump(state.categories, props["category"])
    _cart_touched(state, event.ts)


def _remove_from_cart(state: CustomerState, event: Interaction) -> None:
    props = event.properties
    product = str(props["product_id"])
    item = state.cart.get(product)
    if item is not None:
        item[0] -= int(props.get("quantity") or item[0])
        if item[0] <= 0:
            del state.cart[product]
    _cart_touched(state, event.ts)


def _cart_touched(state: CustomerState, ts: int) -> None:
    if state.cart_updated is None or ts > state.cart_updated:
        state.cart_updated = ts


def _product_view(state: CustomerState, event: Interaction) -> None:
    category = event.properties.get("category")
    if category is not None:
        _bump(state.categories, category)


def _feature_use(state: CustomerState, event: Interaction) -> None:
    feature = str(event.properties["feature"])
    state.features_used[feature] = max(event.ts, state.features_used.get(feature, event.ts))
    _cap(state.features_used)


def _consent(state: CustomerState, event: Interaction) -> None:
    props = event.properties
    if "marketing" in props:
        state.consent_marketing = bool(props["marketing"])
    if "personalization" in props:
        state.consent_personalization = bool(props["personalization"])


def _profile(state: CustomerState, event: Interaction) -> None:
    attributes = event.properties.get("attributes") or {}
    for key, value in attributes.items():
        if key.lower() in PII_KEYS or (isinstance(value, str) and "@" in value):
            continue
        state.profile[key] = value


_HANDLERS = {
    "purchase": _purchase,
    "refund": _refund,
    "add_to_cart": _add_to_cart,
    "remove_from_cart": _remove_from_cart,
    "product_view": _product_view,
    "feature_use": _feature_use,
    "consent_update": _consent,
    "profile_update": _profile,
}


def _bump(counts: dict[str, int], key: str) -> None:
    counts[key] = counts.get(key, 0) + 1
    if len(counts) > DISTINCT_LIMIT:
        # keep the strongest affinities; ties broken by name for determinism
        weakest = min(counts.items(), key=lambda kv: (kv[1], kv[0]))
        del counts[weakest[0]]


def _cap(last_seen: dict[str, int]) -> None:
    if len(last_seen) > DISTINCT_LIMIT:
        oldest = min(last_seen.items(), key=lambda kv: (kv[1], kv[0]))
        del last_seen[oldest[0]]


def _prune(state: CustomerState) -> None:
    now = state.last_seen or 0
    cutoff = now - ORDER_HORIZON_MS
    if state.orders and state.orders[0][0] <= cutoff:
        state.orders = [row for row in state.orders if row[0] > cutoff]
    for series in state.counters.values():
        buckets.prune(series, now, COUNTER_HORIZON_MS)
    for last_seen in (state.features_used, state.devices):
        for key in [k for k, t in last_seen.items() if t <= now - COUNTER_HORIZON_MS]:
            del last_seen[key]


_FIELD_NAMES = tuple(f.name for f in fields(CustomerState))
