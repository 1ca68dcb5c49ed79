"""``segstream tail TOPIC``: follow an output topic live, for people or for pipes.

Reads every partition of one of the worker's output topics (no consumer group, so it
never disturbs anyone's offsets), from the end (live) or the beginning, keeps the
records that pass the filters and prints them as aligned lines (``table``) or one JSON
object per line (``json``). On exit (``--count`` reached, ``--idle`` seconds without a
record, or Ctrl-C) a summary line with counts and rates goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

import orjson

from segments.records import DEAD_LETTERS, MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, SEGMENT_CHANGES
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["TOPICS", "add_tail_arguments", "keep", "render", "run_tail"]

# the output topics, in the order the help lists them
TOPICS = (MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, SEGMENT_CHANGES, DEAD_LETTERS)


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", metavar="TOPIC",
                        help="one of: " + ", ".join(TOPICS) + " (the prefix is added)")
    parser.add_argument("--from-beginning", action="store_true",
                        help="read the topic from its start (default: only new records)")
    parser.add_argument("--moment", action="append", help="only this moment (repeatable)")
    parser.add_argument("--segment", action="append",
                        help="only this segment (repeatable)")
    parser.add_argument("--customer", action="append",
                        help="only this customer id (repeatable)")
    parser.add_argument("--change", choices=("entered", "exited"),
                        help="segment changes: only entries or only exits")
    parser.add_argument("--reason", action="append",
                        help="suppressed triggers or dead letters: only this reason")
    parser.add_argument("--format", choices=("table", "json"), default=None,
                        help="table for people (default on a terminal), json for pipes")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="stop after N records")
    parser.add_argument("--idle", type=float, default=None, metavar="SECONDS",
                        help="stop after this many seconds without a new record")


def keep(value: dict[str, Any], args: argparse.Namespace) -> bool:
    """Whether a record passes the filters."""
    if args.customer and value.get("customer_id") not in args.customer:
        return False
    if args.moment and value.get("moment") not in args.moment:
        return False
    if args.segment and value.get("segment") not in args.segment:
        return False
    if args.change and value.get("change") != args.change:
        return False
    return not (args.reason and (value.get("suppressed") or value.get("reason"))
                not in args.reason)


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


def _consumer(bootstrap: str, topic: str, from_beginning: bool) -> Any:
    from kafka import KafkaConsumer, TopicPartition
    from kafka.errors import KafkaError

    from streams.topics import CONNECT_TIMEOUT_MS, BrokerUnavailable

    try:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                 enable_auto_commit=False, fetch_max_wait_ms=100,
                                 request_timeout_ms=15_000, client_id="segstream-tail",
                                 bootstrap_timeout_ms=CONNECT_TIMEOUT_MS)
        partitions = consumer.partitions_for_topic(topic)
    except KafkaError as exc:
        raise BrokerUnavailable(f"cannot reach Kafka at {bootstrap}: "
                                f"{type(exc).__name__}") from exc
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
    return consumer


def run_tail(args: argparse.Namespace, out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    if args.topic not in TOPICS:
        raise UserError(f"segstream tail: unknown topic {args.topic!r}; "
                        f"one of: {', '.join(TOPICS)}")
    if args.count is not None and args.count < 1:
        raise UserError("segstream tail: --count must be at least 1")
    fmt = args.format or ("table" if out.isatty() else "json")
    topic = Settings(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix).topic(
        args.topic)
    consumer = _consumer(args.bootstrap, topic, args.from_beginning)
    show: Callable[[dict[str, Any], bytes], str] = (
        (lambda value, raw: render(value)) if fmt == "table"
        else (lambda value, raw: raw.decode("utf-8", "replace")))
    started = last_record = time.monotonic()
    shown, read = 0, 0
    kinds: Counter[str] = Counter()
    try:
        while args.count is None or shown < args.count:
            batch = consumer.poll(timeout_ms=200)
            now = time.monotonic()
            if not batch:
                if args.idle is not None and now - last_record >= args.idle:
                    break
                continue
            last_record = now
            for records in batch.values():
                for record in records:
                    read += 1
                    value = orjson.loads(record.value)
                    if not keep(value, args):
                        continue
                    shown += 1
                    kinds[value.get("moment") or value.get("segment")
                          or value.get("reason") or "?"] += 1
                    print(show(value, record.value), file=out, flush=True)
                    if args.count is not None and shown >= args.count:
                        break
                if args.count is not None and shown >= args.count:
                    break
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
        elapsed = max(time.monotonic() - started, 1e-9)
        top = ", ".join(f"{name} {n:,}" for name, n in kinds.most_common(6))
        print(f"{shown:,} of {read:,} records shown in {elapsed:.1f}s "
              f"({shown / elapsed:,.1f}/s){': ' + top if top else ''}", file=sys.stderr)
    return 0
