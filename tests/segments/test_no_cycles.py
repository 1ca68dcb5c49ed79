"""The processor leaves no reference cycles behind.

The worker freezes its heap after recovery (``streams.heap.HeapSettler``) so that full
garbage collections stop walking the recovered state; that is only safe while the
state it freezes never becomes cyclic garbage, which reference counting cannot free.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import orjson

from segments import Engine, Gate, MemoryStore, Processor, Source, load_default

T0 = 1_790_000_000_000
MINUTE = 60_000


def events(start: int, count: int, customers: int) -> Iterator[tuple[int, bytes]]:
    for i in range(start, start + count):
        kind = ("product_view", "add_to_cart", "purchase", "search", "store_locator")[i % 5]
        props: dict[str, object] = {"product_id": f"p-{i % 50}", "price": 10.0,
                                    "category": "shoes"}
        if kind == "purchase":
            props = {"order_id": f"o-{i}", "revenue": 20.0}
        elif kind == "search":
            props = {"query": "running shoes near me"}
        elif kind == "store_locator":
            props = {}
        ts = T0 + i * MINUTE
        yield ts, orjson.dumps({"event_id": f"e{i}", "customer_id": f"c{i % customers}",
                                "type": kind, "ts": ts, "properties": props,
                                "context": {"tz": "Europe/Berlin", "device": "mobile"}})


def test_processing_with_models_creates_no_cyclic_garbage() -> None:
    processor = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False)
    for i, (ts, raw) in enumerate(events(0, 3_000, 300)):  # every customer exists
        processor.process(raw, Source("t", 0, i), ts)
    gc.collect()
    gc.disable()
    try:
        # replaces every customer's state many times and runs the time transitions
        for i, (ts, raw) in enumerate(events(3_000, 6_000, 300)):
            processor.process(raw, Source("t", 0, 3_000 + i), ts)
        processor.tick(0, T0 + 9_000 * MINUTE + 120 * 86_400_000)
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert len(processor.store.data) == 300
    assert unreachable == 0
