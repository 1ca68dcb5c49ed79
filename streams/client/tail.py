"""Following an output topic live (``segstream tail TOPIC``), for people or for pipes.

Reads every partition of one of the worker's output topics (no consumer group, so it
never disturbs anyone's offsets), from the end (live) or the beginning, keeps the
records that pass the filters and prints them as aligned lines (``table``) or one JSON
object per line (``json``); on a terminal the table is Rich's, coloured and cut to
its width (:mod:`streams.terminal`). On exit (``--count`` reached, ``--idle`` seconds without a
record, or Ctrl-C) a summary line with counts and rates goes to stderr.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import orjson

from segments.records import DEAD_LETTERS, MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, SEGMENT_CHANGES
from streams.errors import UserError
from streams.kafka_config import KafkaConfig
from streams.settings import Settings
from streams.terminal import Rows, is_terminal, state_style

if TYPE_CHECKING:
    from rich.text import Text

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


def cells(value: dict[str, Any]) -> tuple[str, list[str | Text]]:
    """The kind of record and its cells for a terminal (:class:`streams.terminal.Rows`),
    coloured: entered green, exited red, sent green, withheld yellow."""
    from rich.text import Text

    at, who = value.get("at", ""), value.get("customer_id", "")
    if "segment" in value:
        change = value.get("change", "")
        sign = "+" if change == "entered" else "-"
        return "segment", [at, who, Text(f"{sign}{value['segment']}", style=state_style(change)),
                           value.get("cause", {}).get("kind", ""),
                           orjson.dumps(value.get("reason", {})).decode()]
    if "moment" in value:
        state = value.get("suppressed") or "sent"
        label = state + (f" until {value['held_until']}" if "held_until" in value else "")
        items = ",".join(str(i.get("product_id") or i.get("category") or "")
                         for i in value.get("items", [])[:3])
        local = (value.get("context") or {}).get("local_time") or "--:--"
        return "moment", [at, who, value["moment"], f"{value.get('score', 0):4.2f}", local,
                          Text(label, style=state_style(state)), items]
    source = value.get("source", {})
    return "dead", [at, source.get("key") or "-", Text(value.get("reason", ""), style="dead"),
                    f"{source.get('partition')}/{source.get('offset')}",
                    value.get("detail", "")]


# per kind of record: the headers and the widths of all columns but the last (a longer
# customer id is cut with an ellipsis; --format json has it whole)
COLUMNS = {
    "segment": (("at", "customer", "segment", "cause", "reason"), (24, 24, 25, 11)),
    "moment": (("at", "customer", "moment", "score", "local", "state", "items"),
               (24, 24, 18, 5, 5, 14)),
    "dead": (("at", "key", "reason", "source", "detail"), (24, 24, 18, 10)),
}


def _terminal(out: IO[str]) -> Callable[[dict[str, Any], bytes], None]:
    """Aligned, coloured rows on a terminal: one :class:`Rows` per kind of record."""
    printers: dict[str, Rows] = {}

    def show(value: dict[str, Any], raw: bytes) -> None:
        kind, row = cells(value)
        if kind not in printers:
            printers[kind] = Rows(out, *COLUMNS[kind])
        printers[kind].print(row)
    return show


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
    show: Callable[[dict[str, Any], bytes], None]
    if table and is_terminal(out):
        show = _terminal(out)
    else:
        plain: Callable[[dict[str, Any], bytes], str] = (
            (lambda value, raw: render(value)) if table
            else (lambda value, raw: raw.decode("utf-8", "replace")))

        def show(value: dict[str, Any], raw: bytes) -> None:
            print(plain(value, raw), file=out, flush=True)
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
                    show(value, record.value)
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
