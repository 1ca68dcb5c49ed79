"""A model vector's plain values read at once from the features' cache
(Features.read_all) are the features one by one, whatever was computed before."""

from __future__ import annotations

import orjson

from segments.definitions import load_default
from segments.engine import Engine
from segments.features import Features
from segments.gate import Gate
from segments.models.vector import Base, base_values
from segments.processor import MemoryStore, Processor, Source
from streams.tools.simulate import simulate

T0 = 1_795_000_000_000
DAY = 86_400_000


def test_base_values_are_the_features_of_their_names() -> None:
    store = MemoryStore()
    processor = Processor(Engine(load_default()), Gate(), store, live=False, models=False)
    for n, event in enumerate(simulate(customers=40, days=20, seed=2, start=T0)):
        processor.process(orjson.dumps(event), Source("interactions", 0, n), wall=event["ts"])
    assert len(store.data) > 10
    for state in store.data.values():
        for now in (T0 + 20 * DAY, T0 + 120 * DAY):
            expected = tuple(Features(state, now)[name] for name in Base._fields)
            assert base_values(Features(state, now)) == expected
            partly = Features(state, now)
            partly["sessions_30d"]  # a group computed before, the others not
            assert base_values(partly) == expected
            assert base_values(partly) == expected  # all cached now
