"""Following an output topic live (``segstream tail TOPIC``), for people or for pipes.

Reads every partition of one of the worker's output topics (no consumer group, so it
never disturbs anyone's offsets), from the end (live) or the beginning, keeps the
records that pass the filters and prints them as aligned lines (``table``) or one JSON
object per line (``json``). On exit (``--count`` reached, ``--idle`` seconds without a
record, or Ctrl-C) a summary line with counts and rates goes to stderr.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

import orjson

from segments.records import DEAD_LETTERS, MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, SEGMENT_CHANGES
from streams.errors import UserError
from streams.kafka_config import KafkaConfig
from streams.settings import Settings

__all__ = ["ISOLATION_LEVELS", "TOPICS", "Filters", "follow", "keep", "render"]

# the output topics, in the order the help lists them
TOPICS = (MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, SEGMENT_CHANGES, DEAD_LETTERS)
# Kafka's isolation levels: read_committed skips the records of open and aborted
# transactions (a worker with --guarantee exactly-once writes in transactions)
ISOLATION_LEVELS = ("read_committed", "read_uncommitted")


@dataclass(frozen=True, kw_only=True)
class Filters:
    """Which records to show; an empty filter keeps every record (the flags' names)."""

    customer: Sequence[str] | None = None
    moment: Sequence[str] | None = None
    segment: Sequence[str] | None = None
    change: str | None = None          # entered or exited
    reason: Sequence[str] | None = None  # the suppression or dead-letter reason


def keep(value: dict[str, Any], filters: Filters) -> bool:
    """Whether a record passes the filters."""
    if filters.customer and value.get("customer_id") not in filters.customer:
        return False
    if filters.moment and value.get("moment") not in filters.moment:
        return False
    if filters.segment and value.get("segment") not in filters.segment:
        return False
    if filters.change and value.get("change") != filters.change:
        return False
    return not (filters.reason and (value.get("suppressed") or value.get("reason"))
                not in filters.reason)


def render(value: dict[str, Any]) -> str:
    """One aligned line for a person."""
    if "segment" in value:
        sign = "+" if value.get("change") == "entered" else "-"
        cause = value.get("cause", {}).get("kind", "")
        return (f"{value.get('at', ''):<24} {value.get('customer_id', ''):<20} "
                f"{sign}{value['segment']:<24} {cause:<11} "
                f"{orjson.dumps(value.get('reason', {})).decode()}")
    if "moment" in value:
        state = value.get("suppressed") or "sent"
        if "held_until" in value:
            state += f" until {value['held_until']}"
        items = ",".join(str(i.get("product_id") or i.get("category") or "")
                         for i in value.get("items", [])[:3])
        local = (value.get("context") or {}).get("local_time") or "--:--"
        return (f"{value.get('at', ''):<24} {value.get('customer_id', ''):<20} "
                f"{value['moment']:<18} {value.get('score', 0):4.2f} {local} "
                f"{state:<14} {items}")
    source = value.get("source", {})
    return (f"{value.get('at', ''):<24} {source.get('key') or '-':<20} "
            f"{value.get('reason', ''):<18} {source.get('partition')}/{source.get('offset')} "
            f"{value.get('detail', '')[:80]}")


def _consumer(settings: Settings, topic: str, from_beginning: bool,
              isolation: str = "read_committed") -> Any:
    from kafka import KafkaConsumer, TopicPartition

    from streams.client.connect import client_settings, explained
    from streams.client.topics import CONNECT_TIMEOUT_MS

    bootstrap = settings.bootstrap
    with explained(settings):
        consumer = KafkaConsumer(**client_settings(settings), group_id=None,
                                 enable_auto_commit=False, fetch_max_wait_ms=100,
                                 request_timeout_ms=15_000, client_id="segstream-tail",
                                 isolation_level=isolation,
                                 bootstrap_timeout_ms=CONNECT_TIMEOUT_MS)
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        consumer.close()
        raise UserError(f"topic {topic} does not exist at {bootstrap} "
                        "(is the worker running with this --topic-prefix?)")
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    if from_beginning:
        consumer.seek_to_beginning(*assigned)
    else:
        consumer.seek_to_end(*assigned)
        for partition in assigned:  # resolve the end now: what comes after is shown
            consumer.position(partition)
        print(f"following {topic} from its end ({len(assigned)} partitions)",
              file=sys.stderr, flush=True)
    return consumer


def follow(bootstrap: str, topic: str, filters: Filters, *, table: bool,
           count: int | None = None, idle: float | None = None,
           from_beginning: bool = False, out: IO[str],
           kafka: KafkaConfig | None = None, isolation: str = "read_committed") -> None:
    """Print the records of ``topic`` (its deployed name) at ``bootstrap``, connected as
    ``kafka`` says (default: PLAINTEXT), that pass ``filters`` to ``out`` until ``count``
    are shown, ``idle`` seconds pass without one, or Ctrl-C; then the summary line to
    stderr. ``isolation``: one of :data:`ISOLATION_LEVELS`."""
    consumer = _consumer(Settings(bootstrap=bootstrap, kafka=kafka or KafkaConfig()), topic,
                         from_beginning, isolation)
    show: Callable[[dict[str, Any], bytes], str] = (
        (lambda value, raw: render(value)) if table
        else (lambda value, raw: raw.decode("utf-8", "replace")))
    started = last_record = time.monotonic()
    shown, read = 0, 0
    kinds: Counter[str] = Counter()
    try:
        while count is None or shown < count:
            batch = consumer.poll(timeout_ms=200)
            now = time.monotonic()
            if not batch:
                if idle is not None and now - last_record >= idle:
                    break
                continue
            last_record = now
            for records in batch.values():
                for record in records:
                    read += 1
                    value = orjson.loads(record.value)
                    if not keep(value, filters):
                        continue
                    shown += 1
                    kinds[value.get("moment") or value.get("segment")
                          or value.get("reason") or "?"] += 1
                    print(show(value, record.value), file=out, flush=True)
                    if count is not None and shown >= count:
                        break
                if count is not None and shown >= count:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        elapsed = max(time.monotonic() - started, 1e-9)
        top = ", ".join(f"{name} {n:,}" for name, n in kinds.most_common(6))
        print(f"{shown:,} of {read:,} records shown in {elapsed:.1f}s "
              f"({shown / elapsed:,.1f}/s){': ' + top if top else ''}", file=sys.stderr)
