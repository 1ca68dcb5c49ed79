"""Interactions produced with each codec Kafka offers (gzip, snappy, lz4, zstd) reach
the worker and every kafka-python command: a client without a batch's codec cannot
read the batch at all, so one missing library stops a partition (the worker, through
aiokafka, needs cramjam; kafka-python needs lz4 and python-snappy)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaProducer

from tests.kafka_tools import (
    RECORD_TOPICS,
    START,
    assert_same_records,
    consume,
    offline_records,
    running_worker,
    write_simulated_log,
)

CODECS = ("gzip", "snappy", "lz4", "zstd")


async def produce_compressed(bootstrap: str, topic: str,
                             records: list[tuple[str | None, bytes]]) -> None:
    """Consecutive slices of ``records``, each compressed with the next codec; each
    producer is flushed before the next starts, so every partition keeps the order."""
    size = -(-len(records) // len(CODECS))
    for n, codec in enumerate(CODECS):
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type=codec,
                                    linger_ms=20, acks="all")
        await producer.start()
        try:
            for key, value in records[n * size:(n + 1) * size]:
                await producer.send(topic, value, key=None if key is None else key.encode())
            await producer.flush()
        finally:
            await producer.stop()


def test_each_codec_reaches_the_worker_and_kafka_python(bootstrap: str, prefix: str,
                                                       tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=20, days=10, seed=71, start=START)
    offline = offline_records(log_path, partitions=3)
    with running_worker(bootstrap, prefix, tmp_path, "--clock", "event", "--partitions", "3"):
        asyncio.run(produce_compressed(bootstrap, f"{prefix}interactions", lines))
        records = consume(bootstrap, [f"{prefix}{t}" for t in RECORD_TOPICS],
                          count=len(offline), timeout=90, settle=2.0)
    assert_same_records(records, offline)
    # kafka-python (replay's, tail's and topics' client) reads every codec's batches too
    read = consume(bootstrap, [f"{prefix}interactions"], count=len(lines), timeout=60)
    assert sorted(v for _, _, v in read) == sorted(v for _, v in lines)
