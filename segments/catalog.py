"""The feature catalog: every name a rule may read, its type, unit and window.

This is the documentation marketers read (``markdown_table``) and what the rule
compiler type-checks against; :mod:`segments.features` computes each value.

>>> lookup("purchases_90d").kind, lookup("purchases_90d").window
('number', '90d')
>>> lookup("profile.age_band").kind
'any'
>>> lookup("nonsense") is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["CATALOG", "CHANGED_BY_ANY_EVENT", "CHANGED_BY_EVENT", "FeatureSpec",
           "changed_by", "lookup", "markdown_table"]

Kind = Literal["number", "string", "bool", "any"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    kind: Kind
    unit: str
    window: str
    granularity: str
    description: str
    time_linear: bool = False  # grows with the clock: (now - anchor) / unit


def _specs() -> list[FeatureSpec]:
    exact, hourly = "exact (ms)", "1-hour buckets"
    f = FeatureSpec
    out = [
        f("purchases_total", "number", "count", "all time", exact, "Purchases ever made"),
        f("revenue_total", "number", "currency", "all time", exact,
          "Revenue ever, net of refunds"),
    ]
    for days in (30, 90, 365):
        out.append(f(f"purchases_{days}d", "number", "count", f"{days}d", exact,
                     f"Purchases in the last {days} days"))
    for days in (30, 90, 365):
        out.append(f(f"revenue_{days}d", "number", "currency", f"{days}d", exact,
                     f"Revenue in the last {days} days, net of refunds"))
    out += [
        f("avg_order_value", "number", "currency", "all time", exact,
          "Revenue per purchase; null before the first purchase"),
        f("days_since_last_purchase", "number", "days", "", exact,
          "Days since the latest purchase; null before the first", True),
        f("days_since_first_purchase", "number", "days", "", exact,
          "Days since the first purchase; null before it", True),
        f("discount_orders_365d", "number", "count", "365d", exact,
          "Purchases with a discount in the last 365 days"),
        f("holiday_purchases_365d", "number", "count", "365d", exact,
          "Purchases in holiday windows (Nov 15-Dec 31, Feb 7-14, May 1-14) in 365 days"),
        f("sessions_7d", "number", "count", "7d", hourly,
          "Sessions started (30 min inactivity gap) in 7 days"),
        f("sessions_30d", "number", "count", "30d", hourly, "Sessions started in 30 days"),
        f("page_views_7d", "number", "count", "7d", hourly, "Page views in 7 days"),
        f("product_views_7d", "number", "count", "7d", hourly, "Product views in 7 days"),
        f("cart_adds_7d", "number", "count", "7d", hourly, "Add-to-cart events in 7 days"),
        f("searches_7d", "number", "count", "7d", hourly, "Searches in 7 days"),
        f("email_opens_30d", "number", "count", "30d", hourly, "E-mail opens in 30 days"),
        f("email_clicks_30d", "number", "count", "30d", hourly, "E-mail clicks in 30 days"),
        f("app_opens_7d", "number", "count", "7d", hourly, "App opens in 7 days"),
        f("logins_30d", "number", "count", "30d", hourly, "Logins in 30 days"),
        f("distinct_features_30d", "number", "count", "30d", exact,
          "Distinct product features used in 30 days"),
        f("devices_30d", "number", "count", "30d", exact, "Distinct devices seen in 30 days"),
        f("days_since_last_seen", "number", "days", "", exact,
          "Days since the latest event of any kind", True),
        f("session_events", "number", "count", "latest session", exact,
          "Events in the latest session (30 min inactivity gap)"),
        f("session_product_views", "number", "count", "latest session", exact,
          "Product views in the latest session"),
        f("session_searches", "number", "count", "latest session", exact,
          "Searches in the latest session"),
        f("session_cart_adds", "number", "count", "latest session", exact,
          "Add-to-cart events in the latest session"),
        f("session_content_views", "number", "count", "latest session", exact,
          "Content views (how-to, article, comparison, review, video) in the latest session"),
        f("session_locator_uses", "number", "count", "latest session", exact,
          "Store-locator lookups in the latest session"),
        f("session_max_category_views", "number", "count", "latest session", exact,
          "Views and cart adds of the session's most looked-at category"),
        f("session_max_product_views", "number", "count", "latest session", exact,
          "Views of the session's most viewed product"),
        f("cart_items", "number", "count", "current", exact, "Items in the open cart"),
        f("cart_value", "number", "currency", "current", exact, "Value of the open cart"),
        f("minutes_since_cart_update", "number", "minutes", "", exact,
          "Minutes since the cart last changed; null if it never did", True),
        f("rfm_r", "number", "score 1-5", "all time", "cuts per rfm_refresh",
          "Quintile of the last purchase's recency among the partition's buyers "
          "(5 = most recent); null below rfm_min_buyers"),
        f("rfm_f", "number", "score 1-5", "all time", "cuts per rfm_refresh",
          "Quintile of orders ever among the partition's buyers"),
        f("rfm_m", "number", "score 1-5", "all time", "cuts per rfm_refresh",
          "Quintile of net revenue ever among the partition's buyers"),
        f("rfm_segment", "string", "", "all time", "cuts per rfm_refresh",
          "Named RFM segment: champions, loyal, potential_loyalist, new, promising, "
          "need_attention, about_to_sleep, at_risk, cant_lose, hibernating, lost"),
        f("device", "string", "", "latest", exact, "Device of the latest event"),
        f("channel", "string", "", "latest", exact, "Channel of the latest event"),
        f("country", "string", "", "latest", exact, "ISO country of the latest event"),
        f("city", "string", "", "latest", exact, "City of the latest event"),
        f("tz", "string", "", "latest", exact, "IANA time zone of the customer"),
        f("local_hour", "number", "hour 0-23", "", exact, "Hour of the clock in the "
          "customer's time zone"),
        f("local_weekday", "number", "0=Mon..6=Sun", "", exact,
          "Weekday of the clock in the customer's time zone"),
        f("consent_marketing", "bool", "", "latest", exact,
          "Marketing consent; null until a consent_update"),
        f("purchase_propensity", "number", "probability", "30d ahead", "model",
          "Probability of a purchase in the next 30 days; null until the model is warm"),
        f("churn_risk", "number", "probability", "90d ahead", "model",
          "Probability of no activity in the next 90 days; null until warm"),
        f("p_alive", "number", "probability", "", "model", "BG/NBD probability of being alive"),
        f("expected_clv_365d", "number", "currency", "365d ahead", "model",
          "Expected spend in the next 365 days (BG/NBD x Gamma-Gamma)"),
        f("cluster", "number", "id", "", "model", "Discovered microsegment id"),
    ]
    return out


CATALOG: Mapping[str, FeatureSpec] = {spec.name: spec for spec in _specs()}

_PROFILE = FeatureSpec("profile.*", "any", "", "latest", "exact (ms)",
                       "A profile attribute from profile_update (no PII is kept)")


CHANGED_BY_ANY_EVENT: frozenset[str] = frozenset({
    "days_since_last_seen", "sessions_7d", "sessions_30d", "devices_30d",
    "session_events", "session_product_views", "session_searches", "session_cart_adds",
    "session_content_views", "session_locator_uses", "session_max_category_views",
    "session_max_product_views", "device", "channel", "country", "city", "tz",
    "local_hour", "local_weekday",
})
"""What any applied event may change: the latest-seen instant, the session, the
context (and through the time zone the local clock)."""

_MONEY = frozenset({"revenue_total", "revenue_30d", "revenue_90d", "revenue_365d",
                    "avg_order_value", "rfm_m"})
_CART = frozenset({"cart_items", "cart_value", "minutes_since_cart_update"})

CHANGED_BY_EVENT: Mapping[str, frozenset[str]] = {
    "purchase": _MONEY | _CART | {
        "purchases_total", "purchases_30d", "purchases_90d", "purchases_365d",
        "days_since_last_purchase", "days_since_first_purchase", "discount_orders_365d",
        "holiday_purchases_365d", "rfm_r", "rfm_f", "rfm_segment"},
    "refund": _MONEY,
    "add_to_cart": _CART | {"cart_adds_7d"},
    "remove_from_cart": _CART,
    "product_view": frozenset({"product_views_7d"}),
    "page_view": frozenset({"page_views_7d"}),
    "search": frozenset({"searches_7d"}),
    "email_open": frozenset({"email_opens_30d"}),
    "email_click": frozenset({"email_clicks_30d"}),
    "app_open": frozenset({"app_opens_7d"}),
    "login": frozenset({"logins_30d"}),
    "feature_use": frozenset({"distinct_features_30d"}),
    "consent_update": frozenset({"consent_marketing"}),
    "profile_update": frozenset({"profile.*"}),
}
"""What an event of each type may change beyond :data:`CHANGED_BY_ANY_EVENT`, at a
fixed instant (the clock's own effect is the due index's business). The engine
re-evaluates only the segments reading one of them (and the model features, whose
models learn from everyone); tests/segments/test_catalog.py holds this table to
what :func:`segments.state.apply` really changes."""


def changed_by(event_type: str) -> frozenset[str]:
    """The features an applied event of ``event_type`` may change at a fixed instant
    (``profile.*`` stands for every profile attribute)."""
    return CHANGED_BY_ANY_EVENT | CHANGED_BY_EVENT.get(event_type, frozenset())


def lookup(name: str) -> FeatureSpec | None:
    """The spec of a feature name, ``profile.<attribute>`` included."""
    spec = CATALOG.get(name)
    if spec is None and name.startswith("profile.") and len(name) > 8:
        return _PROFILE
    return spec


def markdown_table() -> str:
    rows = ["| feature | type | unit | window | granularity | meaning |",
            "|---|---|---|---|---|---|"]
    for s in [*CATALOG.values(), _PROFILE]:
        rows.append(f"| `{s.name}` | {s.kind} | {s.unit} | {s.window} | {s.granularity} "
                    f"| {s.description} |")
    return "\n".join(rows)
