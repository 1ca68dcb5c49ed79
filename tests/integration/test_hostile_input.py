"""Garbage in, nothing lost, through the real broker: 1,000+ hostile records of known
kinds, then 10,000+ generated ones (tests/strategies.py)."""

from __future__ import annotations

import base64
import random
import time
from collections import Counter
from pathlib import Path

import orjson
from kafka import KafkaProducer

from segments.definitions import load_default
from segments.engine import Engine
from segments.gate import Gate, Rejection
from segments.processor import MemoryStore, Processor, Source
from tests.kafka_tools import (
    assert_valid_outputs,
    consume,
    running_worker,
    values,
    wait_consumed,
)
from tests.strategies import drawn_records

NOW_ISO = "2026-11-22T10:00:00.000Z"


def valid_event(n: int) -> dict[str, object]:
    return {"event_id": f"ok-{n}", "customer_id": f"c-{n % 20}", "type": "product_view",
            "ts": 1_795_000_000_000 + n, "properties": {"product_id": f"p-{n % 7}"}}


def hostile_records(rng: random.Random, count: int) -> list[tuple[bytes, str]]:
    """(bytes, the dead-letter reason they must get), built so the reason is known."""
    out: list[tuple[bytes, str]] = []
    kinds = ["bytes", "truncated", "not_object", "unknown_type", "wrong_type", "huge",
             "old", "future", "missing"]
    for i in range(count):
        kind = kinds[i % len(kinds)]
        base = dict(valid_event(10_000 + i), event_id=f"bad-{i}")
        if kind == "bytes":
            out.append((b"\xff" + rng.randbytes(rng.randint(0, 64)), "not_utf8"))
        elif kind == "truncated":
            text = orjson.dumps(base)
            out.append((text[: rng.randint(1, len(text) - 1)], "not_json"))
        elif kind == "not_object":
            value = rng.choice([[1, 2], None, 42, "text", [base], 1.5, True])
            out.append((orjson.dumps(value), "not_an_object"))
        elif kind == "unknown_type":
            out.append((orjson.dumps(dict(base, type=f"teleport_{i}")), "unknown_type"))
        elif kind == "wrong_type":
            field, junk = rng.choice([("event_id", 7), ("customer_id", ""), ("ts", 1.5),
                                      ("ts", "yesterday"), ("properties", [1]),
                                      ("customer_id", None), ("event_id", "x" * 200),
                                      ("context", "mobile")])
            out.append((orjson.dumps(dict(base, **{field: junk})), "schema_violation"))
        elif kind == "huge":
            size = 1024 * 1024 if i % 2 else 70_000
            padding = "x" * size
            out.append((orjson.dumps(dict(base, properties={"product_id": "p",
                                                            "pad": padding})), "too_large"))
        elif kind == "old":
            out.append((orjson.dumps(dict(base, ts=rng.choice([5, "1970-01-02T00:00:00Z",
                                                                "1999-12-31T23:59:59Z"]))),
                        "bad_timestamp"))
        elif kind == "future":
            out.append((orjson.dumps(dict(base, ts=rng.choice(["2099-01-01T00:00:00Z",
                                                                4_102_444_800_000]))),
                        "bad_timestamp"))
        else:  # a purchase without its required order_id
            doc = dict(base, type="purchase", properties={"revenue": 5})
            out.append((orjson.dumps(doc), "schema_violation"))
    return out


def test_every_bad_record_is_kept_with_its_reason(bootstrap: str, prefix: str,
                                                 tmp_path: Path) -> None:
    rng = random.Random(2026)
    bad = hostile_records(rng, 1_008)
    good = [orjson.dumps(valid_event(n)) for n in range(300)]
    mixed: list[tuple[bytes, str | None]] = [(raw, reason) for raw, reason in bad]
    mixed += [(raw, None) for raw in good]
    rng.shuffle(mixed)

    with running_worker(bootstrap, prefix, tmp_path, "--clock", "event") as worker:
        producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024,
                                 linger_ms=5)
        for i, (raw, _) in enumerate(mixed):
            producer.send(f"{prefix}interactions", key=f"k-{i % 13}".encode(), value=raw)
        producer.flush(60)
        producer.close()
        records = consume(bootstrap, [f"{prefix}interactions-dlq"], count=len(bad),
                          timeout=120)
        stats = worker.get("/stats")
        health = worker.get("/health")

    letters = values(records, f"{prefix}interactions-dlq")
    assert len(letters) == len(bad)
    expected = sorted((raw, reason) for raw, reason in bad)
    got = sorted((base64.b64decode(letter["raw"]), letter["reason"]) for letter in letters)
    assert got == expected  # exact original bytes, each with the right reason
    assert all(letter["source"]["topic"] == f"{prefix}interactions" for letter in letters)
    assert all(letter["source"]["key"].startswith("k-") for letter in letters)
    violations = [x for x in letters if x["reason"] == "schema_violation"]
    assert all(x["path"] is not None for x in violations)
    assert_valid_outputs(records)

    totals = stats["totals"]
    assert totals == {"consumed": len(mixed), "applied": len(good), "duplicates": 0,
                      "dead_lettered": len(bad)}
    assert stats["invariant_holds"] is True
    assert health["status"] == "ok"
    assert health["customers"] == 20


def test_duplicates_are_dropped_and_counted(bootstrap: str, prefix: str,
                                           tmp_path: Path) -> None:
    first = orjson.dumps({"event_id": "dup-1", "customer_id": "c-1", "type": "purchase",
                          "ts": NOW_ISO, "properties": {"order_id": "o-1", "revenue": 10}})
    again = orjson.dumps({"event_id": "dup-1", "customer_id": "c-1", "type": "purchase",
                          "ts": "2026-11-22T10:00:05.000Z",
                          "properties": {"order_id": "o-1", "revenue": 10}})
    definitions = tmp_path / "d.toml"
    definitions.write_text('[segments.repeat]\nwhen = "purchases_total >= 2"\n'
                           '[segments.buyer]\nwhen = "purchases_total >= 1"\n')
    with running_worker(bootstrap, prefix, tmp_path, "--clock", "event", "--definitions",
                        str(definitions)) as worker:
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for raw in (first, again, first):
            producer.send(f"{prefix}interactions", key=b"c-1", value=raw)
        producer.flush()
        producer.close()
        records = consume(bootstrap, [f"{prefix}segment-changes"], count=1, timeout=60,
                          settle=3.0)
        stats = worker.get("/stats")
    assert [v["segment"] for v in values(records, f"{prefix}segment-changes")] == ["buyer"]
    assert stats["totals"] == {"consumed": 3, "applied": 1, "duplicates": 2, "dead_lettered": 0}


def test_ten_thousand_generated_records_through_a_worker(bootstrap: str, prefix: str,
                                                       tmp_path: Path) -> None:
    """The records tests/segments/test_hostile_volume.py throws at the core, sent to a
    real worker: /stats accounts for every one as the same code does offline, and the
    dead-letter topic holds each refused record once, with its exact bytes and key and
    the reason the gate gives it."""
    drawn = drawn_records(10_000)
    wall = int(time.time() * 1000)
    gate = Gate()
    expected: Counter[tuple[bytes, str, str | None]] = Counter()
    for record in drawn:
        checked = gate.check(record.raw, wall)
        if isinstance(checked, Rejection):
            key = None if record.key is None else record.key.decode("utf-8", "replace")
            expected[(record.raw, checked.reason, key)] += 1
    # duplicates are a customer's own business: one offline partition counts them as
    # the worker's partitions do (every accepted record is keyed by its customer)
    offline = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False,
                        models=False)
    for offset, record in enumerate(drawn):
        offline.process(record.raw, Source("interactions", 0, offset, record.key), wall)
    totals = offline.stats[0].as_dict()
    assert totals["dead_lettered"] == sum(expected.values())

    topic = f"{prefix}interactions"
    with running_worker(bootstrap, prefix, tmp_path, "--clock", "event") as worker:
        producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024,
                                 linger_ms=20, batch_size=256 * 1024)
        for record in drawn:
            producer.send(topic, key=record.key, value=record.raw)
        producer.flush(120)
        producer.close()
        wait_consumed(worker, len(drawn), timeout=120)
        stats = worker.get("/stats")
        records = consume(bootstrap, [f"{prefix}interactions-dlq"],
                          count=sum(expected.values()), timeout=120)
        health = worker.get("/health")

    assert stats["totals"] == {key: totals[key] for key in
                               ("consumed", "applied", "duplicates", "dead_lettered")}
    assert stats["totals"]["consumed"] == len(drawn) >= 10_000
    assert stats["invariant_holds"] is True
    letters = values(records, f"{prefix}interactions-dlq")
    got = Counter((base64.b64decode(x["raw"]), x["reason"], x["source"]["key"])
                  for x in letters)
    assert got == expected  # each refused record once: exact bytes, key and reason
    assert "processing_error" not in {x["reason"] for x in letters}
    assert_valid_outputs(records)
    assert health["status"] == "ok"
