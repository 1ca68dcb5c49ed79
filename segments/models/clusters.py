"""Discovered microsegments: a fixed clustering space, archetypes, sequential k-means.

Cluster ``i`` starts at archetype ``i`` on every partition and worker and only drifts,
so an id means the same everywhere and after any restart.

>>> [round(v, 6) for v in unscale(scale(ARCHETYPES[2].values))] == list(ARCHETYPES[2].values)
True
>>> Clusterer([[0.0, 0.0], [1.0, 1.0]]).assign([0.9, 0.8])
1
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

from segments.models.vector import Base

__all__ = ["ARCHETYPES", "CLUSTER_RATE", "CLUSTER_SPACE", "Archetype", "ClusterFeature",
           "Clusterer", "cluster_values", "scale", "unscale"]


class ClusterFeature(NamedTuple):
    name: str
    meaning: str
    cap: float | None  # scaled = log1p(min(v, cap)) / log1p(cap); None: a share in [0, 1]


CLUSTER_SPACE: tuple[ClusterFeature, ...] = (
    ClusterFeature("days_since_last_purchase", "days since the latest purchase; 365 "
                   "when none", 365.0),
    ClusterFeature("purchases_total", "orders ever", 50.0),
    ClusterFeature("avg_order_value", "revenue per order; 0 when none", 1000.0),
    ClusterFeature("days_since_last_seen", "days since any event", 365.0),
    ClusterFeature("sessions_30d", "sessions in 30 days", 60.0),
    ClusterFeature("product_views_7d", "product views in 7 days", 100.0),
    ClusterFeature("cart_adds_7d", "cart adds in 7 days", 20.0),
    ClusterFeature("email_engagement_30d", "email_opens_30d + email_clicks_30d", 30.0),
    ClusterFeature("discount_share_365d", "discount_orders_365d / purchases_365d; 0 when "
                   "none", None),
)
"""The space the clusterer works in: a FIXED scaling of plain values (not an online
scaler), so a centre means the same on every partition and after any restart."""


_SCALE = tuple((spec.cap, None if spec.cap is None else math.log1p(spec.cap))
               for spec in CLUSTER_SPACE)


def scale(plain: Iterable[float]) -> list[float]:
    """Plain values (in :data:`CLUSTER_SPACE` order) to the clustering space, each in [0, 1]."""
    out = []
    log1p = math.log1p
    for value, (cap, top) in zip(plain, _SCALE, strict=True):
        if cap is None or top is None:
            out.append(min(max(value, 0.0), 1.0))
        else:
            out.append(log1p(min(max(value, 0.0), cap)) / top)
    return out


def unscale(scaled: Iterable[float]) -> list[float]:
    """The inverse of :func:`scale` (within the caps)."""
    out = []
    for value, spec in zip(scaled, CLUSTER_SPACE, strict=True):
        out.append(value if spec.cap is None else math.expm1(value * math.log1p(spec.cap)))
    return out


def cluster_values(b: Base) -> list[float]:
    """The customer's plain values in :data:`CLUSTER_SPACE` order."""
    recency = b.days_since_last_purchase
    aov = b.avg_order_value
    return [
        365.0 if recency is None else recency,
        float(b.purchases_total),
        0.0 if aov is None else aov,
        b.days_since_last_seen or 0.0,
        float(b.sessions_30d),
        float(b.product_views_7d),
        float(b.cart_adds_7d),
        float(b.email_opens_30d + b.email_clicks_30d),
        b.discount_orders_365d / b.purchases_365d if b.purchases_365d else 0.0,
    ]


class Archetype(NamedTuple):
    name: str
    description: str
    values: tuple[float, ...]  # plain values, CLUSTER_SPACE order


ARCHETYPES: tuple[Archetype, ...] = (
    #                                     recency orders  aov  seen sess views adds mail disc
    Archetype("new_browser", "recent visitor who looks around, no purchase yet",
              (365.0, 0.0, 0.0, 2.0, 3.0, 10.0, 0.0, 0.0, 0.0)),
    Archetype("one_time_buyer", "bought once, a while ago, little since",
              (60.0, 1.0, 50.0, 30.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
    Archetype("loyal_high_value", "buys often and recently, large orders, engaged",
              (14.0, 12.0, 150.0, 3.0, 10.0, 15.0, 3.0, 2.0, 0.1)),
    Archetype("lapsed_buyer", "several orders, none for months, not seen lately",
              (200.0, 3.0, 60.0, 150.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
    Archetype("cart_hesitant", "adds to cart and browses a lot, never buys",
              (365.0, 0.0, 0.0, 1.0, 6.0, 25.0, 5.0, 0.0, 0.0)),
    Archetype("discount_hunter", "buys mostly with a discount",
              (30.0, 4.0, 35.0, 7.0, 4.0, 8.0, 2.0, 1.0, 0.8)),
    Archetype("email_engaged", "opens and clicks e-mails, buys now and then",
              (45.0, 2.0, 60.0, 5.0, 3.0, 3.0, 0.0, 12.0, 0.2)),
    Archetype("dormant_visitor", "never bought, not seen for months",
              (365.0, 0.0, 0.0, 120.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
)
"""Cluster ``i`` starts at archetype ``i``; the ids never renumber."""

CLUSTER_RATE = 0.01
"""How far a centre moves toward each vector it wins: an exponential average over
about the last 100 training vectors of that cluster."""


class Clusterer:
    """Sequential k-means (MacQueen's online update, constant rate) with fixed ids.

    Equivalent to ``river.cluster.KMeans(halflife=rate)`` with its centres set to the
    archetypes, written out because River's version (a) keeps centres as
    ``defaultdict``s that draw a random coordinate for any key they have not seen,
    (b) builds a set of keys per centre per prediction (11 us against 2 us here), and
    (c) has no inverse-transform or per-cluster bookkeeping to hang descriptions on.
    Ties go to the lowest id.
    """

    def __init__(self, centres: Iterable[Iterable[float]], rate: float = CLUSTER_RATE) -> None:
        self.centres = [list(c) for c in centres]
        self.rate = rate
        self.updates = 0

    def assign(self, v: list[float]) -> int:
        best, best_d = 0, math.inf
        dist = math.dist
        for i, centre in enumerate(self.centres):
            d = dist(centre, v)
            if d < best_d:
                best, best_d = i, d
        return best

    def learn(self, v: list[float]) -> int:
        i = self.assign(v)
        centre, rate = self.centres[i], self.rate
        for j, value in enumerate(v):
            centre[j] += rate * (value - centre[j])
        self.updates += 1
        return i

