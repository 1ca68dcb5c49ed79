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

__all__ = ["CATALOG", "FeatureSpec", "lookup", "markdown_table"]

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
