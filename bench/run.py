"""`make bench`: validation cost per event and offline engine throughput.

Figures depend on the machine: report them with the command and `nproc`/CPU model.
"""

from __future__ import annotations

import platform
import time

import orjson

from segments import Engine, Gate, MemoryStore, Processor, Source, load_default
from segments.codec import encode_state

ADD_TO_CART = orjson.dumps({
    "event_id": "e-000123", "customer_id": "c-42", "type": "add_to_cart",
    "ts": "2026-11-22T10:15:00.250Z",
    "properties": {"product_id": "p-9", "quantity": 1, "price": 59.0, "category": "shoes"},
    "context": {"device": "mobile", "channel": "app", "session_id": "s-1",
                "geo": {"country": "DE", "city": "Berlin", "lat": 52.52, "lon": 13.4},
                "tz": "Europe/Berlin"}})
PURCHASE = orjson.dumps({
    "event_id": "e-000124", "customer_id": "c-42", "type": "purchase",
    "ts": 1795342500250,
    "properties": {"order_id": "o-1", "revenue": 118.0, "currency": "EUR",
                   "items": [{"product_id": "p-9", "quantity": 2, "price": 59.0}]}})
NOW = 1795342600000
SYNTHETIC_T0 = 1_790_000_000_000


def synthetic_event(i: int, customers: int) -> bytes:
    """Event ``i`` of the synthetic mix: views, carts, purchases and searches in turn,
    one second apart, customer ``i % customers``."""
    kind = ("product_view", "add_to_cart", "purchase", "search")[i % 4]
    props: dict[str, object] = {"product_id": f"p-{i % 50}", "price": 10.0}
    if kind == "purchase":
        props = {"order_id": f"o-{i}", "revenue": 20.0}
    elif kind == "search":
        props = {"query": "shoes"}
    return orjson.dumps({"event_id": f"e{i}", "customer_id": f"c{i % customers}",
                         "type": kind, "ts": SYNTHETIC_T0 + i * 1000, "properties": props})


def per_call_us(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    gate = Gate()
    n = 100_000
    print(f"machine: {platform.machine()} {platform.processor() or ''} python "
          f"{platform.python_version()}")
    for name, raw in (("add_to_cart", ADD_TO_CART), ("purchase", PURCHASE)):
        us = per_call_us(lambda raw=raw: gate.check(raw, NOW), n)
        print(f"gate.check (decode + schema + timestamp) {name:<12} {us:6.2f} us/event")
    processor = Processor(Engine(load_default()), gate, MemoryStore(), live=False)
    events = [synthetic_event(i, 5000) for i in range(200_000)]
    start = time.perf_counter()
    outputs = 0
    for i, raw in enumerate(events):
        outputs += len(processor.process(raw, Source("bench", 0, i), NOW))
    elapsed = time.perf_counter() - start
    states = list(processor.store.data.values())
    start = time.perf_counter()
    state_bytes = sum(len(encode_state(s)) for s in states)
    encode_us = (time.perf_counter() - start) / len(states) * 1e6
    print(f"processor (default definitions, 5,000 customers): {len(events) / elapsed:,.0f} "
          f"events/s, {outputs:,} records, {state_bytes / len(states):,.0f} bytes of state "
          f"per customer (encoded in {encode_us:.1f} us)")
    online_retail()


def online_retail() -> None:
    """The offline engine on the real Online Retail II log, when it is here."""
    import io
    import os
    import tempfile
    from pathlib import Path

    from streams.tools.importers import run_import
    from streams.tools.offline import replay_offline

    data = Path(os.environ.get("SEGSTREAM_DATA", Path(__file__).resolve().parents[2] /
                               "shared" / "data"))
    source = data / "online-retail-ii" / "online_retail_ii.parquet"
    if not source.is_file():
        print(f"online retail: skipped, {source} not found (set SEGSTREAM_DATA)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "events.jsonl"
        started = time.perf_counter()
        with log.open("wb") as out:
            report = run_import("online-retail", source, out)
        imported = time.perf_counter() - started
        out_buffer = io.BytesIO()
        summary = replay_offline([log], load_default(), out_buffer, partitions=3)
    seconds = summary["seconds"]
    print(f"online retail import: {report.read:,} lines -> {report.written:,} events in "
          f"{imported:.1f}s")
    print(f"online retail offline replay (default definitions, 3 partitions): "
          f"{summary['events']:,} events -> {summary['records']:,} records in {seconds:.1f}s "
          f"= {summary['events'] / seconds:,.0f} events/s; {summary['customers']:,} customers, "
          f"{summary['time_transitions']:,} time transitions, "
          f"{summary['state_bytes'] / summary['customers']:,.0f} bytes of state per customer")


if __name__ == "__main__":
    main()
