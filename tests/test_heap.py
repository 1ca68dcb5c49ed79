"""The worker's heap settler: what survives a slow full collection is frozen."""

from __future__ import annotations

import doctest
import gc
from collections.abc import Callable, Iterator

import pytest

import streams.heap
from streams.heap import HeapSettler

Settle = Callable[[float], tuple[HeapSettler, list[Callable[[], None]]]]


@pytest.fixture
def installed() -> Iterator[Settle]:
    """An installed settler whose freezes wait in a list, as they wait for the loop."""
    settlers: list[HeapSettler] = []

    def make(slow_ms: float) -> tuple[HeapSettler, list[Callable[[], None]]]:
        scheduled: list[Callable[[], None]] = []
        settler = HeapSettler(slow_ms=slow_ms, schedule=scheduled.append)
        settler.install()
        settlers.append(settler)
        return settler, scheduled

    yield make
    for settler in settlers:
        settler.uninstall()
    gc.unfreeze()


def test_the_docstring_example_runs() -> None:
    try:
        assert doctest.testmod(streams.heap).failed == 0
    finally:
        gc.unfreeze()


def test_a_slow_full_collection_schedules_a_freeze_of_the_survivors(
        installed: Settle) -> None:
    settler, scheduled = installed(0.0)
    kept = [[n] for n in range(50_000)]
    gc.collect(1)  # not a full collection: nothing to do
    assert scheduled == [] and settler.full_collections == 0
    gc.collect()
    assert settler.full_collections == 1 and len(scheduled) == 1
    assert gc.get_freeze_count() == 0  # only when the loop runs it
    scheduled[0]()
    assert settler.freezes == 1 and gc.get_freeze_count() >= len(kept)


def test_a_quick_full_collection_freezes_nothing(installed: Settle) -> None:
    settler, scheduled = installed(60_000.0)
    gc.collect()
    assert settler.full_collections == 1 and settler.last_full_ms < 60_000
    assert scheduled == []


def test_settle_freezes_now_and_leaked_counts_cyclic_garbage_left_frozen() -> None:
    settler = HeapSettler(slow_ms=60_000.0, schedule=lambda freeze: freeze())
    cycles = []
    for _ in range(1_000):
        node: list[object] = []
        node.append(node)
        cycles.append(node)
    settler.settle()
    assert gc.get_freeze_count() >= 1_000 and settler.freezes == 1
    del cycles, node  # now garbage that only a collection of the frozen heap can free
    assert gc.collect() == 0  # frozen: out of reach
    assert settler.leaked() >= 1_000
    assert gc.get_freeze_count() == 0
