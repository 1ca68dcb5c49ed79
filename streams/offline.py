"""``segstream replay --offline``: the worker's engine over a file, no broker.

Lines are processed in file order as one partition with an event-time clock, exactly
as a worker with ``--clock event`` processes a partition; a log sorted by time gives
the same records, in the same order per customer, as the worker.
"""

from __future__ import annotations

import gzip
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from segments.definitions import Definitions
from segments.engine import Engine
from segments.gate import Gate
from segments.processor import MemoryStore, Processor, Source
from streams.errors import UserError

__all__ = ["open_lines", "replay_offline"]


def open_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of a JSON-lines file, gzip or not; blank lines skipped."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield number, line


def replay_offline(paths: list[Path], definitions: Definitions, out: IO[bytes], *,
                   until: int | None = None, progress: bool = False) -> dict[str, int]:
    processor = Processor(Engine(definitions), Gate(), MemoryStore(), live=False)
    wall = time.time_ns() // 1_000_000
    written = consumed = 0
    started = time.perf_counter()
    write = out.write
    for path in paths:
        for number, line in open_lines(path):
            records = processor.process(line, Source(str(path), 0, number), wall)
            consumed += 1
            for record in records:
                write(orjson.dumps(record.value) + b"\n")
            written += len(records)
            if progress and consumed % 100_000 == 0:
                rate = consumed / (time.perf_counter() - started)
                print(f"\r{consumed:,} events, {rate:,.0f}/s", end="", file=sys.stderr)
    if until is not None:
        for record in processor.tick(0, until):
            write(orjson.dumps(record.value) + b"\n")
            written += 1
    elapsed = time.perf_counter() - started
    stats = processor.stats.get(0)
    summary = {"events": consumed, "records": written, "seconds": round(elapsed, 3)}
    if stats is not None:
        summary.update({k: v for k, v in stats.as_dict().items() if isinstance(v, int)})
    if progress:
        print(f"\r{consumed:,} events -> {written:,} records in {elapsed:.1f}s "
              f"({consumed / max(elapsed, 1e-9):,.0f} events/s)", file=sys.stderr)
    return summary
