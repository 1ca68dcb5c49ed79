"""The broker replay (``segstream replay FILE…`` without ``--offline``): the producer
loop that sends event logs into ``interactions``.

The files are JSON-lines event logs, gzip or not, each sorted by event time. They are
merged into one stream in time order (:func:`streams.tools.eventlog.merged_records`),
and every line is produced *unchanged* (its exact bytes, without the newline) with the
customer id as key, to the partition Kafka's default partitioner gives that key
(:mod:`streams.tools.partitioner`).

Records of the merged stream are numbered from 0; that number is the *position*:

- ``skip`` ignores the first ``skip`` records; a ``checkpoint`` file
  (:mod:`streams.client.replay_checkpoint`, rewritten every few seconds after a flush,
  and at the end) holds the position up to which every record was produced and
  acknowledged, or filtered out, and a run that finds it resumes there. After a clean stop (the end,
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

Pacing (:mod:`streams.client.pacing`): with ``speed`` s, the record with event time
``ts`` is sent at ``wall_start + (ts - ts_first) / s``, computed from the start every
time, so sleeping never accumulates drift; ``rate`` caps events per second with a
token bucket. ``speed=None`` is "max": as fast as the producer goes. The progress line
is :mod:`streams.tools.progress` (Rich's bar on a terminal).

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
it a producer stalls near 20,000 events/s on 2 cores).
:func:`streams.client.fast_send.keyed_sender` skips ``KafkaProducer.send``'s per-call
overhead, and only one future per record batch is kept to detect failures.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from streams.client.connect import BrokerUnavailable, client_settings, explained, message
from streams.client.fast_send import keyed_sender
from streams.client.pacing import TokenBucket
from streams.client.replay_checkpoint import read_checkpoint, write_checkpoint
from streams.client.topics import connect_admin, partition_count
from streams.errors import UserError
from streams.kafka_config import KafkaConfig
from streams.settings import Settings
from streams.tools.eventlog import merged_records
from streams.tools.partitioner import partitioner
from streams.tools.progress import progress_for, uncompressed_size

__all__ = ["PRODUCER_CONFIG", "ReplayOptions", "ReplaySummary", "replay_to_kafka"]

SYNC_SECONDS = 2.0          # flush, check deliveries and write the checkpoint this often
SLEEP_SLICE = 0.05          # pacing sleeps in slices this long at most
CONNECT_TIMEOUT_MS = 5_000  # an unreachable broker is reported after this long
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


# --------------------------------------------------------------------------- kafka

def _connect(settings: Settings, topic: str) -> tuple[Any, int]:
    """A tuned producer and the partition count of ``topic``; one-line errors."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    bootstrap = settings.bootstrap
    admin = connect_admin(settings, "segstream-replay-admin",
                          connect_timeout_ms=CONNECT_TIMEOUT_MS)
    try:
        partitions = partition_count(admin, topic)
    except KafkaError as exc:
        raise BrokerUnavailable(message(settings, f"read topic {topic}", [exc])) from None
    finally:
        admin.close()
    if partitions is None:
        raise UserError(f"topic {topic} does not exist at {bootstrap} "
                        "(create it with `segstream topics create`)")
    with explained(settings):
        producer = KafkaProducer(**client_settings(settings), client_id="segstream-replay",
                                 **PRODUCER_CONFIG)
        partitions = len(producer.partitions_for(topic))
    return producer, partitions


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
                    *, out: IO[str] | None = None,
                    kafka: KafkaConfig | None = None) -> ReplaySummary:
    """Produce the merged records of ``paths`` to ``topic`` at ``bootstrap``, connected
    as ``kafka`` says (default: PLAINTEXT); see the module docstring.

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

    producer, partitions = _connect(Settings(bootstrap=bootstrap, kafka=kafka or KafkaConfig()),
                                    topic)
    partition_of = partitioner(partitions)
    send = producer.send
    send_keyed, _ = keyed_sender(producer, topic, FAST_SEND)
    monotonic = time.monotonic
    progress = progress_for(out, sum(uncompressed_size(p) for p in paths), options.progress)
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
                    due = wall_start + (ts - ts_first) / (1000.0 * speed)  # = pacing.schedule()
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
        if not completed:
            progress.close()
        with contextlib.suppress(Exception):
            producer.close(timeout=5)
    elapsed = monotonic() - started
    progress.show(monotonic(), produced, done_bytes, final=True)
    return ReplaySummary(produced, skipped, unparsable, round(elapsed, 3),
                         produced / max(elapsed, 1e-9))
