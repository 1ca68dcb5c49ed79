"""The classifiers' input: a customer's features as a fixed vector of 21 numbers.

Log-scaled counts and money, capped recencies, and the BG/NBD values. River sees
``{index: value}`` (integer keys, so nothing depends on string hashing).

>>> b = Base(0, 0.0, None, None, None, 0.0, *([0] * 2), 0.0, *([0] * 9))
>>> x = build_vector(b, None, None)
>>> len(x) == len(VECTOR), x[0], round(x[1], 4)
(True, 0.0, 6.5944)
"""

from __future__ import annotations

import math
from operator import itemgetter
from typing import NamedTuple

from segments.features import Features

__all__ = ["VECTOR", "Base", "VectorFeature", "base_values", "build_vector"]


class VectorFeature(NamedTuple):
    name: str
    meaning: str
    transform: str


_CAP_DAYS = 730.0

VECTOR: tuple[VectorFeature, ...] = (
    VectorFeature("has_purchased", "bought at least once", "1 or 0"),
    VectorFeature("days_since_last_purchase", "recency of the latest purchase",
                  "log1p(min(days, 730)); log1p(730) before the first purchase"),
    VectorFeature("purchases_total", "orders ever", "log1p"),
    VectorFeature("revenue_total", "net revenue ever", "log1p"),
    VectorFeature("avg_order_value", "revenue per order", "log1p; 0 before a purchase"),
    VectorFeature("purchases_90d", "orders in 90 days", "log1p"),
    VectorFeature("purchases_365d", "orders in 365 days", "log1p"),
    VectorFeature("revenue_365d", "revenue in 365 days", "log1p"),
    VectorFeature("days_since_first_purchase", "tenure as a buyer",
                  "log1p(min(days, 730)); 0 before a purchase"),
    VectorFeature("days_since_last_seen", "time since any event", "log1p(min(days, 730))"),
    VectorFeature("sessions_30d", "sessions in 30 days", "log1p"),
    VectorFeature("product_views_7d", "product views in 7 days", "log1p"),
    VectorFeature("cart_adds_7d", "cart adds in 7 days", "log1p"),
    VectorFeature("searches_7d", "searches in 7 days", "log1p"),
    VectorFeature("email_opens_30d", "e-mail opens in 30 days", "log1p"),
    VectorFeature("email_clicks_30d", "e-mail clicks in 30 days", "log1p"),
    VectorFeature("app_opens_7d", "app opens in 7 days", "log1p"),
    VectorFeature("cart_items", "items in the open cart", "log1p"),
    VectorFeature("btyd_known", "BG/NBD values exist (fitted, and a buyer)", "1 or 0"),
    VectorFeature("p_alive", "BG/NBD probability of being alive", "as is; 0.5 when unknown"),
    VectorFeature("expected_purchases_365d", "BG/NBD expected purchase days in 365 days",
                  "log1p; 0 when unknown"),
)
"""The classifiers' input, in order: River sees ``{index: value}`` (integer keys, so
nothing depends on string hashing). A captured example keeps its values rounded to 4
decimals (``state.models`` is JSON), and its prediction is made on those."""


class Base(NamedTuple):
    """The plain feature values both models read (the features of the same names)."""

    purchases_total: int
    revenue_total: float
    avg_order_value: float | None
    days_since_last_purchase: float | None
    days_since_first_purchase: float | None
    days_since_last_seen: float | None
    purchases_90d: int
    purchases_365d: int
    revenue_365d: float
    discount_orders_365d: int
    sessions_30d: int
    product_views_7d: int
    cart_adds_7d: int
    searches_7d: int
    email_opens_30d: int
    email_clicks_30d: int
    app_opens_7d: int
    cart_items: int


def base_values(f: Features) -> Base:
    """:class:`Base` of the features ``f``: read through the mapping, so what the rules
    already computed for this evaluation is not computed again."""
    return Base._make(f.read_all(Base._fields, _READ_BASE))


_READ_BASE = itemgetter(*Base._fields)  # Base's fields are the features of those names


def _log_days(days: float | None, missing: float) -> float:
    return math.log1p(missing if days is None else min(max(days, 0.0), _CAP_DAYS))


def build_vector(b: Base, alive: float | None, expected: float | None) -> list[float]:
    """The :data:`VECTOR` of the values ``b`` and the BG/NBD values (None: unknown)."""
    log1p = math.log1p
    aov = b.avg_order_value
    values = (
        1.0 if b.purchases_total > 0 else 0.0,
        _log_days(b.days_since_last_purchase, _CAP_DAYS),
        log1p(b.purchases_total),
        log1p(max(b.revenue_total, 0.0)),
        0.0 if aov is None else log1p(max(aov, 0.0)),
        log1p(b.purchases_90d),
        log1p(b.purchases_365d),
        log1p(max(b.revenue_365d, 0.0)),
        _log_days(b.days_since_first_purchase, 0.0),
        _log_days(b.days_since_last_seen, 0.0),
        log1p(b.sessions_30d),
        log1p(b.product_views_7d),
        log1p(b.cart_adds_7d),
        log1p(b.searches_7d),
        log1p(b.email_opens_30d),
        log1p(b.email_clicks_30d),
        log1p(b.app_opens_7d),
        log1p(max(b.cart_items, 0)),
        0.0 if alive is None else 1.0,
        0.5 if alive is None else alive,
        0.0 if expected is None else log1p(expected),
    )
    return list(values)

