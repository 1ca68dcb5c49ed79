"""``segstream replay`` into the real broker: exact bytes, keys, partitions, order per
key, resume from a checkpoint, and a one-line error for an unreachable broker."""

from __future__ import annotations

import gzip
import io
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import NewTopic
from kafka.partitioner.default import murmur2

import streams.client.replay as replay
from streams.client.fast_send import keyed_sender
from streams.client.replay import ReplayOptions, replay_to_kafka
from streams.client.replay_checkpoint import read_checkpoint
from streams.client.topics import BrokerUnavailable, wait_until_described
from streams.errors import UserError
from streams.settings import Settings
from streams.tools.eventlog import merged_records
from tests.kafka_tools import consume

T0 = 1_795_000_000_000
PARTITIONS = 3


@pytest.fixture
def topic(bootstrap: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}interactions"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    wait_until_described(admin, [name])  # created is not yet visible to a describe
    try:
        yield name
    finally:
        admin.delete_topics([name])
        admin.close()


def event(n: int, customer: str, ts: int | str) -> bytes:
    # odd spacing and non-ASCII text: the bytes must arrive exactly as written
    return (b'{"event_id": "e-%d",  "customer_id":"%s", "type":"page_view", "ts":%s, '
            b'"properties":{"q":"caf\xc3\xa9 \\u00e9"}}'
            % (n, customer.encode(), orjson.dumps(ts)))


@pytest.fixture
def logs(tmp_path: Path) -> list[Path]:
    a = tmp_path / "web.jsonl"
    a.write_bytes(b"".join(event(i, f"c-{i % 5}", T0 + 100 * i) + b"\n"
                           for i in range(0, 60, 2)) + b"{broken json\n")
    b = tmp_path / "app.jsonl.gz"
    with gzip.open(b, "wb") as handle:
        for i in range(1, 60, 2):
            handle.write(event(i, f"c-{i % 5}", T0 + 100 * i) + b"\n")
    return [a, b]


def partitions_of(bootstrap: str, topic: str) -> dict[bytes, set[int]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=2000)
    seen: dict[bytes, set[int]] = {}
    for message in consumer:
        seen.setdefault(message.key, set()).add(message.partition)
    consumer.close()
    return seen


@pytest.mark.parametrize("fast", [True, False], ids=["fast-send", "plain-send"])
def test_replay_two_files(bootstrap: str, topic: str, logs: list[Path], fast: bool,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "FAST_SEND", fast)
    if fast:  # the fast path is really taken with this kafka-python (no silent fallback)
        producer, _ = replay._connect(Settings(bootstrap=bootstrap), topic)
        try:
            assert keyed_sender(producer, topic, True)[1] is True
        finally:
            producer.close()
    expected = list(merged_records(logs))
    summary = replay_to_kafka(logs, bootstrap, topic, ReplayOptions(), out=io.StringIO())
    assert (summary.produced, summary.unparsable, summary.skipped_filtered) == (61, 1, 0)

    got = consume(bootstrap, [topic], 61, timeout=60, settle=1.0)
    assert len(got) == 61
    assert sorted((k, v) for _, k, v in got if k is not None) == sorted(
        (r.key.decode(), r.value) for r in expected if r.key is not None)
    assert [v for _, k, v in got if k is None] == [b"{broken json"]
    for customer in {r.key for r in expected if r.key is not None}:
        wanted = [r.value for r in expected if r.key == customer]
        assert [v for _, k, v in got if k == customer.decode()] == wanted  # order per key

    # the key decides the partition exactly as Java's (and Faust's) default partitioner
    for key, partitions in partitions_of(bootstrap, topic).items():
        if key is not None:
            assert partitions == {(murmur2(key) & 0x7FFFFFFF) % PARTITIONS}


def test_resume_from_checkpoint(bootstrap: str, topic: str, logs: list[Path],
                                tmp_path: Path) -> None:
    checkpoint = tmp_path / "replay-checkpoint.json"
    first = replay_to_kafka(logs, bootstrap, topic,
                            ReplayOptions(until=T0 + 100 * 25, checkpoint=checkpoint),
                            out=io.StringIO())
    assert first.produced == 25
    assert read_checkpoint(checkpoint, logs) == 25
    second = replay_to_kafka(logs, bootstrap, topic, ReplayOptions(checkpoint=checkpoint),
                             out=io.StringIO())
    assert (second.produced, second.skipped_filtered) == (36, 25)

    got = consume(bootstrap, [topic], 61, timeout=60, settle=1.0)
    values = [v for _, _, v in got]
    assert len(values) == 61 and len(set(values)) == 61  # everything once
    assert set(values) == {r.value for r in merged_records(logs)}


def test_key_filter_and_from(bootstrap: str, topic: str, logs: list[Path]) -> None:
    summary = replay_to_kafka(logs, bootstrap, topic,
                              ReplayOptions(key="c-3", start=T0 + 100 * 20),
                              out=io.StringIO())
    got = consume(bootstrap, [topic], summary.produced, timeout=60, settle=1.0)
    assert [orjson.loads(v)["event_id"] for _, _, v in got] == [
        f"e-{i}" for i in range(20, 60) if i % 5 == 3]


def test_unreachable_broker_is_one_line(logs: list[Path]) -> None:
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable) as info:
        replay_to_kafka(logs, "127.0.0.1:1", "interactions", ReplayOptions(),
                        out=io.StringIO())
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "127.0.0.1:1" in message and "\n" not in message


def test_missing_topic_and_file(bootstrap: str, prefix: str, logs: list[Path]) -> None:
    with pytest.raises(UserError, match=f"topic {prefix}nothing does not exist"):
        replay_to_kafka(logs, bootstrap, f"{prefix}nothing", ReplayOptions(),
                        out=io.StringIO())
    with pytest.raises(UserError, match="no such file"):
        replay_to_kafka([logs[0], logs[0].with_name("absent.jsonl")], bootstrap,
                        f"{prefix}nothing", ReplayOptions(), out=io.StringIO())


def test_a_created_topic_that_never_shows_is_one_clear_line(bootstrap: str,
                                                            prefix: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        with pytest.raises(UserError, match=f"topic {prefix}never was created but is still "
                                            "not visible after 1 s"):
            wait_until_described(admin, [f"{prefix}never"], timeout=1.0)
    finally:
        admin.close()
