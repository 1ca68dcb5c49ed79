"""``segstream replay FILE…`` (without ``--offline``): event logs into ``interactions``.

The files are JSON-lines event logs, gzip or not, each sorted by event time. They are
merged into one stream in time order (``heapq.merge``, stable: on equal times the
earlier file, then the earlier line, comes first), and every line is produced
*unchanged* (its exact bytes, without the newline) with the customer id as key.

Records of the merged stream are numbered from 0; that number is the *position*:

- ``skip`` ignores the first ``skip`` records; a ``checkpoint`` file (a small JSON
  document, rewritten atomically every few seconds after a flush, and at the end)
  holds the position up to which every record was produced and acknowledged, or
  filtered out, and a run that finds it resumes there. After a clean stop (the end,
  ``until``, Ctrl-C) that is no record twice and none lost; after a failed delivery,
  see below.
- ``start`` (``--from``, inclusive) and ``key`` filter records out (they still count
  in the position). ``until`` (exclusive) *stops* the replay at the first record at or
  after that instant: the checkpoint then points at that record, so a later run
  without ``until`` produces exactly the rest. (In a file that is not sorted, records
  after that point are not produced by this run even if they are earlier.)

A line that is not a JSON object with a readable ``ts`` keeps its place: it takes the
time of the previous line of its file, and the time filters use that time (before
any readable line it has none: it comes first and passes them); it has no key, and is
produced unchanged so that the worker dead-letters it with its exact bytes. A
readable line without a string ``customer_id`` is produced without a key, likewise.

Pacing: with ``speed`` s, the record with event time ``ts`` is sent at
``wall_start + (ts - ts_first) / s`` (see :func:`schedule`), computed from the start
every time, so sleeping never accumulates drift; ``rate`` caps events per second
with a token bucket. ``speed=None`` is "max": as fast as the producer goes.

Producer settings (kafka-python, :data:`PRODUCER_CONFIG`): ``acks=all`` (a record
counts as produced, and the checkpoint moves past it, once every in-sync replica has
it); ``retries=0`` with 5 requests in flight: a partition's records reach the broker in
the order sent, and a failed request stops the replay with one line instead of being
retried behind later ones, which would reorder a customer's events. Run it again to
resume from the checkpoint; what was sent after the last checkpoint is sent again and
the worker drops those duplicates by ``event_id``. (kafka-python's idempotent producer
retries safely but keeps one batch in flight per partition: ~20% slower here.)
``linger_ms=20``, ``batch_size=512 KiB`` (under the broker's default 1 MiB
``message.max.bytes``), no compression (only gzip is installed here, and on loopback it
costs CPU and saves nothing), metrics off. kafka-python 3 has no ``buffer_memory``;
memory stays bounded because the replay flushes every :data:`SYNC_SECONDS`.

Throughput: kafka-python computes each batch's CRC-32C in pure Python unless the
``crc32c`` package is installed (a dependency of segstream for that reason: without
it a producer stalls near 20,000 events/s on 2 cores). :func:`keyed_sender` skips
``KafkaProducer.send``'s per-call overhead, and only one future per record batch is
kept to detect failures.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from streams.errors import UserError
from streams.tools.eventlog import is_gzip, merged_records
from streams.tools.partitioner import partitioner
from streams.topics import BrokerUnavailable

__all__ = ["ReplayOptions", "ReplaySummary", "TokenBucket", "keyed_sender", "read_checkpoint",
           "replay_to_kafka", "schedule", "write_checkpoint"]

SYNC_SECONDS = 2.0          # flush, check deliveries and write the checkpoint this often
PROGRESS_SECONDS = 0.25     # at most 4 progress lines a second
SLEEP_SLICE = 0.05          # pacing sleeps in slices this long at most
CONNECT_TIMEOUT_MS = 5_000  # an unreachable broker is reported after this long
CHECKPOINT_VERSION = 1
FAST_SEND = True            # see keyed_sender(); False: plain KafkaProducer.send

PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": False,
    "retries": 0,
    "max_in_flight_requests_per_connection": 5,
    "linger_ms": 20,
    "batch_size": 512 * 1024,
    "compression_type": None,
    "metrics_enabled": False,
    "allow_auto_create_topics": False,
    "request_timeout_ms": 15_000,
    "delivery_timeout_ms": 30_000,
    "max_block_ms": 10_000,
    "bootstrap_timeout_ms": CONNECT_TIMEOUT_MS,
}


# --------------------------------------------------------------------------- options

@dataclass
class ReplayOptions:
    speed: float | None = None      # None: as fast as possible; 1.0: real time; 60.0: 60x
    rate: float | None = None       # at most this many events per second
    start: int | None = None        # epoch ms, inclusive (--from)
    until: int | None = None        # epoch ms, exclusive: the replay stops there
    key: str | None = None          # only this customer id
    skip: int = 0                   # ignore the first N records of the merged stream
    checkpoint: Path | None = None  # resume from / record the position here
    progress: bool = False          # a progress line on ``out``


# --------------------------------------------------------------------------- checkpoint

def _files_id(paths: Iterable[Path]) -> list[str]:
    return [str(p.resolve()) for p in paths]


def read_checkpoint(path: Path | None, paths: list[Path]) -> int:
    """The position recorded in ``path`` (0 if there is none yet)."""
    if path is None or not path.exists():
        return 0
    try:
        document = json.loads(path.read_text())
        position = int(document["position"])
        files = document.get("files")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a replay checkpoint ({type(exc).__name__})") from exc
    if position < 0:
        raise UserError(f"{path}: not a replay checkpoint (negative position)")
    if files is not None and files != _files_id(paths):
        raise UserError(f"{path}: checkpoint of other files ({', '.join(files)}); "
                        "delete it to start over")
    return position


def write_checkpoint(path: Path, paths: list[Path], position: int, topic: str) -> None:
    """Atomically record that the first ``position`` records are done."""
    document = {"version": CHECKPOINT_VERSION, "position": position,
                "files": _files_id(paths), "topic": topic,
                "updated": datetime.now(UTC).isoformat(timespec="seconds")}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- pacing

def schedule(ts: int, ts_first: int, wall_start: float, speed: float) -> float:
    """Wall-clock instant (same clock as ``wall_start``, seconds) to send event ``ts``."""
    return wall_start + (ts - ts_first) / (1000.0 * speed)


class TokenBucket:
    """At most ``rate`` events a second on average, bursts of at most ``burst``."""

    def __init__(self, rate: float, now: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate / 20)
        self.tokens = self.burst
        self.stamp = now

    def delay(self, now: float) -> float:
        """Take a token if there is one (0.0); else the seconds until there is one."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


# --------------------------------------------------------------------------- progress

def _uncompressed_size(path: Path) -> int:
    """File size; for gzip the trailer's ISIZE (exact below 4 GiB, one member)."""
    size = path.stat().st_size
    if size < 18 or not is_gzip(path):
        return size
    with path.open("rb") as handle:
        handle.seek(-4, os.SEEK_END)
        return int(struct.unpack("<I", handle.read(4))[0])


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Progress:
    def __init__(self, out: IO[str], total_bytes: int, enabled: bool) -> None:
        self.out = out
        self.total = total_bytes
        self.enabled = enabled
        self.started = time.monotonic()
        self.next = self.started
        self.width = 0

    def show(self, now: float, produced: int, done_bytes: int, final: bool = False) -> None:
        if not self.enabled or (now < self.next and not final):
            return
        self.next = now + PROGRESS_SECONDS
        elapsed = max(now - self.started, 1e-9)
        text = f"{produced:,} events  {produced / elapsed:,.0f}/s"
        if self.total > 0:
            fraction = min(done_bytes / self.total, 1.0)
            text += f"  {done_bytes / 1e6:,.1f}/{self.total / 1e6:,.1f} MB ({fraction:.0%})"
            if not final and 0 < fraction < 1:
                text += f"  ETA {_clock(elapsed * (1 - fraction) / fraction)}"
        text += f"  {_clock(elapsed)}"
        pad = " " * max(self.width - len(text), 0)
        self.width = len(text)
        self.out.write(f"\r{text}{pad}" + ("\n" if final else ""))
        self.out.flush()


# --------------------------------------------------------------------------- kafka

def _partition_count(admin: Any, topic: str) -> int | None:
    # kafka-python 3 names the topic "name" in describe_topics (2.x: "topic").
    for entry in admin.describe_topics([topic]):
        if topic in (entry.get("name"), entry.get("topic")) and not entry.get("error_code"):
            return len(entry.get("partitions") or []) or None
    return None


def _connect(bootstrap: str, topic: str) -> tuple[Any, int]:
    """A tuned producer and the partition count of ``topic``; one-line errors."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000,
                                 bootstrap_timeout_ms=CONNECT_TIMEOUT_MS,
                                 client_id="segstream-replay-admin")
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}") from exc
    try:
        partitions = _partition_count(admin, topic)
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"cannot read topic {topic} at {bootstrap}: {type(exc).__name__}") from exc
    finally:
        admin.close()
    if partitions is None:
        raise UserError(f"topic {topic} does not exist at {bootstrap} "
                        "(create it with `segstream topics create`)")
    try:
        producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="segstream-replay",
                                 **PRODUCER_CONFIG)
        partitions = len(producer.partitions_for(topic))
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"cannot reach Kafka at {bootstrap}: {type(exc).__name__}") from exc
    return producer, partitions


def keyed_sender(producer: Any, topic: str, fast: bool = True) -> tuple[Any, bool]:
    """``send(key, value, partition) -> future`` for ``topic``, and whether it is fast.

    The fast one appends straight to kafka-python's record accumulator, as
    ``KafkaProducer.send`` does after its per-call checks, logging and partitioning
    (about a third of its cost; those checks hold here by construction: bytes key and
    value, no headers, a known topic and partition). It relies on kafka-python 3
    internals, so it is used only when they look exactly as expected; otherwise, or
    with ``fast=False``, it is plain ``KafkaProducer.send``.
    """
    import inspect

    from kafka.errors import MessageSizeTooLargeError
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from kafka.structs import TopicPartition

    def plain(key: bytes, value: bytes, partition: int) -> Any:
        return producer.send(topic, value=value, key=key, partition=partition)

    accumulator = getattr(producer, "_accumulator", None)
    sender = getattr(producer, "_sender", None)
    try:
        parameters = list(inspect.signature(accumulator.append).parameters)  # type: ignore[union-attr]
    except (TypeError, ValueError, AttributeError):
        parameters = []
    usable = (fast and parameters[:5] == ["tp", "timestamp_ms", "key", "value", "headers"]
              and callable(getattr(sender, "wakeup", None))
              and getattr(producer, "_transaction_manager", None) is None
              and producer.config.get("compression_type") is None)
    partitions = producer.partitions_for(topic)  # also makes the sender track the topic
    if not usable or not partitions:
        return plain, False
    append = accumulator.append  # type: ignore[union-attr]
    wakeup = sender.wakeup  # type: ignore[union-attr]
    tps = {p: TopicPartition(topic, p) for p in partitions}
    headers: list[tuple[str, bytes]] = []  # shared, never mutated
    limit = int(producer.config["max_request_size"])
    estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes
    small = limit - 1024  # below this no estimate is needed

    def send(key: bytes, value: bytes, partition: int) -> Any:
        if len(value) + len(key) > small and estimate(key, value, headers) > limit:
            raise MessageSizeTooLargeError(
                f"the record is {len(value):,} bytes, more than max_request_size {limit:,}")
        future, full, new_batch, _ = append(tps[partition], None, key, value, headers)
        if full or new_batch:
            wakeup()
        return future

    return send, True


@dataclass(frozen=True)
class ReplaySummary:
    produced: int
    skipped_filtered: int   # skipped (--skip, checkpoint) or filtered out (--from, --key)
    unparsable: int         # produced anyway, for the worker to dead-letter
    seconds: float
    events_per_s: float

    def summary(self) -> str:
        return (f"replayed {self.produced:,} events in {self.seconds:.1f}s "
                f"({self.events_per_s:,.0f} events/s); {self.skipped_filtered:,} skipped or "
                f"filtered, {self.unparsable:,} unparsable (sent for dead-lettering)")


def replay_to_kafka(paths: list[Path], bootstrap: str, topic: str, options: ReplayOptions,
                    *, out: IO[str] | None = None) -> ReplaySummary:
    """Produce the merged records of ``paths`` to ``topic``; see the module docstring.

    ``out`` (default: ``sys.stderr`` at call time) gets the progress line. Raises
    UserError (missing file, missing topic, a record the broker refused) or
    BrokerUnavailable, each with a one-line message; on any error or Ctrl-C the
    checkpoint first records what was acknowledged.
    """
    from kafka.errors import KafkaError

    out = sys.stderr if out is None else out
    paths = list(paths)
    records = merged_records(paths)  # raises UserError for a missing file, before connecting
    resume = read_checkpoint(options.checkpoint, paths)
    skip = max(options.skip, resume)
    start, until, speed = options.start, options.until, options.speed
    only = None if options.key is None else options.key.encode()

    producer, partitions = _connect(bootstrap, topic)
    partition_of = partitioner(partitions)
    send = producer.send
    send_keyed, _ = keyed_sender(producer, topic, FAST_SEND)
    monotonic = time.monotonic
    progress = _Progress(out, sum(_uncompressed_size(p) for p in paths), options.progress)
    bucket = None if options.rate is None else TokenBucket(options.rate, monotonic())

    pending: set[Any] = set()  # batch futures (or record futures) since the last sync
    pending_add = pending.add
    produced = skipped = unparsable = 0
    position = 0      # records of the merged stream handled (produced or filtered)
    done_bytes = 0
    ts_first: int | None = None
    wall_start = 0.0
    started = monotonic()
    next_sync = started + SYNC_SECONDS

    def sync() -> None:
        nonlocal next_sync
        try:
            producer.flush(timeout=PRODUCER_CONFIG["delivery_timeout_ms"] / 1000 + 5)
        except KafkaError as exc:
            raise UserError(f"cannot produce to {topic} at {bootstrap}: "
                            f"{type(exc).__name__}") from exc
        for future in pending:
            if future.failed():
                raise UserError(f"cannot produce to {topic} at {bootstrap}: "
                                f"{type(future.exception).__name__}: {future.exception}")
        pending.clear()
        if options.checkpoint is not None:
            write_checkpoint(options.checkpoint, paths, position, topic)
        next_sync = monotonic() + SYNC_SECONDS

    def tick() -> None:
        now = monotonic()
        progress.show(now, produced, done_bytes)
        if now >= next_sync:
            sync()

    def wait_until(deadline: float) -> None:
        while (left := deadline - monotonic()) > 0:
            time.sleep(min(left, SLEEP_SLICE))
            tick()

    completed = False
    try:
        for record in records:
            done_bytes += len(record.value) + 1
            if position < skip:
                position += 1
                skipped += 1
                continue
            ts = record.ts
            if ts is not None:
                if until is not None and ts >= until:
                    break
                if start is not None and ts < start:
                    position += 1
                    skipped += 1
                    continue
            key = record.key
            if only is not None and key != only:
                position += 1
                skipped += 1
                continue
            if speed is not None and ts is not None:
                if ts_first is None:
                    ts_first, wall_start = ts, monotonic()
                else:
                    due = wall_start + (ts - ts_first) / (1000.0 * speed)  # = schedule()
                    if due > monotonic():
                        wait_until(due)
            if bucket is not None:
                while (delay := bucket.delay(monotonic())) > 0:
                    wait_until(monotonic() + delay)
            try:
                if key is None:
                    future = send(topic, value=record.value)
                else:
                    future = send_keyed(key, record.value, partition_of(key))
                # One future per record batch is enough to see a failure: they fail
                # together. Keeping every record's future costs ~15% in GC alone.
                pending_add(getattr(future, "_produce_future", future))
            except KafkaError as exc:
                raise UserError(f"{record.file}:{record.line}: cannot produce to {topic}: "
                                f"{type(exc).__name__}: {exc}") from exc
            produced += 1
            if not record.parsed:
                unparsable += 1
            position += 1
            if not produced & 1023:
                tick()
        sync()
        completed = True
    except BaseException:
        # Record what did get through, so a later run resumes there, then report. A
        # record sent but not acknowledged at that point may be sent again on resume.
        if not completed:
            with contextlib.suppress(Exception):
                sync()
        raise
    finally:
        with contextlib.suppress(Exception):
            producer.close(timeout=5)
    elapsed = monotonic() - started
    progress.show(monotonic(), produced, done_bytes, final=True)
    return ReplaySummary(produced, skipped, unparsable, round(elapsed, 3),
                         produced / max(elapsed, 1e-9))
