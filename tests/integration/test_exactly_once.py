"""``--guarantee exactly-once`` through kill -9: a read_committed consumer of the output
topics sees every ``change_id`` and ``trigger_id`` of the offline replay exactly once.

Each batch of an interactions partition commits its outputs, its changelog records and
its offset in one Kafka transaction (``streams/transactions.py``). A worker killed
with SIGKILL mid-stream leaves an open transaction behind; whoever starts the
partition's producer next (the same worker restarted on its data directory, or the
other worker of the group taking the partition over) fences it and aborts that
transaction before it reads the committed offset, and processes the aborted batch
again from the state committed with that offset. Under at-least-once the same kill
repeats outputs (same ids, same values); here none may repeat.

What the models decided is left out of the comparison (a partition's models resume
from their checkpoint, which lags the committed offset: ``without_model_decisions``),
as in the failover test; no id at all, theirs included, may appear twice.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import orjson
import pytest

from segments.definitions import DEFAULT_PATH, parse_definitions
from streams.client.topics import ensure_topics
from streams.settings import Settings
from streams.tools.offline import replay_offline
from tests.kafka_tools import (
    RECORD_TOPICS,
    START,
    Worker,
    assert_valid_outputs,
    consume,
    produce,
    record_id,
    wait_committed,
    wait_consumed,
    without_model_decisions,
    write_simulated_log,
)


@pytest.mark.parametrize(("scenario", "partitions"), [("restart", 3), ("takeover", 4)])
def test_a_killed_worker_neither_loses_nor_repeats_an_output(
        bootstrap: str, prefix: str, tmp_path: Path, scenario: str, partitions: int) -> None:
    """``restart``: the only worker is killed at 40 % of the log and started again on
    its data directory. ``takeover``: two workers, the busier killed at 40 %, the
    other takes its partitions over."""
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=100, days=60, seed=43, start=START)
    definitions = parse_definitions(DEFAULT_PATH.read_text())
    out = io.BytesIO()
    replay_offline([log_path], definitions, out, partitions=partitions)
    offline_values = [orjson.loads(line) for line in out.getvalue().splitlines()]
    offline_ids = {record_id(v) for v in offline_values}
    assert len(offline_ids) == len(offline_values) > 500
    comparable = without_model_decisions(definitions)
    expected = {record_id(v): comparable(v) for v in offline_values}
    expected = {k: v for k, v in expected.items() if v is not None}
    assert len(expected) > 500

    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=partitions))
    produce(bootstrap, f"{prefix}interactions", lines)
    args = ("--clock", "event", "--partitions", str(partitions), "--guarantee",
            "exactly-once", "--session-timeout", "6")
    count = 1 if scenario == "restart" else 2
    workers = [Worker(bootstrap, prefix, tmp_path / f"w{i}", *args) for i in range(count)]
    survivors: list[Worker] = []
    try:
        for worker in workers:
            worker.start()
        victim = workers[0]
        if scenario == "takeover":
            # both hold partitions before the kill: the survivor takes some over
            wait_consumed(workers[1], 1)
        wait_consumed(victim, int(len(lines) * 0.4))
        victim.kill()
        survivors.append(Worker(bootstrap, prefix, tmp_path / "w0", *args).start()
                         if scenario == "restart" else workers[1])
        committed = wait_committed(bootstrap, f"{prefix}segstream", f"{prefix}interactions",
                                   timeout=150)
        topics = [f"{prefix}{name}" for name in RECORD_TOPICS]
        records = consume(bootstrap, topics, count=len(offline_ids), timeout=60, settle=3.0)
        everything = consume(bootstrap, topics, count=len(records), timeout=30, settle=1.0,
                             isolation="read_uncommitted")
        stats = [worker.get("/stats") for worker in survivors]
    finally:
        for worker in [*workers, *survivors]:
            worker.stop()

    assert sum(c.offset for c in committed.values()) == len(lines)
    assert_valid_outputs(records)
    ids = Counter(record_id(orjson.loads(raw)) for _, _, raw in records)
    repeated = {i: n for i, n in ids.items() if n > 1}
    assert not repeated, f"{len(repeated)} ids read more than once, e.g. {list(repeated)[:5]}"
    kept = {record_id(v): comparable(v) for v in map(orjson.loads, (r for _, _, r in records))}
    kept = {k: v for k, v in kept.items() if v is not None}
    assert kept.keys() == expected.keys(), (len(expected.keys() - kept.keys()),
                                            len(kept.keys() - expected.keys()))
    for key, value in kept.items():
        assert value == expected[key], orjson.loads(value)
    # read_uncommitted sees the killed worker's aborted batch too, read_committed not
    assert len(everything) >= len(records)
    for document in stats:
        assert document["invariant_holds"], document["totals"]
        totals = document["totals"]
        assert totals["consumed"] == (totals["applied"] + totals["duplicates"]
                                      + totals["dead_lettered"])
        assert totals["consumed"] > 0
