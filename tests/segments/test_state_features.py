"""State and features, checked against values computed by hand or by brute force."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from segments.events import Interaction
from segments.features import Features, rfm_segment
from segments.state import CustomerState, apply
from segments.timefmt import DAY_MS, HOUR_MS, MINUTE_MS

T0 = 1_700_000_000_000 - (1_700_000_000_000 % DAY_MS)  # a midnight UTC


def purchase(eid: str, ts: int, revenue: float, order: str | None = None,
             discount: float = 0.0) -> Interaction:
    return Interaction(eid, "c", "purchase", ts,
                       {"order_id": order or eid, "revenue": revenue, "discount": discount})


def fold(events: list[Interaction]) -> CustomerState:
    state = CustomerState("c")
    for e in events:
        apply(state, e)
    return state


def test_purchase_window_edges_are_exact() -> None:
    state = fold([purchase("a", T0, 10.0), purchase("b", T0 + 10 * DAY_MS, 20.0)])
    # exactly 30 days after `a`, `a` has left the 30-day window; 1 ms before it had not
    assert Features(state, T0 + 30 * DAY_MS - 1)["purchases_30d"] == 2
    assert Features(state, T0 + 30 * DAY_MS)["purchases_30d"] == 1
    assert Features(state, T0 + 30 * DAY_MS)["revenue_30d"] == 20.0
    assert Features(state, T0 + 40 * DAY_MS)["purchases_30d"] == 0
    assert Features(state, T0 + 40 * DAY_MS)["purchases_90d"] == 2
    f = Features(state, T0 + 40 * DAY_MS)
    assert f["purchases_total"] == 2 and f["revenue_total"] == 30.0
    assert f["avg_order_value"] == 15.0
    assert f["days_since_last_purchase"] == 30.0
    assert f["days_since_first_purchase"] == 40.0


def test_out_of_order_purchase_counts_in_its_own_window() -> None:
    state = fold([purchase("late", T0 + 100 * DAY_MS, 5.0), purchase("early", T0, 7.0)])
    f = Features(state, T0 + 100 * DAY_MS)
    assert f["purchases_total"] == 2
    assert f["purchases_90d"] == 1  # `early` is 100 days old
    assert f["purchases_365d"] == 2
    assert f["days_since_last_purchase"] == 0.0
    assert f["days_since_first_purchase"] == 100.0


def test_refund_reduces_revenue_not_purchase_count() -> None:
    state = fold([purchase("a", T0, 100.0, order="o-1"),
                  Interaction("r", "c", "refund", T0 + DAY_MS, {"order_id": "o-1",
                                                                 "amount": 40.0})])
    f = Features(state, T0 + 2 * DAY_MS)
    assert f["purchases_total"] == 1
    assert f["revenue_total"] == 60.0
    assert f["revenue_30d"] == 60.0


def test_engagement_counters_use_hour_buckets() -> None:
    views = [Interaction(f"v{i}", "c", "product_view", T0 + i * MINUTE_MS, {"product_id": "p"})
             for i in range(3)]
    state = fold(views)
    # all three sit in the hour starting at T0; they count until T0 + 1h + 7d
    assert Features(state, T0 + 7 * DAY_MS + HOUR_MS - 1)["product_views_7d"] == 3
    assert Features(state, T0 + 7 * DAY_MS + HOUR_MS)["product_views_7d"] == 0


def test_sessions_split_on_thirty_minutes_of_silence() -> None:
    times = [0, 10, 39, 70, 71, 200]  # minutes: sessions start at 0, 70, 200
    state = fold([Interaction(f"p{m}", "c", "page_view", T0 + m * MINUTE_MS, {"url": "/"})
                  for m in times])
    assert Features(state, T0 + 300 * MINUTE_MS)["sessions_7d"] == 3


def test_cart_follows_adds_removes_and_purchase() -> None:
    add = Interaction("a1", "c", "add_to_cart", T0,
                      {"product_id": "p1", "quantity": 2, "price": 10.0, "category": "x"})
    add2 = Interaction("a2", "c", "add_to_cart", T0 + MINUTE_MS,
                       {"product_id": "p2", "price": 5.5})
    remove = Interaction("r1", "c", "remove_from_cart", T0 + 2 * MINUTE_MS,
                         {"product_id": "p1", "quantity": 1})
    state = fold([add, add2, remove])
    f = Features(state, T0 + 32 * MINUTE_MS)
    assert (f["cart_items"], f["cart_value"]) == (2, 15.5)
    assert f["minutes_since_cart_update"] == 30.0
    apply(state, purchase("b", T0 + 40 * MINUTE_MS, 15.5))
    assert Features(state, T0 + 41 * MINUTE_MS)["cart_items"] == 0


def test_context_keeps_the_latest_by_event_time() -> None:
    new = Interaction("n", "c", "login", T0 + HOUR_MS, {},
                      {"device": "mobile", "tz": "Asia/Tokyo", "geo": {"city": "Tokyo"}})
    old = Interaction("o", "c", "login", T0, {}, {"device": "desktop", "geo": {"city": "Oslo"}})
    state = fold([new, old])
    f = Features(state, T0 + HOUR_MS)
    assert (f["device"], f["city"], f["tz"]) == ("mobile", "Tokyo", "Asia/Tokyo")
    assert f["devices_30d"] == 2
    assert f["local_hour"] == 10  # 01:00 UTC is 10:00 in Tokyo
    assert f["local_weekday"] == 1  # T0 + 1h: 2023-11-14, a Tuesday


def test_profile_never_keeps_pii() -> None:
    state = fold([Interaction("p", "c", "profile_update", T0, {"attributes": {
        "age_band": "25-34", "email": "x@example.com", "Phone": "123",
        "note": "reach me at x@example.com"}})])
    assert state.profile == {"age_band": "25-34"}
    assert Features(state, T0)["profile.age_band"] == "25-34"


def test_rfm_segment_mapping_covers_the_grid() -> None:
    names = {rfm_segment(r, f) for r in range(1, 6) for f in range(1, 6)}
    assert names == {"champions", "loyal", "potential_loyalist", "new", "promising",
                     "need_attention", "about_to_sleep", "at_risk", "cant_lose",
                     "hibernating", "lost"}


def test_state_round_trips_through_json() -> None:
    from segments.codec import decode_state, encode_state

    state = fold([purchase("a", T0, 10.0),
                  Interaction("v", "c", "product_view", T0, {"product_id": "p",
                                                              "category": "shoes"})])
    again = decode_state(encode_state(state))
    assert again == state


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 400), st.floats(0, 1000, allow_nan=False)),
                min_size=1, max_size=30),
       st.integers(0, 800))
def test_windows_equal_brute_force_over_the_full_history(
        orders: list[tuple[int, float]], now_day: int) -> None:
    """Whatever the arrival order, windowed features equal a scan of every order."""
    events = [purchase(f"e{i}", T0 + d * DAY_MS + i, round(r, 2)) for i, (d, r) in
              enumerate(orders)]
    random.Random(len(orders)).shuffle(events)
    state = fold(events)
    now = max(T0 + now_day * DAY_MS, max(e.ts for e in events))
    f = Features(state, now)
    for days in (30, 90, 365):
        inside = [e for e in events if now - days * DAY_MS < e.ts <= now]
        assert f[f"purchases_{days}d"] == len(inside)
        assert abs(f[f"revenue_{days}d"] - sum(e.properties["revenue"] for e in inside)) < 0.05
    assert f["purchases_total"] == len(events)


def test_purchase_days_count_days_as_bg_nbd_does() -> None:
    """All orders of one UTC day are one purchase; the first day's spend is kept apart
    so the repeat purchases' mean spend (Gamma-Gamma's input) excludes it."""
    s = CustomerState("c")
    day = 20_000 * DAY_MS  # a UTC midnight
    for i, (ts, revenue) in enumerate([(day + HOUR_MS, 10.0), (day + 20 * HOUR_MS, 5.0),
                                       (day + 3 * DAY_MS, 7.0), (day + 3 * DAY_MS + 1, 1.0),
                                       (day + 9 * DAY_MS, 4.0)]):
        apply(s, Interaction(f"e{i}", "c", "purchase", ts,
                             {"order_id": f"o{i}", "revenue": revenue}))
    assert s.purchase_days == 3  # day 0, day 3, day 9
    assert s.first_day_revenue == 15.0
    assert s.revenue_total - s.first_day_revenue == 12.0  # spend of the 2 repeat days
