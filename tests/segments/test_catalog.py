"""The feature facts agree wherever they are written: the catalog (what rules may read),
segments.features (how each is computed), segments.schedule (how each moves with
time), segments.models (which a model computes), and the catalog's table of what each
event type may change, against what segments.state.apply really changes."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from segments import schedule
from segments.catalog import CATALOG, changed_by, lookup
from segments.events import Interaction
from segments.features import FEATURE_GROUPS, FEATURES, MODEL_FEATURES, Features
from segments.models import FEATURE_MODELS, Base
from segments.state import CustomerState, apply
from segments.timefmt import DAY_MS, HOUR_MS

EVENT_TYPES = ["page_view", "product_view", "search", "add_to_cart", "remove_from_cart",
               "checkout_start", "purchase", "refund", "login", "app_open", "feature_use",
               "content_view", "store_locator", "email_open", "email_click",
               "email_unsubscribe", "push_open", "consent_update", "profile_update"]


def _days(window: str) -> int:
    assert window.endswith("d"), window
    return int(window[:-1])


def test_every_catalog_feature_is_computed_and_nothing_else() -> None:
    assert set(CATALOG) == set(FEATURES)


def test_model_features_agree_with_the_catalog_and_the_models() -> None:
    model = {name for name, spec in CATALOG.items() if spec.granularity == "model"}
    assert model == set(MODEL_FEATURES) == set(FEATURE_MODELS)
    assert set(Base._fields) <= set(CATALOG)


def test_time_tables_agree_with_the_catalog() -> None:
    linear = {name for name, spec in CATALOG.items() if spec.time_linear}
    assert linear == set(schedule._ANCHORS)
    for name, days in schedule._ORDER_WINDOWS.items():
        assert CATALOG[name].granularity == "exact (ms)" and _days(CATALOG[name].window) == days
    for name, (_, days) in schedule._BUCKET_WINDOWS.items():
        assert CATALOG[name].granularity == "1-hour buckets"
        assert _days(CATALOG[name].window) == days
    hourly = {n for n, s in CATALOG.items() if s.granularity == "1-hour buckets"}
    assert hourly == set(schedule._BUCKET_WINDOWS)
    for name in schedule._LAST_SEEN_WINDOWS:
        assert _days(CATALOG[name].window) == 30
    assert set(CATALOG) >= schedule.TIME_DEPENDENT


def test_the_effects_table_names_only_catalog_features() -> None:
    for kind in [*EVENT_TYPES, "erase_request"]:
        assert all(lookup(n) is not None or n == "profile.*" for n in changed_by(kind))


T0 = 1_800_000_000_000


def _event(rng: random.Random, kind: str, ts: int, n: int) -> Interaction:
    product = rng.choice(["p1", "p2", "p3"])
    props: dict[str, Any] = {}
    if kind == "purchase":
        props = {"order_id": f"o{rng.randrange(5)}", "revenue": rng.choice([0.0, 12.5, 80.0]),
                 "discount": rng.choice([0, 5])}
    elif kind == "refund":
        props = {"order_id": f"o{rng.randrange(5)}", "amount": rng.choice([1.0, 50.0])}
    elif kind in ("add_to_cart", "remove_from_cart", "product_view"):
        props = {"product_id": product, "category": rng.choice(["shoes", "toys"]),
                 "price": rng.choice([None, 9.99]), "quantity": rng.choice([1, 2])}
    elif kind == "feature_use":
        props = {"feature": rng.choice(["export", "share"])}
    elif kind == "consent_update":
        props = {"marketing": rng.random() < 0.5}
    elif kind == "profile_update":
        props = {"attributes": {"tier": rng.choice(["gold", "silver"])}}
    context = {} if rng.random() < 0.3 else {
        "device": rng.choice(["mobile", "desktop"]), "tz": rng.choice(["UTC", "Asia/Tokyo"]),
        "geo": {"country": rng.choice(["GB", "DE"]), "city": "X"}}
    return Interaction(f"e{n}", "c", kind, ts, props, context)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10**9), history=st.integers(0, 40), kind=st.sampled_from(EVENT_TYPES))
def test_an_event_changes_only_what_the_table_says(seed: int, history: int, kind: str) -> None:
    """Features read at one instant, before and after applying one event of ``kind``:
    whatever differs is in ``changed_by(kind)``."""
    rng = random.Random(seed)
    state = CustomerState("c")
    ts = T0 - 60 * DAY_MS
    for n in range(history):
        ts += rng.choice([1_000, 20 * 60_000, 2 * HOUR_MS, 3 * DAY_MS])
        apply(state, _event(rng, rng.choice(EVENT_TYPES), ts, n))
    event_ts = ts + rng.choice([-HOUR_MS, 0, 1_000, 40 * 60_000, 5 * DAY_MS])
    now = max(event_ts, ts) + rng.choice([0, 1_000, 2 * DAY_MS])
    names = [n for n in FEATURES if n not in MODEL_FEATURES] + ["profile.tier"]
    before = Features(state, now)
    values = {name: before[name] for name in names}
    apply(state, _event(rng, kind, event_ts, 999))
    after = Features(state, now)
    allowed = changed_by(kind)
    changed = {name for name in names if after[name] != values[name]}
    changed = {("profile.*" if n.startswith("profile.") else n) for n in changed}
    assert changed <= allowed, (kind, changed - allowed)


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10**9), history=st.integers(0, 60),
       offset=st.sampled_from([0, 1, HOUR_MS, 29 * DAY_MS, 200 * DAY_MS]))
def test_feature_groups_compute_what_their_members_compute(seed: int, history: int,
                                                           offset: int) -> None:
    """A group fills its members in one pass; each value must be the one its own
    function in FEATURES gives, to the last bit."""
    rng = random.Random(seed)
    state = CustomerState("c")
    ts = T0 - 400 * DAY_MS
    for n in range(history):
        ts += rng.choice([1_000, 20 * 60_000, 2 * HOUR_MS, 3 * DAY_MS, 40 * DAY_MS])
        apply(state, _event(rng, rng.choice(EVENT_TYPES), ts, n))
    now = ts + offset
    for names, group in FEATURE_GROUPS.items():
        filled: dict[str, Any] = {}
        group(Features(state, now), filled)
        assert set(filled) == set(names)
        for name in names:
            single = FEATURES[name](Features(state, now))
            assert filled[name] == single and type(filled[name]) is type(single), name
