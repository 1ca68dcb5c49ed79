"""The worker and `segstream replay --offline` run the same engine: same log, same records.

A simulated log (several personas, four months, so purchases leave windows, carts are
abandoned and customers lapse with no further event of theirs) plus a duplicate, a
broken line and an erasure goes once through the real broker and the worker with an
event-time clock, and once through the offline replay emulating the topic's three
partitions. Every customer must receive the same records in the same order, byte for
byte apart from the dead letter's processing-time fields.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from segments.definitions import DEFAULT_PATH, parse_definitions
from streams.tools.offline import replay_offline
from streams.tools.simulate import simulate
from tests.kafka_tools import assert_valid_outputs, consume, produce, running_worker

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def build_log(path: Path) -> list[tuple[str | None, bytes]]:
    events = list(simulate(customers=120, days=120, seed=23, start=START))
    lines: list[tuple[str | None, bytes]] = [(e["customer_id"], orjson.dumps(e))
                                             for e in events]
    middle = len(lines) // 2
    victim = orjson.loads(lines[middle][1])
    erase = {"event_id": "erase-1", "customer_id": victim["customer_id"],
             "type": "erase_request", "ts": victim["ts"]}
    lines.insert(middle + 1, (victim["customer_id"], orjson.dumps(erase)))
    lines.insert(100, lines[99])  # a duplicate delivery
    lines.insert(200, ("c-broken", b'{"event_id": "x", "customer_id": "c-broken", "ty'))
    path.write_bytes(b"".join(line + b"\n" for _, line in lines))
    return lines


def comparable(value: dict[str, Any]) -> dict[str, Any]:
    if value["schema"].startswith("dead-letter/"):
        # processing time and the record's position differ between a file and a topic
        return {k: v for k, v in value.items() if k not in ("at", "source")}
    return value


def topic_of(value: dict[str, Any]) -> str:
    """The output topic a record goes to (triggers and withheld ones share a schema)."""
    if "suppressed" in value:
        return "micro-moments-suppressed"
    return {"segment-change": "segment-changes", "micro-moment": "micro-moments",
            "dead-letter": "interactions-dlq"}[value["schema"].split("/")[0]]


def by_customer(values: list[tuple[str | None, dict[str, Any]]]
                ) -> dict[tuple[str, str], list[bytes]]:
    """Records per (customer, topic): order is defined within a topic's partition only."""
    grouped: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for key, value in values:
        grouped[(key or "", topic_of(value))].append(
            orjson.dumps(comparable(value), option=orjson.OPT_SORT_KEYS))
    return dict(grouped)


def test_worker_output_equals_offline_replay(bootstrap: str, prefix: str,
                                             tmp_path: Path) -> None:
    definitions_path = tmp_path / "definitions.toml"
    definitions_path.write_text(DEFAULT_PATH.read_text().replace(
        "rfm_min_buyers = 50", "rfm_min_buyers = 10"))
    log_path = tmp_path / "log.jsonl"
    lines = build_log(log_path)

    out = io.BytesIO()
    summary = replay_offline([log_path], parse_definitions(definitions_path.read_text()),
                             out, partitions=3)
    offline = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert summary["duplicates"] == 1 and summary["dead_lettered"] == 1
    kinds = {(v.get("cause") or {}).get("kind") for v in offline}
    assert {"event", "time", "erase"} <= kinds  # the log exercises every cause
    assert any(v.get("segment") == "lapsed" for v in offline)
    assert any(v.get("segment") == "rfm_at_risk" and "rfm_segment" in v["reason"]
               for v in offline)  # RFM from the population

    topics = [f"{prefix}{name}" for name in ("segment-changes", "micro-moments",
                                             "micro-moments-suppressed", "interactions-dlq")]
    with running_worker(bootstrap, prefix, tmp_path, "--definitions", str(definitions_path),
                        "--clock", "event", "--partitions", "3") as worker:
        produce(bootstrap, f"{prefix}interactions", lines)
        records = consume(bootstrap, topics, count=len(offline), timeout=240, settle=3.0)
        stats = worker.get("/stats")

    assert_valid_outputs(records)
    assert stats["totals"]["consumed"] == len(lines)
    through_kafka = by_customer([(key, orjson.loads(raw)) for _, key, raw in records])
    replayed = by_customer([(v.get("customer_id") if "change_id" in v or "trigger_id" in v
                             else "c-broken", v) for v in offline])
    assert sorted(through_kafka) == sorted(replayed)
    for customer, expected in replayed.items():
        assert through_kafka[customer] == expected, customer
    assert len(records) == len(offline)
