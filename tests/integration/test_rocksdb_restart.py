"""A worker restarted on its own disk restores its customers from RocksDB and reads only
the changelog written since its last flush.

To prove it, the test takes the changelog away between the two runs: every record of
the customer changelog is deleted from the broker (its cleanup policy switched to
``delete`` first: Kafka deletes records of compacted topics only through compaction).
A worker that restored from the changelog would start with no customers; the one on
its own disk carries on, and the outputs of the two runs equal the offline replay's.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

from segments.definitions import DEFAULT_PATH, parse_definitions
from streams.client.topics import ensure_topics
from streams.settings import Settings
from tests.kafka_tools import (
    RECORD_TOPICS,
    START,
    Worker,
    assert_same_records,
    consume,
    offline_records,
    produce,
    wait_committed,
    without_model_decisions,
    write_simulated_log,
)


def forget_changelog(bootstrap: str, topic: str) -> int:
    """Delete every record of ``topic`` from the broker; how many there were."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                            configs={"cleanup.policy": "delete"})])
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        ends = consumer.end_offsets(partitions)
        admin.delete_records({tp: end for tp, end in ends.items() if end})
        starts = consumer.beginning_offsets(partitions)
        assert starts == ends, (starts, ends)
        return sum(ends.values())
    finally:
        consumer.close()
        admin.close()


def test_a_restart_on_its_own_disk_needs_no_changelog_before_its_last_flush(
        bootstrap: str, prefix: str, tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=80, days=40, seed=43, start=START)
    offline = offline_records(log_path, partitions=3)

    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=3))
    half = len(lines) // 2
    group, source = f"{prefix}segstream", f"{prefix}interactions"
    args = (bootstrap, prefix, tmp_path, "--clock", "event", "--partitions", "3")
    produce(bootstrap, source, lines[:half])
    first = Worker(*args).start()
    try:
        wait_committed(bootstrap, group, source)
        customers = first.get("/health")["customers"]
    finally:
        assert first.stop() == 0, first.log()
    assert customers > 50

    deleted = forget_changelog(bootstrap, f"{prefix}segstream-customers-changelog")
    assert deleted >= customers
    produce(bootstrap, source, lines[half:])
    second = Worker(*args).start()
    try:
        wait_committed(bootstrap, group, source)
        records = consume(bootstrap, [f"{prefix}{t}" for t in RECORD_TOPICS], count=len(offline),
                          timeout=60, settle=3.0)
        health = second.get("/health")
    finally:
        second.stop()

    read = [int(n) for n in re.findall(r"(\d+) read from this disk",
                                       second.log_path.read_text())]
    assert sum(read) == customers, second.log()
    assert health["customers"] >= customers
    assert_same_records(records, offline)


SESSION_TIMEOUT = 60.0


def test_a_worker_back_with_its_instance_id_does_not_wait_for_its_old_session(
        bootstrap: str, prefix: str, tmp_path: Path) -> None:
    """Static group membership (``--group-instance-id``): a worker killed with SIGKILL and
    started again with the same id (and the same web address, which Faust's assignor
    checks) gets its partitions back at once.

    With dynamic membership the new process is a new member: the group waits for the dead
    one's session to expire before it can rebalance (here 60 s). With an instance id the
    broker hands the returning member its assignment without that wait, so the restarted
    worker drains the rest of the log well within the dead session's timeout; the outputs
    of the two runs equal the offline replay's, except what the models decided (after a
    kill -9 a partition's models resume from a checkpoint that lags the committed offset,
    README "Running on a real cluster")."""
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=60, days=20, seed=47, start=START)
    comparable = without_model_decisions(parse_definitions(DEFAULT_PATH.read_text()))
    offline = offline_records(log_path, partitions=3, comparable=comparable)
    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=3))
    group, source = f"{prefix}segstream", f"{prefix}interactions"
    args = (bootstrap, prefix, tmp_path, "--clock", "event", "--partitions", "3",
            "--group-instance-id", f"{prefix}worker-1",
            "--session-timeout", str(int(SESSION_TIMEOUT)))
    half = len(lines) // 2
    produce(bootstrap, source, lines[:half])
    first = Worker(*args).start()
    try:
        wait_committed(bootstrap, group, source, timeout=120)
    finally:
        first.kill()  # no LeaveGroup, no flush: its session stays open on the broker

    produce(bootstrap, source, lines[half:])
    started = time.monotonic()
    second = Worker(*args, port=first.port).start()
    try:
        # a new dynamic member would get no partition before the old session expired
        wait_committed(bootstrap, group, source, timeout=SESSION_TIMEOUT * 0.6)
        drained = time.monotonic() - started
        records = consume(bootstrap, [f"{prefix}{t}" for t in RECORD_TOPICS],
                          count=len(offline), timeout=60, settle=3.0)
    finally:
        second.stop()
    assert drained < SESSION_TIMEOUT * 0.6, second.log()
    assert_same_records(records, offline, comparable)
