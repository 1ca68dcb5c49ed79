"""Offline replay (``segstream replay --offline``): the worker's engine over event
logs, in this process, with no broker.

Each line goes to the partition Kafka's default partitioner would give its key (the
customer id; :mod:`streams.tools.partitioner`) among ``partitions``, and each
partition runs with an event-time clock, exactly as a worker with ``--clock event``
runs the partitions of its topic. Partitions matter because each
has its own clock and its own RFM population. So a log replayed offline with the
topic's partition count gives the same records, in the same order per customer, as
the worker that consumes the same log.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import IO

import orjson

from segments.codec import encode_state
from segments.definitions import Definitions
from segments.engine import Engine
from segments.gate import Gate
from segments.processor import MemoryStore, Processor, Source
from streams.tools.eventlog import open_lines
from streams.tools.partitioner import partition_for

__all__ = ["partition_of", "replay_offline"]


def partition_of(line: bytes, partitions: int) -> int:
    """The partition a producer keyed by customer id sends ``line`` to (0 if it has none)."""
    if partitions == 1:
        return 0
    try:
        key = orjson.loads(line)["customer_id"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return 0
    if not isinstance(key, str):
        return 0
    return partition_for(key.encode(), partitions)


def replay_offline(paths: list[Path], definitions: Definitions, out: IO[bytes], *,
                   until: int | None = None, partitions: int = 3,
                   progress: bool = False) -> dict[str, int]:
    store = MemoryStore()
    processor = Processor(Engine(definitions), Gate(), store, live=False)
    wall = time.time_ns() // 1_000_000
    written = consumed = 0
    started = time.perf_counter()
    write = out.write
    for path in paths:
        for number, line in open_lines(path):
            partition = partition_of(line, partitions)
            records = processor.process(line, Source(str(path), partition, number), wall)
            consumed += 1
            for record in records:
                write(orjson.dumps(record.value) + b"\n")
            written += len(records)
            if progress and consumed % 100_000 == 0:
                rate = consumed / (time.perf_counter() - started)
                print(f"\r{consumed:,} events, {rate:,.0f}/s", end="", file=sys.stderr)
    if until is not None:
        for partition in range(partitions):
            for record in processor.tick(partition, until):
                write(orjson.dumps(record.value) + b"\n")
                written += 1
    elapsed = time.perf_counter() - started
    summary = {"events": consumed, "records": written, "seconds": round(elapsed, 3)}
    for stats in processor.stats.values():
        for name, value in stats.as_dict().items():
            if isinstance(value, int):
                summary[name] = summary.get(name, 0) + value
    summary["customers"] = len(store.data)
    summary["state_bytes"] = sum(len(encode_state(state))
                                 for state in store.data.values())
    if progress:
        print(f"\r{consumed:,} events -> {written:,} records in {elapsed:.1f}s "
              f"({consumed / max(elapsed, 1e-9):,.0f} events/s)", file=sys.stderr)
    return summary
