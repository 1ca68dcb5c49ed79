"""A time step that raises stops neither the partition nor its other customers."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from segments.definitions import load_default
from segments.engine import Engine
from segments.gate import Gate
from segments.processor import MemoryStore, Processor, Source
from segments.state import CustomerState

T0 = 1_795_000_000_000
DAY = 86_400_000


def cart(customer: str, n: int, ts: int) -> tuple[bytes, Source]:
    raw = orjson.dumps({"event_id": f"e-{customer}-{n}", "customer_id": customer,
                        "type": "add_to_cart", "ts": ts,
                        "properties": {"product_id": "p-1", "price": 10.0}})
    return raw, Source("interactions", 0, n, customer.encode(), ts)


class FailsFor(Engine):
    """The shipped engine, whose time step raises for one customer (a bug's stand-in)."""

    def __init__(self, customer: str) -> None:
        super().__init__(load_default())
        self.customer = customer

    def on_time(self, state: CustomerState, now: int, *args: Any, **kwargs: Any) -> Any:
        if state.customer_id == self.customer:
            raise ZeroDivisionError("a bug")
        return super().on_time(state, now, *args, **kwargs)


def test_a_failing_time_step_is_counted_logged_and_the_others_go_on(
        caplog: pytest.LogCaptureFixture) -> None:
    processor = Processor(FailsFor("bad"), Gate(), MemoryStore(), live=False)
    healthy = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False)
    records = [cart("bad", 0, T0), cart("good", 1, T0 + 1)]
    for raw, source in records:
        processor.process(raw, source, wall=T0)
        healthy.process(raw, source, wall=T0)
    with caplog.at_level(logging.ERROR, logger="segments.processor"):
        fired = processor.tick(0, T0 + 3 * DAY)
        # the failed customer's due is dropped: the next tick does not raise again
        fired += processor.tick(0, T0 + 4 * DAY)
    expected = healthy.tick(0, T0 + 3 * DAY) + healthy.tick(0, T0 + 4 * DAY)
    good = [o.value for o in fired]
    assert good and good == [o.value for o in expected if o.key == "good"]
    stats = processor.stats[0].as_dict()
    assert stats["time_errors"] == 1, stats
    assert [r.message for r in caplog.records] == [
        "time step failed for customer 'bad' in partition 0"]
    assert "ZeroDivisionError: a bug" in caplog.text  # the traceback is kept
    # its next event schedules it again
    processor.process(*cart("bad", 2, T0 + 5 * DAY), wall=T0 + 5 * DAY)
    assert processor.stats[0].applied == 3
    assert processor.store.get("bad").due is not None  # type: ignore[union-attr]
