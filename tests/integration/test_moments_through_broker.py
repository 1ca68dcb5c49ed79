"""Micro-moments through the real broker: each moment, each policy, delays with no
further event, cancellation, and quiet hours on both sides of a time-zone boundary.

One log of short customer stories goes through `segstream worker --clock event`; each
partition's clock is moved past the delays by a "ticker" customer of that partition,
so the delayed and held triggers fire with no further event of their own customers.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson

from segments.definitions import parse_definitions
from segments.moments import holdout_bucket
from segments.timefmt import MINUTE_MS, format_ts, parse_ts
from streams.tools.offline import partition_of, replay_offline
from tests.kafka_tools import assert_valid_outputs, consume, produce, running_worker

RULES = """
[policies]
holdout = 0.05
frequency_cap_per_day = 3
quiet_hours = ["22:00", "08:00"]

[moments.i_want_to_know]
when = "event.type == 'search'"
cooldown = "1h"
ttl = "12h"
priority = 1

[moments.i_want_to_go]
when = "event.type == 'store_locator'"
ttl = "15m"
priority = 3

[moments.i_want_to_do]
when = "event.type == 'content_view' and event.properties.kind == 'how_to'"
ttl = "30m"
priority = 2

[moments.i_want_to_buy]
when = "event.type == 'add_to_cart'"
ttl = "15m"
priority = 4

[moments.cart_abandoned]
when = "event.type == 'add_to_cart'"
delay = "30m"
still = "cart_items > 0"
cancel_on = ["purchase"]
ttl = "2h"
"""
DAY = parse_ts("2026-01-15T10:00:00Z")  # winter: London is UTC, Berlin UTC+1
NIGHT = parse_ts("2026-01-15T21:30:00Z")  # 21:30 in London, 22:30 in Berlin
END = parse_ts("2026-01-16T12:00:00Z")


def customer(name: str, held_out: bool = False) -> str:
    """A customer id on the chosen side of the 5% holdout."""
    for n in range(10_000):
        candidate = f"{name}-{n}"
        if (holdout_bucket(candidate) < 0.05) == held_out:
            return candidate
    raise AssertionError(name)


class Log:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def add(self, who: str, event_type: str, ts: int, tz: str = "Europe/London",
            consent: bool = True, **props: Any) -> None:
        if consent and not any(e["customer_id"] == who for e in self.events):
            self.add(who, "consent_update", ts - 1000, tz, consent=False, marketing=True)
        event: dict[str, Any] = {"event_id": f"{who}-{len(self.events)}", "customer_id": who,
                                 "type": event_type, "ts": ts, "context": {"tz": tz}}
        if props:
            event["properties"] = props
        self.events.append(event)

    def lines(self) -> list[tuple[str, bytes]]:
        ordered = sorted(self.events, key=lambda e: (e["ts"], e["event_id"]))
        return [(e["customer_id"], orjson.dumps(e)) for e in ordered]


def story() -> tuple[Log, set[tuple[str, str, str | None, str]]]:
    log, expected = Log(), set()

    def expect(who: str, moment: str, reason: str | None, at: int) -> None:
        expected.add((who, moment, reason, format_ts(at)))

    know, go, do = customer("know"), customer("go"), customer("do")
    log.add(know, "search", DAY, query="trail shoes")
    expect(know, "i_want_to_know", None, DAY)
    log.add(go, "store_locator", DAY, query="Leeds")
    expect(go, "i_want_to_go", None, DAY)
    log.add(do, "content_view", DAY, content_id="c1", kind="how_to")
    expect(do, "i_want_to_do", None, DAY)

    buy = customer("buy")  # buys nothing: the cart is abandoned, no further event
    log.add(buy, "add_to_cart", DAY, product_id="p1", quantity=1, price=20.0)
    expect(buy, "i_want_to_buy", None, DAY)
    expect(buy, "cart_abandoned", None, DAY + 30 * MINUTE_MS)

    bought = customer("bought")  # a purchase cancels the abandonment
    log.add(bought, "add_to_cart", DAY, product_id="p1", quantity=1, price=20.0)
    log.add(bought, "purchase", DAY + 10 * MINUTE_MS, order_id="o1", revenue=20.0)
    expect(bought, "i_want_to_buy", None, DAY)

    silent = customer("silent")  # never gave consent
    log.add(silent, "search", DAY, consent=False, query="x")
    expect(silent, "i_want_to_know", "no_consent", DAY)

    cool = customer("cool")
    log.add(cool, "search", DAY, query="a")
    log.add(cool, "search", DAY + 5 * MINUTE_MS, query="b")
    expect(cool, "i_want_to_know", None, DAY)
    expect(cool, "i_want_to_know", "cooldown", DAY + 5 * MINUTE_MS)

    capped = customer("capped")  # three a day, then the cap
    for n in range(4):
        log.add(capped, "store_locator", DAY + n * 2000, query="x")
    for n in range(3):
        expect(capped, "i_want_to_go", None, DAY + n * 2000)
    expect(capped, "i_want_to_go", "frequency_cap", DAY + 3 * 2000)

    rushed = customer("rushed")  # two moments within a second
    log.add(rushed, "search", DAY, query="x")
    log.add(rushed, "store_locator", DAY + 500, query="y")
    expect(rushed, "i_want_to_know", None, DAY)
    expect(rushed, "i_want_to_go", "rate_limit", DAY + 500)

    control = customer("control", held_out=True)
    log.add(control, "search", DAY, query="x")
    expect(control, "i_want_to_know", "holdout", DAY)

    # the same instant on both sides of a time-zone boundary
    london, berlin = customer("london"), customer("berlin")
    log.add(london, "search", NIGHT, query="x")
    expect(london, "i_want_to_know", None, NIGHT)
    log.add(berlin, "search", NIGHT, tz="Europe/Berlin", query="x")
    expect(berlin, "i_want_to_know", "quiet_hours", NIGHT)  # held ...
    expect(berlin, "i_want_to_know", None, parse_ts("2026-01-16T07:00:00Z"))  # ... to 08:00

    # tickers move every partition's clock past the delays and the quiet hours
    for partition in range(3):
        ticker = next(f"ticker-{n}" for n in range(1000) if partition_of(
            orjson.dumps({"customer_id": f"ticker-{n}"}), 3) == partition)
        log.add(ticker, "page_view", END, url="/")
    return log, expected


def seen(values: list[dict[str, Any]]) -> set[tuple[str, str, str | None, str]]:
    return {(v["customer_id"], v["moment"], v.get("suppressed"), v["at"]) for v in values}


def test_each_moment_and_policy_through_the_worker(bootstrap: str, prefix: str,
                                                   tmp_path: Path) -> None:
    log, expected = story()
    lines = log.lines()
    definitions = tmp_path / "definitions.toml"
    definitions.write_text(RULES)
    topics = [f"{prefix}micro-moments", f"{prefix}micro-moments-suppressed"]
    with running_worker(bootstrap, prefix, tmp_path, "--definitions", str(definitions),
                        "--clock", "event", "--partitions", "3"):
        produce(bootstrap, f"{prefix}interactions", lines)
        records = consume(bootstrap, topics, count=len(expected), timeout=120, settle=3.0)
    assert_valid_outputs(records)
    values = [orjson.loads(raw) for _, _, raw in records]
    assert seen(values) == expected
    by_topic = {(t, v["moment"], v.get("suppressed")) for (t, _, _), v in zip(records, values,
                                                                           strict=True)}
    assert all((t == topics[1]) == (reason is not None) for t, _, reason in by_topic)

    held = [v for v in values if v.get("suppressed") == "quiet_hours"]
    assert [v["held_until"] for v in held] == ["2026-01-16T07:00:00.000Z"]
    fired = [v for v in values if v["moment"] == "cart_abandoned"]
    assert [v["cause"]["kind"] for v in fired] == ["time"]

    out = io.BytesIO()  # and offline, the same records
    replay_offline_log = tmp_path / "log.jsonl"
    replay_offline_log.write_bytes(b"".join(line + b"\n" for _, line in lines))
    replay_offline([replay_offline_log], parse_definitions(RULES), out, partitions=3)
    offline = [orjson.loads(line) for line in out.getvalue().splitlines()]
    offline_moments = [v for v in offline if "moment" in v]
    assert per_topic(values) == per_topic(offline_moments)


def per_topic(values: list[dict[str, Any]]) -> dict[tuple[str, bool], list[bytes]]:
    """Each customer's records per topic, in order (order holds within a partition)."""
    grouped: dict[tuple[str, bool], list[bytes]] = {}
    for v in values:
        key = (v["customer_id"], "suppressed" in v)
        grouped.setdefault(key, []).append(orjson.dumps(v, option=orjson.OPT_SORT_KEYS))
    return grouped
