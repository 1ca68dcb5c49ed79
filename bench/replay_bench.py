"""Throughput of ``segstream replay`` (broker mode) at speed max.

    SEGSTREAM_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/replay_bench.py [EVENTS] [FILES]

Writes EVENTS synthetic ~300-byte interaction events (default 200,000) into FILES
time-sorted JSON-lines files (default 1) in a temporary directory, creates a topic of
its own (3 partitions), replays the files into it, checks the topic's end offsets add
up to EVENTS, deletes the topic and prints events/s. Figures depend on the machine:
report them with the command, ``nproc`` and the CPU model.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import uuid
from pathlib import Path

import orjson

from segments.records import INTERACTIONS
from streams.client.replay import ReplayOptions, replay_to_kafka

BASE_TS = 1_795_000_000_000
TYPES = ("page_view", "product_view", "add_to_cart", "search", "app_open")


def event(n: int) -> bytes:
    doc = {"event_id": f"e-{n:09d}", "customer_id": f"c-{n * 7919 % 20_000:05d}",
           "type": TYPES[n % len(TYPES)], "ts": f"2026-11-22T10:{n // 60_000 % 60:02d}:"
           f"{n // 1000 % 60:02d}.{n % 1000:03d}Z",
           "properties": {"product_id": f"p-{n % 997}", "category": "shoes", "price": 59.0},
           "context": {"device": "mobile", "channel": "app", "session_id": f"s-{n // 40}",
                       "geo": {"country": "DE", "city": "Berlin"}, "tz": "Europe/Berlin"}}
    line = orjson.dumps(doc)
    return line[:-1] + b', "pad": "' + b"x" * max(0, 287 - len(line)) + b'"}'


def write_files(directory: Path, events: int, files: int) -> list[Path]:
    paths = [directory / f"events-{i}.jsonl" for i in range(files)]
    handles = [p.open("wb") for p in paths]
    for n in range(events):
        handles[n % files].write(event(n) + b"\n")
    for handle in handles:
        handle.close()
    return paths


def main() -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.admin import NewTopic

    events = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    bootstrap = os.environ.get("SEGSTREAM_BOOTSTRAP", "127.0.0.1:9092")
    topic = f"bench{uuid.uuid4().hex[:8]}-{INTERACTIONS}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 3, 1)])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            paths = write_files(Path(tmp), events, files)
            size = sum(p.stat().st_size for p in paths) / events - 1
            summary = replay_to_kafka(paths, bootstrap, topic, ReplayOptions(),
                                      out=sys.stderr)
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
        consumer.close()
        assert sum(ends.values()) == events, (ends, events)
    finally:
        admin.delete_topics([topic])
        admin.close()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpus, python "
          f"{platform.python_version()}")
    print(f"{events:,} events of {size:.0f} bytes in {files} file(s): {summary.summary()}")


if __name__ == "__main__":
    main()
