"""The simulator behind ``segstream simulate``: a seeded, realistic stream of
interactions for demos and tests.

Customers are drawn from behavioural personas (:data:`PERSONAS`); each lives in a
time zone with its city, starts with a consent update, and then visits in sessions
whose rhythm, content and outcome follow the persona. Sessions come as a Poisson
process per customer and happen in local daytime; inside a session, events are
seconds to minutes apart. The output is in time order (ties by event id) and the same
seed always gives the same bytes.

>>> events = list(simulate(customers=20, days=3, seed=7, start=1_700_000_000_000))
>>> events == list(simulate(customers=20, days=3, seed=7, start=1_700_000_000_000))
True
>>> all(a["ts"] <= b["ts"] for a, b in zip(events, events[1:]))
True
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["PERSONAS", "Persona", "simulate"]

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Persona:
    """How one kind of customer behaves."""

    name: str
    share: float            # of the population
    sessions_per_week: float
    views_per_session: float
    cart_rate: float        # chance a session adds to cart
    buy_rate: float         # chance a session with a cart ends in a purchase
    basket_price: float     # typical item price
    discount_rate: float    # chance a purchase uses a discount
    search_rate: float      # chance a session starts with a search
    content_rate: float     # chance of reading a how-to, review or comparison
    locator_rate: float     # chance of looking for a store
    email_rate: float       # e-mail opens per week
    app_share: float        # sessions in the app rather than on the web
    mobile_share: float
    lapse_after_days: float | None = None  # stops visiting after this


PERSONAS: tuple[Persona, ...] = (
    Persona("loyal_regular", 0.15, 3.0, 4, 0.6, 0.7, 35.0, 0.05, 0.3, 0.1, 0.05, 2.0,
            0.4, 0.5),
    Persona("bargain_hunter", 0.15, 2.5, 8, 0.5, 0.35, 20.0, 0.8, 0.7, 0.2, 0.02, 3.0,
            0.2, 0.6),
    Persona("window_shopper", 0.25, 2.0, 6, 0.2, 0.0, 40.0, 0.0, 0.5, 0.3, 0.05, 0.5,
            0.1, 0.5),
    Persona("lapsing_customer", 0.15, 2.0, 4, 0.5, 0.6, 45.0, 0.1, 0.3, 0.1, 0.05, 1.0,
            0.2, 0.4, lapse_after_days=10.0),
    Persona("mobile_first", 0.2, 5.0, 5, 0.5, 0.25, 25.0, 0.2, 0.4, 0.1, 0.1, 0.5,
            0.8, 0.95),
    Persona("researcher", 0.1, 1.5, 5, 0.3, 0.3, 120.0, 0.05, 0.8, 0.8, 0.3, 1.0,
            0.1, 0.3),
)

PLACES: tuple[tuple[str, str, str, float, float], ...] = (
    ("GB", "London", "Europe/London", 51.51, -0.13),
    ("DE", "Berlin", "Europe/Berlin", 52.52, 13.40),
    ("FR", "Paris", "Europe/Paris", 48.86, 2.35),
    ("US", "New York", "America/New_York", 40.71, -74.01),
    ("US", "San Francisco", "America/Los_Angeles", 37.77, -122.42),
    ("JP", "Tokyo", "Asia/Tokyo", 35.68, 139.69),
    ("AU", "Sydney", "Australia/Sydney", -33.87, 151.21),
    ("IN", "Mumbai", "Asia/Kolkata", 19.08, 72.88),
)
_UTC_OFFSET_H = {"Europe/London": 0, "Europe/Berlin": 1, "Europe/Paris": 1,
                 "America/New_York": -5, "America/Los_Angeles": -8, "Asia/Tokyo": 9,
                 "Australia/Sydney": 10, "Asia/Kolkata": 5.5}
CATEGORIES = ("shoes", "outdoor", "kitchen", "books", "toys", "beauty", "electronics",
              "garden")
BRANDS = ("acme", "northwind", "globex", "initech", "umbrella", "hooli")
SEARCHES = ("{c}", "{c} sale", "best {c}", "{c} near me", "cheap {c}", "{c} review",
            "how to choose {c}")
FEATURES = ("wishlist", "size_guide", "ar_try_on", "price_alert", "store_pickup")


def simulate(*, customers: int, days: float, seed: int, start: int) -> Iterator[dict[str, Any]]:
    """Interaction events of ``customers`` over ``days`` from ``start`` (epoch ms)."""
    end = start + round(days * DAY_MS)
    pending: list[tuple[int, str, dict[str, Any]]] = []  # events not yet released
    visits: list[tuple[int, int]] = []  # (next session start, customer index)
    people = [_Customer(i, seed, start) for i in range(customers)]
    for person in people:
        first = person.next_session(start)
        if first < end:
            visits.append((first, person.index))
        heapq.heappush(pending, _sortable(person.consent(start)))
    heapq.heapify(visits)
    while visits:
        at, index = heapq.heappop(visits)
        # sessions last under 2 h: anything earlier than that can no longer be overtaken
        while pending and pending[0][0] < at - 2 * 3_600_000:
            yield heapq.heappop(pending)[2]
        person = people[index]
        for event in person.session(at):
            heapq.heappush(pending, _sortable(event))
        following = person.next_session(at)
        if following < end:
            heapq.heappush(visits, (following, index))
    while pending:
        yield heapq.heappop(pending)[2]


def _sortable(event: dict[str, Any]) -> tuple[int, str, dict[str, Any]]:
    return (event["ts"], event["event_id"], event)


class _Customer:
    def __init__(self, index: int, seed: int, start: int) -> None:
        self.index = index
        self.id = f"sim-{seed}-{index:06d}"
        self.rng = rng = random.Random(f"{seed}/{index}")
        pick = rng.random()
        for persona in PERSONAS:
            pick -= persona.share
            if pick <= 0:
                break
        self.persona = persona
        self.place = PLACES[rng.randrange(len(PLACES))]
        self.start = start
        self.favourite = rng.choice(CATEGORIES)
        self.events = 0
        self.orders = 0
        self.sessions = 0
        self.marketing = rng.random() < 0.85

    def next_event_id(self) -> str:
        self.events += 1
        return f"{self.id}-{self.events:05d}"

    def next_session(self, after: int) -> int:
        persona = self.persona
        if persona.lapse_after_days is not None and \
                after - self.start > persona.lapse_after_days * DAY_MS:
            return 2**62  # gone
        rate_per_ms = persona.sessions_per_week / (7 * DAY_MS)
        gap = -math.log(1.0 - self.rng.random()) / rate_per_ms
        at = after + max(60_000, round(gap))
        # visits happen in local daytime (08:00-23:00): push night sessions to morning
        offset = round(_UTC_OFFSET_H[self.place[2]] * 3_600_000)
        local_hour = ((at + offset) % DAY_MS) / 3_600_000
        if local_hour < 8:
            at += round((8 - local_hour) * 3_600_000) + self.rng.randrange(3_600_000)
        elif local_hour >= 23:
            at += round((32 - local_hour) * 3_600_000) + self.rng.randrange(3_600_000)
        return at

    def consent(self, at: int) -> dict[str, Any]:
        return self._event("consent_update", at - 1000 - self.rng.randrange(DAY_MS),
                           {"marketing": self.marketing, "personalization": True},
                           device="desktop", channel="web")

    def session(self, at: int) -> list[dict[str, Any]]:
        rng, persona = self.rng, self.persona
        self.sessions += 1
        channel = "app" if rng.random() < persona.app_share else "web"
        device = "mobile" if channel == "app" or rng.random() < persona.mobile_share \
            else "desktop"
        session_id = f"{self.id}-s{self.sessions}"
        out: list[dict[str, Any]] = []
        clock = at

        def emit(kind: str, props: dict[str, Any] | None = None) -> None:
            nonlocal clock
            out.append(self._event(kind, clock, props, device=device, channel=channel,
                                   session_id=session_id))
            clock += 5_000 + rng.randrange(90_000)

        if channel == "app":
            emit("app_open")
        if rng.random() < persona.email_rate / max(persona.sessions_per_week, 0.1):
            emit("email_open", {"campaign_id": f"cmp-{rng.randrange(20)}"})
            if rng.random() < 0.3:
                emit("email_click", {"campaign_id": f"cmp-{rng.randrange(20)}",
                                     "link": "https://shop.example/offer"})
        category = self.favourite if rng.random() < 0.6 else rng.choice(CATEGORIES)
        if rng.random() < persona.search_rate:
            query = rng.choice(SEARCHES).format(c=category)
            emit("search", {"query": query, "results": rng.randrange(0, 200)})
        if rng.random() < persona.locator_rate:
            emit("store_locator", {"query": f"{self.place[1]} {category}"})
        if rng.random() < persona.content_rate:
            kind = rng.choice(("how_to", "article", "comparison", "review", "video"))
            emit("content_view", {"content_id": f"{kind}-{category}-{rng.randrange(10)}",
                                  "kind": kind, "topic": category})
        if channel == "app" and rng.random() < 0.3:
            emit("feature_use", {"feature": rng.choice(FEATURES)})
        cart: list[dict[str, Any]] = []
        for _ in range(max(1, round(rng.expovariate(1 / persona.views_per_session)))):
            product = f"p-{category}-{rng.randrange(40):02d}"
            price = round(persona.basket_price * rng.uniform(0.5, 1.8), 2)
            emit("product_view", {"product_id": product, "category": category,
                                  "brand": rng.choice(BRANDS), "price": price})
            if rng.random() < persona.cart_rate / max(persona.views_per_session, 1):
                item = {"product_id": product, "quantity": 1 + (rng.random() < 0.2),
                        "price": price, "category": category}
                cart.append(item)
                emit("add_to_cart", dict(item))
        if cart and rng.random() < 0.15:
            dropped = cart.pop()
            emit("remove_from_cart", {"product_id": dropped["product_id"],
                                      "quantity": dropped["quantity"]})
        if cart and rng.random() < persona.buy_rate:
            value = round(sum(i["price"] * i["quantity"] for i in cart), 2)
            emit("checkout_start", {"cart_value": value})
            self.orders += 1
            props: dict[str, Any] = {"order_id": f"{self.id}-o{self.orders}",
                                     "revenue": value, "currency": "EUR", "items": cart}
            if rng.random() < persona.discount_rate:
                props["discount"] = round(value * 0.15, 2)
                props["revenue"] = round(value - props["discount"], 2)
            emit("purchase", props)
            if rng.random() < 0.03:
                emit("refund", {"order_id": props["order_id"],
                                "amount": props["revenue"]})
        return out

    def _event(self, kind: str, ts: int, props: dict[str, Any] | None, *, device: str,
               channel: str, session_id: str | None = None) -> dict[str, Any]:
        country, city, tz, lat, lon = self.place
        context: dict[str, Any] = {"device": device, "channel": channel,
                                   "geo": {"country": country, "city": city,
                                           "lat": lat, "lon": lon},
                                   "tz": tz}
        if session_id is not None:
            context["session_id"] = session_id
        event: dict[str, Any] = {"event_id": self.next_event_id(), "customer_id": self.id,
                                 "type": kind, "ts": ts, "context": context}
        if props:
            event["properties"] = props
        return event
