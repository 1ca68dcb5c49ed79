"""Offline replay (``segstream replay --offline``): the worker's engine over event
logs, in this process, with no broker.

Each line goes to the partition Kafka's default partitioner would give its key (the
customer id; :mod:`streams.tools.partitioner`) among ``partitions``, and each
partition runs with an event-time clock, exactly as a worker with ``--clock event``
runs the partitions of its topic. Partitions matter because each
has its own clock and its own RFM population. So a log replayed offline with the
topic's partition count gives the same records, in the same order per customer, as
the worker that consumes the same log.

Partitions are independent, so ``--jobs N`` replays them in N processes and merges
their records back into one process's order, byte for byte.
"""

from __future__ import annotations

import heapq
import multiprocessing
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

import orjson

from segments.codec import encode_state
from segments.definitions import Definitions
from segments.engine import Engine
from segments.gate import Gate
from segments.models.refits import refit_pool
from segments.processor import MemoryStore, Processor, Source
from streams.tools.eventlog import open_lines
from streams.tools.partitioner import partition_for
from streams.tools.progress import Shown, progress_for, total_size

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
    # a customer's partition is a pure function of the key: hashed once per customer
    cached = _PARTITION_OF.get((key, partitions))
    if cached is None:
        if len(_PARTITION_OF) >= _PARTITION_CACHE_SIZE:
            _PARTITION_OF.clear()
        cached = _PARTITION_OF[key, partitions] = partition_for(key.encode(), partitions)
    return cached


_PARTITION_OF: dict[tuple[str, int], int] = {}
_PARTITION_CACHE_SIZE = 1 << 20


def replay_offline(paths: list[Path], definitions: Definitions, out: IO[bytes], *,
                   until: int | None = None, partitions: int = 3,
                   progress: bool = False, jobs: int = 1) -> dict[str, int]:
    """Replay ``paths`` through the engine; write the outputs to ``out``; a summary.

    With ``jobs`` > 1 the partitions are shared among that many processes (they are
    independent: each has its own clock, population and models) and their records
    are merged back into the order one process writes them, byte for byte."""
    started = time.perf_counter()
    wall = time.time_ns() // 1_000_000
    jobs = max(1, min(jobs, partitions))
    if jobs == 1:
        summary = _replay_partitions(paths, definitions, out.write, until=until,
                                     partitions=partitions, wall=wall, progress=progress)
    else:
        summary = _replay_in_jobs(paths, definitions, out, until=until,
                                  partitions=partitions, wall=wall, jobs=jobs,
                                  progress=progress)
    elapsed = time.perf_counter() - started
    summary["seconds"] = round(elapsed, 3)
    if progress:
        print(f"\r{summary['events']:,} events -> {summary['records']:,} records in "
              f"{elapsed:.1f}s ({summary['events'] / max(elapsed, 1e-9):,.0f} events/s)",
              file=sys.stderr)
    return summary


def _replay_partitions(paths: list[Path], definitions: Definitions,
                       write: Callable[[bytes], object], *, until: int | None,
                       partitions: int, wall: int, progress: bool = False,
                       mine: frozenset[int] | None = None,
                       sequenced: bool = False) -> dict[str, int]:
    """Replay the lines of the partitions in ``mine`` (all when ``None``).

    ``sequenced``: each record is written as ``<sequence>\t<record>``, the sequence
    being the line it came from (lines of every partition counted), so records of
    several jobs can be merged back in order."""
    store = MemoryStore()
    with _RefitPool() as refits:
        processor = Processor(Engine(definitions), Gate(), store, live=False,
                              submit=refits.submit)
        summary = _replay_lines(processor, paths, write, until=until, partitions=partitions,
                                wall=wall, progress=progress, mine=mine, sequenced=sequenced)
    summary["customers"] = len(store.data)
    summary["state_bytes"] = sum(len(encode_state(state))
                                 for state in store.data.values())
    return summary


class _RefitPool:
    """BG/NBD refits in a process of their own, as the worker runs them: each applies
    at the same event-time instant either way, and the replay does not wait for one
    unless its clock reaches that instant first. Started at the first refit."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None

    def submit(self, function: Callable[..., Any], *args: Any) -> Future[Any]:
        if self.pool is None:
            # forked, not spawned: a spawned child re-runs the caller's main module,
            # and this process has no threads of its own to trouble a fork
            self.pool = refit_pool("fork")
        return self.pool.submit(function, *args)

    def __enter__(self) -> _RefitPool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _replay_lines(processor: Processor, paths: list[Path], write: Callable[[bytes], object],
                  *, until: int | None, partitions: int, wall: int, progress: bool,
                  mine: frozenset[int] | None, sequenced: bool) -> dict[str, int]:
    written = consumed = sequence = done_bytes = 0
    shown = (progress_for(sys.stderr, total_size(paths), True)
             if progress else None)
    try:
        for path in paths:
            written, consumed, sequence, done_bytes = _replay_file(
                processor, path, write, partitions, wall, mine, sequenced, shown,
                (written, consumed, sequence, done_bytes))
    except BaseException:
        if shown is not None:
            shown.close()  # the cursor back before the error is shown
        raise
    if shown is not None:
        shown.show(time.monotonic(), sequence, done_bytes, final=True)
    if until is not None:
        for partition in range(partitions):
            if mine is not None and partition not in mine:
                continue
            prefix = b"%d\t" % (sequence + 1 + partition) if sequenced else b""
            for record in processor.tick(partition, until):
                write(prefix + orjson.dumps(record.value) + b"\n")
                written += 1
    summary = {"events": consumed, "records": written}
    for stats in processor.stats.values():
        for name, value in stats.as_dict().items():
            if isinstance(value, int):
                summary[name] = summary.get(name, 0) + value
    return summary


def _replay_file(processor: Processor, path: Path, write: Callable[[bytes], object],
                 partitions: int, wall: int, mine: frozenset[int] | None, sequenced: bool,
                 shown: Shown | None,
                 counts: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """One file's lines through ``processor``; the running (records written, events
    consumed, lines read, bytes read). The bar, when shown, counts the lines read: in a
    job that is every partition's, so the first job's bar is the whole replay's."""
    written, consumed, sequence, done_bytes = counts
    monotonic = time.monotonic
    for number, line in open_lines(path):
        sequence += 1
        if shown is not None:
            done_bytes += len(line) + 1
            if not sequence & 1023:
                shown.show(monotonic(), sequence, done_bytes)
        partition = partition_of(line, partitions)
        if mine is not None and partition not in mine:
            continue
        records = processor.process(line, Source(str(path), partition, number), wall)
        consumed += 1
        prefix = b"%d\t" % sequence if sequenced else b""
        for record in records:
            write(prefix + orjson.dumps(record.value) + b"\n")
        written += len(records)
    return written, consumed, sequence, done_bytes


def _job(send: Connection, paths: list[Path], definitions: Definitions,
         until: int | None, partitions: int, wall: int, mine: frozenset[int],
         out: Path, progress: bool) -> None:
    try:
        with out.open("wb") as file:
            send.send(_replay_partitions(paths, definitions, file.write, until=until,
                                         partitions=partitions, wall=wall, mine=mine,
                                         sequenced=True, progress=progress))
    except BaseException:
        send.send(traceback.format_exc())
        raise
    finally:
        send.close()


def _replay_in_jobs(paths: list[Path], definitions: Definitions, out: IO[bytes], *,
                    until: int | None, partitions: int, wall: int, jobs: int,
                    progress: bool) -> dict[str, int]:
    # forked: every job has this process's hash seed and compiled definitions (which
    # do not pickle), and starts at once
    context = multiprocessing.get_context("fork")
    shares = [frozenset(range(job, partitions, jobs)) for job in range(jobs)]
    if progress:
        print(f"{jobs} jobs over partitions "
              f"{', '.join(str(sorted(share)) for share in shares)}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="segstream-replay-") as tmp:
        files = [Path(tmp) / f"job-{job}" for job in range(jobs)]
        running = []
        for job, (share, file) in enumerate(zip(shares, files, strict=True)):
            receive, send = context.Pipe(duplex=False)
            # every job reads every line: the first one's bar is the whole replay's
            process = context.Process(target=_job, args=(send, paths, definitions, until,
                                                         partitions, wall, share, file,
                                                         progress and job == 0))
            process.start()
            send.close()
            running.append((process, receive))
        summaries = []
        for process, receive in running:
            try:
                result = receive.recv()
            except EOFError:
                result = f"a replay job died (exit code {process.join() or process.exitcode})"
            process.join()
            if not isinstance(result, dict):
                for other, _ in running:
                    other.kill()
                raise RuntimeError(f"offline replay job failed:\n{result}")
            summaries.append(result)
        handles = [file.open("rb") for file in files]
        try:
            # a line's records all come from one job: the merge keeps their order
            for _, line in heapq.merge(*(map(_split, handle) for handle in handles),
                                       key=_sequence):
                out.write(line)
        finally:
            for handle in handles:
                handle.close()
    summary: dict[str, int] = {}
    for part in summaries:
        for name, value in part.items():
            summary[name] = summary.get(name, 0) + value
    return summary


def _sequence(item: tuple[int, bytes]) -> int:
    return item[0]


def _split(line: bytes) -> tuple[int, bytes]:
    sequence, _, record = line.partition(b"\t")
    return int(sequence), record
