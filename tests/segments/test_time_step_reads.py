"""A time step changes nothing the schedule reads: the engine asks the schedule for a
step's moving features and its next instant before the step's changes
(:meth:`segments.schedule.Schedule.at_due`), which is right only while that holds."""

from __future__ import annotations

from typing import Any

import orjson

from segments.definitions import load_default
from segments.engine import Engine, TimeStep
from segments.gate import Gate
from segments.processor import MemoryStore, Processor, Source
from segments.state import CustomerState
from streams.tools.simulate import simulate

T0 = 1_795_000_000_000


def _read_by_the_schedule(state: CustomerState) -> Any:
    return (state.last_purchase, state.first_purchase, state.last_seen, state.cart_updated,
            orjson.dumps(state.orders), orjson.dumps(state.counters, option=orjson.OPT_SORT_KEYS),
            dict(state.devices), dict(state.features_used))


class Checked(Engine):
    steps = 0

    def on_time(self, state: CustomerState, now: int, *args: Any, **kwargs: Any) -> TimeStep:
        before = _read_by_the_schedule(state)
        step = super().on_time(state, now, *args, **kwargs)
        assert _read_by_the_schedule(state) == before, state.customer_id
        Checked.steps += 1
        return step


def test_a_time_step_leaves_what_the_schedule_reads() -> None:
    processor = Processor(Checked(load_default()), Gate(), MemoryStore(), live=False)
    for n, event in enumerate(simulate(customers=60, days=45, seed=5, start=T0)):
        raw = orjson.dumps(event)
        processor.process(raw, Source("interactions", 0, n), wall=event["ts"])
    assert Checked.steps > 100
