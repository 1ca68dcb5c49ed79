"""``streams.tools.partitioner`` is Kafka's default partitioner: checked against
kafka-python's murmur2 (the Java client's, and what Faust's producer uses)."""

from __future__ import annotations

import random

import pytest
from kafka.partitioner.default import murmur2 as kafka_murmur2

from streams.tools.partitioner import murmur2, partition_for, partitioner


def keys() -> list[bytes]:
    rng = random.Random(16)
    drawn = [bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
             for _ in range(5_000)]
    ids = [f"c-{n}".encode() for n in range(2_000)]
    text = [b"", "é".encode(), "customer 42 ü".encode(), "顧客-7".encode()]
    return [*drawn, *ids, *text, *(bytes(n) for n in range(9))]


def test_murmur2_equals_kafka_python() -> None:
    for key in keys():
        assert murmur2(key) == kafka_murmur2(key), key


@pytest.mark.parametrize("partitions", [1, 2, 3, 12, 100])
def test_partition_is_kafka_default(partitions: int) -> None:
    remembered = partitioner(partitions)
    for key in keys()[::7]:
        expected = (kafka_murmur2(key) & 0x7FFFFFFF) % partitions
        assert partition_for(key, partitions) == expected
        assert remembered(key) == expected and remembered(key) == expected
