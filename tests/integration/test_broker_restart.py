"""A broker restart between two halves of a log: the worker rides it out and nothing is
lost or changed.

The test runs a broker of its own (``scripts/kafka.sh`` on a free port, its data kept
across the restart), so the suite's shared broker is never stopped. Once the worker
has processed 30 % of the first half (it may have drained the rest by the time the
broker is down: this is not a crash in the middle of a batch), the broker is stopped,
stays down for fifteen seconds (the worker's session timeout) while the worker's
commits and heartbeats fail, and comes back on the same data; the second half
follows. The worker must still be the same process at the end, and the output topics
must hold exactly the offline replay's records, byte for byte, models included.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.client.topics import ensure_topics
from streams.settings import Settings
from tests.kafka_tools import (
    RECORD_TOPICS,
    START,
    Worker,
    assert_same_records,
    consume,
    free_ports,
    kafka_script,
    offline_records,
    produce,
    wait_committed,
    write_simulated_log,
)

#: how long the broker stays down: the worker's default session timeout
DOWN_SECONDS = 15


def kafka(command: str, port: int) -> None:
    kafka_script(command, port)


@pytest.fixture()
def own_broker() -> Iterator[tuple[str, int]]:
    port = free_ports(2)  # the controller takes the next port: both must be free
    kafka("start", port)
    try:
        yield f"127.0.0.1:{port}", port
    finally:
        kafka("reset", port)  # stops it and removes its data


def test_the_worker_rides_out_a_broker_restart_and_its_outputs_stay_exact(
        own_broker: tuple[str, int], prefix: str, tmp_path: Path) -> None:
    bootstrap, port = own_broker
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=80, days=40, seed=47, start=START)
    offline = offline_records(log_path, partitions=3)

    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=3))
    source = f"{prefix}interactions"
    worker = Worker(bootstrap, prefix, tmp_path, "--clock", "event", "--partitions", "3")
    worker.start()
    try:
        half = len(lines) // 2
        slices = [lines[i:i + 300] for i in range(0, half, 300)]
        producing = threading.Thread(target=lambda: [
            (produce(bootstrap, source, part), time.sleep(0.2)) for part in slices],
            daemon=True)
        producing.start()
        deadline = time.monotonic() + 120
        while worker.get("/stats")["totals"]["consumed"] < half * 0.3:
            assert time.monotonic() < deadline, "the worker consumed too little"
            time.sleep(0.1)
        producing.join(120)
        kafka("stop", port)
        time.sleep(DOWN_SECONDS)
        assert worker.process is not None and worker.process.poll() is None, worker.log()
        kafka("start", port)
        produce(bootstrap, source, lines[half:])
        wait_committed(bootstrap, f"{prefix}segstream", source)
        records = consume(bootstrap, [f"{prefix}{t}" for t in RECORD_TOPICS],
                          count=len(offline), timeout=60, settle=3.0)
        assert worker.process.poll() is None, worker.log()
    finally:
        worker.stop()

    assert_same_records(records, offline)
