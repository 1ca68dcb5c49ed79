"""`segstream profile` and `segstream topics describe` against the real broker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.client.topics import wait_until_described
from tests.kafka_tools import consume, produce, running_worker, segstream_command

T = 1_767_261_600_000  # 2026-01-01T10:00:00Z


def test_profile_of_a_customer_and_clear_errors(bootstrap: str, prefix: str,
                                               tmp_path: Path) -> None:
    events = [
        {"event_id": "e1", "customer_id": "c/1 é", "type": "consent_update", "ts": T,
         "properties": {"marketing": True}},
        {"event_id": "e2", "customer_id": "c/1 é", "type": "purchase", "ts": T + 1000,
         "properties": {"order_id": "o1", "revenue": 42.5}},
        {"event_id": "e3", "customer_id": "c/1 é", "type": "add_to_cart", "ts": T + 2000,
         "properties": {"product_id": "p-9", "quantity": 2, "price": 10.0,
                        "category": "shoes"}},
    ]
    with running_worker(bootstrap, prefix, tmp_path, "--clock", "event") as worker:
        produce(bootstrap, f"{prefix}interactions",
                [(e["customer_id"], orjson.dumps(e)) for e in events])
        consume(bootstrap, [f"{prefix}segment-changes"], count=1, timeout=60, settle=2.0)
        url = f"http://127.0.0.1:{worker.port}"

        def profile(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*segstream_command(), "profile", *args, "--worker", url],
                                  capture_output=True, text=True, timeout=60)

        done = profile("c/1 é", "--format", "json")
        assert done.returncode == 0, done.stderr
        doc = orjson.loads(done.stdout)
        assert doc["customer_id"] == "c/1 é"
        assert "first_time_buyer" in doc["segments"]
        assert doc["features"]["purchases_total"] == 1
        assert doc["features"]["revenue_total"] == 42.5
        assert doc["features"]["cart_items"] == 2
        assert doc["consent"] == {"marketing": True, "personalization": None}
        assert doc["cart"] == [{"product_id": "p-9", "quantity": 2, "price": 10.0,
                                "category": "shoes"}]
        assert [p["moment"] for p in doc["pending_triggers"]] == ["cart_abandoned"]

        table = profile("c/1 é", "--format", "table")
        assert "first_time_buyer" in table.stdout and "purchases_total" in table.stdout

        unknown = profile("nobody")
        assert unknown.returncode == 2
        assert unknown.stderr.strip() == ("segstream: error: no customer 'nobody': the worker "
                                          "holds no state for it (never seen, or erased)")


def test_topics_describe_shows_sizes_configs_and_lag(bootstrap: str, prefix: str,
                                                     tmp_path: Path) -> None:
    def describe() -> list[dict[str, object]]:
        done = subprocess.run([*segstream_command(), "topics", "describe", "--bootstrap",
                               bootstrap, "--topic-prefix", prefix, "--format", "json"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return list(orjson.loads(done.stdout))

    assert {t["name"]: t["exists"] for t in describe()}[f"{prefix}interactions"] is False
    event = {"event_id": "e1", "customer_id": "c1", "type": "login", "ts": T}
    with running_worker(bootstrap, prefix, tmp_path, "--clock", "event"):
        produce(bootstrap, f"{prefix}interactions", [("c1", orjson.dumps(event))] * 3)
        consume(bootstrap, [f"{prefix}segstream-customers-changelog"], count=1, timeout=60,
                settle=3.0)
    topics = {t["name"]: t for t in describe()}
    source = topics[f"{prefix}interactions"]
    assert (source["partitions"], source["records"], source["lag"]) == (3, 3, 0)
    assert topics[f"{prefix}interactions-dlq"]["configs"] == {"max.message.bytes": "8388608"}
    assert topics[f"{prefix}segstream-customers-changelog"]["configs"] == {
        "cleanup.policy": "compact"}


def test_more_replicas_than_brokers_is_one_clear_line(bootstrap: str, prefix: str) -> None:
    done = subprocess.run([*segstream_command(), "topics", "create", "--bootstrap", bootstrap,
                           "--topic-prefix", prefix, "--replication-factor", "3"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"segstream: error: cannot create topic {prefix}interactions")
    assert "replication factor of 3 cannot be reached" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_changelog_with_other_partitions_is_one_clear_line(bootstrap: str,
                                                          prefix: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(f"{prefix}interactions", 3, 1),
                         NewTopic(f"{prefix}segstream-customers-changelog", 2, 1)])
    wait_until_described(admin, [f"{prefix}interactions",
                                 f"{prefix}segstream-customers-changelog"])
    admin.close()
    done = subprocess.run([*segstream_command(), "topics", "create", "--bootstrap", bootstrap,
                           "--topic-prefix", prefix], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"segstream: error: {prefix}segstream-customers-changelog has 2 partitions but "
        f"{prefix}interactions has 3; they must match (delete the changelog)"]
