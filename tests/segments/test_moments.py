"""Micro-moments: detectors, delays and cancellation, and the policies in their order."""

from __future__ import annotations

from typing import Any

import pytest

from segments.definitions import DefinitionsError, load_default, parse_definitions
from segments.engine import Engine
from segments.events import Interaction
from segments.moments import holdout_bucket
from segments.records import MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, Output
from segments.state import CustomerState
from segments.timefmt import HOUR_MS, MINUTE_MS, format_ts, parse_ts

NOON = parse_ts("2026-06-10T12:00:00Z")

RULES = """
[policies]
holdout = 0.0
frequency_cap_per_day = 3
quiet_hours = ["22:00", "08:00"]
default_tz = "UTC"

[moments.looking]
when = "event.type == 'search'"
cooldown = "1h"
ttl = "12h"
priority = 1

[moments.buying]
when = "event.type == 'add_to_cart'"
ttl = "15m"
priority = 2

[moments.cart_abandoned]
when = "event.type == 'add_to_cart'"
delay = "30m"
still = "cart_items > 0"
cancel_on = ["purchase"]
ttl = "2h"
"""


class Customer:
    """One customer's state and an engine; events in, (topic, moment, reason) out."""

    def __init__(self, rules: str = RULES, customer_id: str = "c-1", tz: str | None = None,
                 consent: bool | None = True) -> None:
        self.engine = Engine(parse_definitions(rules))
        self.state = CustomerState(customer_id)
        self.n = 0
        self.tz = tz
        if consent is not None:
            self.send("consent_update", NOON - HOUR_MS, marketing=consent)

    def send(self, event_type: str, ts: int, now: int | None = None,
             **props: Any) -> list[Output]:
        self.n += 1
        context = {"tz": self.tz} if self.tz else {}
        event = Interaction(f"e{self.n}", self.state.customer_id, event_type, ts, props,
                            context)
        return self.engine.on_event(self.state, event, ts if now is None else now)

    def wait(self, now: int) -> list[Output]:
        return self.engine.on_time(self.state, now).outputs


def triggers(outputs: list[Output]) -> list[tuple[str, str | None]]:
    return [(o.value["moment"], o.value.get("suppressed")) for o in outputs
            if o.topic in (MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED)]


def test_a_trigger_carries_what_automation_needs() -> None:
    c = Customer(tz="Europe/Berlin")
    [out] = [o for o in c.send("search", NOON, query="shoes") if o.topic == MICRO_MOMENTS]
    assert out.value["moment"] == "looking"
    assert out.value["at"] == format_ts(NOON)
    assert out.value["expires_at"] == format_ts(NOON + 12 * HOUR_MS)
    assert out.value["cause"] == {"kind": "event", "event_id": "e2"}
    assert out.value["context"]["local_time"] == "14:00"  # Berlin in summer


def test_no_consent_suppresses_and_unless_withdrawn_accepts_the_unknown() -> None:
    assert triggers(Customer(consent=None).send("search", NOON, query="x")) == [
        ("looking", "no_consent")]
    assert triggers(Customer(consent=False).send("search", NOON, query="x")) == [
        ("looking", "no_consent")]
    lenient = RULES.replace('default_tz = "UTC"',
                            'default_tz = "UTC"\nconsent = "unless_withdrawn"')
    assert triggers(Customer(lenient, consent=None).send("search", NOON, query="x")) == [
        ("looking", None)]
    assert triggers(Customer(lenient, consent=False).send("search", NOON, query="x")) == [
        ("looking", "no_consent")]


def test_holdout_is_a_stable_share_of_customers() -> None:
    ids = [f"synthetic-{n}" for n in range(100_000)]
    share = sum(holdout_bucket(i) < 0.05 for i in ids) / len(ids)
    assert abs(share - 0.05) < 0.005
    held = next(i for i in ids if holdout_bucket(i) < 0.05)
    rules = RULES.replace("holdout = 0.0", "holdout = 0.05")
    for _ in range(2):  # the same customer every time: a fresh engine agrees
        assert triggers(Customer(rules, held).send("search", NOON, query="x")) == [
            ("looking", "holdout")]


def test_cooldown_then_re_eligible() -> None:
    c = Customer()
    assert triggers(c.send("search", NOON, query="a")) == [("looking", None)]
    assert triggers(c.send("search", NOON + 59 * MINUTE_MS, query="b")) == [
        ("looking", "cooldown")]
    assert triggers(c.send("search", NOON + 60 * MINUTE_MS, query="c")) == [("looking", None)]


def test_frequency_cap_counts_the_customers_local_calendar_day() -> None:
    c = Customer(tz="Asia/Tokyo")  # local midnight is 15:00 UTC
    base = parse_ts("2026-06-10T10:00:00Z")  # 19:00 in Tokyo
    got = [triggers(c.send("add_to_cart", base + n * 10 * MINUTE_MS, product_id="p"))[0]
           for n in range(4)]
    assert got == [("buying", None)] * 3 + [("buying", "frequency_cap")]
    # 15:30 UTC is 00:30 the next day in Tokyo: a new day, but quiet hours (22-08)
    assert triggers(c.send("add_to_cart", parse_ts("2026-06-10T15:30:00Z"),
                           product_id="p"))[0] == ("buying", "quiet_hours")
    # 23:00 UTC is 08:00 in Tokyo: the new day's first trigger
    assert triggers(c.send("add_to_cart", parse_ts("2026-06-10T23:00:00Z"),
                           product_id="p"))[0] == ("buying", None)


def test_quiet_hours_depend_on_the_customers_zone() -> None:
    at = parse_ts("2026-01-15T21:30:00Z")
    london, berlin = Customer(tz="Europe/London"), Customer(tz="Europe/Berlin")
    assert triggers(london.send("search", at, query="x")) == [("looking", None)]  # 21:30
    [held] = [o for o in berlin.send("search", at, query="x")]  # 22:30 in Berlin
    assert held.topic == MICRO_MOMENTS_SUPPRESSED
    assert held.value["suppressed"] == "quiet_hours"
    assert held.value["held_until"] == "2026-01-16T07:00:00.000Z"  # 08:00 in Berlin
    # no further event: the held trigger fires when the quiet hours end
    [fired] = berlin.wait(parse_ts("2026-01-16T07:00:00.001Z"))
    assert fired.topic == MICRO_MOMENTS
    assert fired.value["at"] == "2026-01-16T07:00:00.000Z"
    assert fired.value["cause"] == {"kind": "time", "event_id": "e2",
                                    "due": "2026-01-16T07:00:00.000Z"}
    assert fired.value["expires_at"] == format_ts(at + 12 * HOUR_MS)
    assert fired.value["context"]["local_time"] == "08:00"


def test_quiet_hours_past_the_ttl_drop_the_trigger() -> None:
    c = Customer(tz="Europe/Berlin")
    [out] = c.send("add_to_cart", parse_ts("2026-01-15T22:00:00Z"), product_id="p")[:1]
    assert (out.value["suppressed"], "held_until" in out.value) == ("quiet_hours", False)
    # the cart wait ends at 23:30 in Berlin: still quiet, and 08:00 is past its 2 h ttl
    [late] = c.wait(parse_ts("2026-01-16T12:00:00Z"))
    assert (late.value["moment"], late.value["suppressed"]) == ("cart_abandoned", "quiet_hours")
    assert "held_until" not in late.value


def test_a_live_worker_back_after_the_ttl_drops_a_delayed_trigger() -> None:
    c = Customer()
    c.send("add_to_cart", NOON, product_id="p", quantity=1, price=30.0)
    back = NOON + 5 * HOUR_MS  # down from before the 30 min wait until after its 2 h ttl
    assert triggers(c.engine.on_time(c.state, back, live=True).outputs) == []
    assert c.state.moments["pending"] == []


def test_rate_limit_lets_the_highest_priority_through() -> None:
    rules = RULES + """
[moments.also_buying]
when = "event.type == 'add_to_cart'"
ttl = "15m"
"""
    c = Customer(rules)
    assert triggers(c.send("add_to_cart", NOON, product_id="p")) == [
        ("buying", None), ("also_buying", "rate_limit")]


def test_policies_apply_in_their_documented_order() -> None:
    rules = RULES.replace("holdout = 0.0", "holdout = 0.05")
    held = next(f"h{n}" for n in range(10_000) if holdout_bucket(f"h{n}") < 0.05)
    # no consent comes first, before anything else
    assert triggers(Customer(rules, held, consent=None).send("search", NOON, query="x")) == [
        ("looking", "no_consent")]
    # cooldown before quiet hours
    c = Customer()
    c.send("search", parse_ts("2026-06-10T21:30:00Z"), query="x")
    assert triggers(c.send("search", parse_ts("2026-06-10T22:10:00Z"), query="y")) == [
        ("looking", "cooldown")]
    # quiet hours before the holdout: a control customer is suppressed for holdout only
    # when a treated one would have received the trigger
    night = parse_ts("2026-06-10T23:00:00Z")
    assert triggers(Customer(rules, held).send("search", night, query="x")) == [
        ("looking", "quiet_hours")]


def test_a_control_customer_counts_as_treated_for_cooldowns_and_caps() -> None:
    rules = RULES.replace("holdout = 0.0", "holdout = 0.05")
    held = next(f"h{n}" for n in range(10_000) if holdout_bucket(f"h{n}") < 0.05)
    c = Customer(rules, held)
    assert triggers(c.send("search", NOON, query="a")) == [("looking", "holdout")]
    assert triggers(c.send("search", NOON + 10 * MINUTE_MS, query="b")) == [
        ("looking", "cooldown")]
    got = [triggers(c.send("add_to_cart", NOON + n * MINUTE_MS, product_id="p"))[0]
           for n in range(20, 24)]
    assert got == [("buying", "holdout")] * 2 + [("buying", "frequency_cap")] * 2


def test_cart_abandonment_fires_with_no_further_event_at_its_due_instant() -> None:
    c = Customer()
    c.send("add_to_cart", NOON, product_id="p", quantity=1, price=30.0)
    due = NOON + 30 * MINUTE_MS
    assert c.state.due == due
    assert triggers(c.wait(due)) == []  # not yet: the clock must pass the instant
    [fired] = c.wait(due + 1)
    assert (fired.topic, fired.value["moment"], fired.value["at"]) == (
        MICRO_MOMENTS, "cart_abandoned", format_ts(due))
    assert fired.value["cause"] == {"kind": "time", "event_id": "e2", "due": format_ts(due)}
    assert fired.value["items"] == [{"product_id": "p", "category": None}]


def test_cart_abandonment_is_cancelled_by_a_purchase_or_an_empty_cart() -> None:
    bought = Customer()
    bought.send("add_to_cart", NOON, product_id="p", quantity=1, price=30.0)
    bought.send("purchase", NOON + 10 * MINUTE_MS, order_id="o1", revenue=30.0)
    assert triggers(bought.wait(NOON + 3 * HOUR_MS)) == []
    emptied = Customer()
    emptied.send("add_to_cart", NOON, product_id="p", quantity=1, price=30.0)
    emptied.send("remove_from_cart", NOON + 5 * MINUTE_MS, product_id="p", quantity=1)
    assert triggers(emptied.wait(NOON + 3 * HOUR_MS)) == []


def test_a_new_cart_add_restarts_the_wait() -> None:
    c = Customer()
    c.send("add_to_cart", NOON, product_id="p", quantity=1, price=30.0)
    c.send("add_to_cart", NOON + 20 * MINUTE_MS, product_id="q", quantity=1, price=10.0)
    assert triggers(c.wait(NOON + 31 * MINUTE_MS)) == []
    [fired] = c.wait(NOON + 51 * MINUTE_MS)
    assert fired.value["at"] == format_ts(NOON + 50 * MINUTE_MS)


def test_a_stale_event_never_triggers() -> None:
    c = Customer()
    late = c.send("search", NOON, now=NOON + 13 * HOUR_MS, query="x")  # ttl 12h
    assert triggers(late) == []


def test_default_detectors_fire_on_their_signals() -> None:
    text = load_default_text().replace("holdout = 0.05", "holdout = 0.0")
    cases = {
        "i_want_to_know": [("search", {"query": "trail shoes"})],
        "i_want_to_go": [("store_locator", {"query": "Berlin"})],
        "i_want_to_do": [("content_view", {"content_id": "c", "kind": "how_to"})],
        "i_want_to_buy": [("product_view", {"product_id": "p", "category": "shoes"})] * 3,
    }
    for moment, events in cases.items():
        c = Customer(text)
        out: list[Output] = []
        for n, (kind, props) in enumerate(events):
            out += c.send(kind, NOON + n * 1000, **props)
        sent = [o.value for o in out if o.topic == MICRO_MOMENTS]
        assert moment in [v["moment"] for v in sent], (moment, triggers(out))
        assert all(0 <= v["score"] <= 1 for v in sent)
    # browsing one product thrice and leaving: browse_abandoned an hour later
    c = Customer(text)
    for n in range(3):
        c.send("product_view", NOON + n * 1000, product_id="p", category="shoes")
    fired = triggers(c.wait(NOON + 2000 + HOUR_MS + 1))
    assert ("browse_abandoned", None) in fired


def load_default_text() -> str:
    from segments.definitions import DEFAULT_PATH
    load_default()  # the shipped file loads
    return DEFAULT_PATH.read_text()


@pytest.mark.parametrize(("entry", "message"), [
    ('still = "cart_items > 0"', "only a moment with a 'delay' is re-checked"),
    ("frequency_cap = 0", "frequency_cap: must be a whole number of at least 1"),
    ("holdout = 1.5", "holdout: must be a share from 0 to below 1"),
    ('quiet_hours = ["25:00", "08:00"]', "quiet_hours: must be"),
])
def test_bad_moment_policies_stop_with_one_line(entry: str, message: str) -> None:
    with pytest.raises(DefinitionsError, match=message):
        parse_definitions(f"[moments.m]\nwhen = \"event.type == 'search'\"\n{entry}\n")
