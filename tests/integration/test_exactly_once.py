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

import asyncio
import io
import signal
import time
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


@pytest.mark.parametrize(("scenario", "partitions"),
                         [("restart", 3), ("takeover", 4), ("zombie", 4)])
def test_a_killed_worker_neither_loses_nor_repeats_an_output(
        bootstrap: str, prefix: str, tmp_path: Path, scenario: str, partitions: int) -> None:
    """``restart``: the only worker is killed at 40 % of the log and started again on
    its data directory. ``takeover``: two workers, the first killed at 40 %, the
    other takes its partitions over. ``zombie``: the first is frozen (SIGSTOP) at 40 %
    past its session timeout, the other takes its partitions over, fencing its
    producers, and the first then goes on (SIGCONT) as if nothing happened."""
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=60, days=40, seed=43, start=START)
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
    args = ("--clock", "event", "--partitions", str(partitions), "--guarantee",
            "exactly-once", "--session-timeout", "6")
    count = 1 if scenario == "restart" else 2
    frozen = 0.0
    workers = [Worker(bootstrap, prefix, tmp_path / f"w{i}", *args) for i in range(count)]
    survivors: list[Worker] = []
    try:
        for worker in workers:
            worker.start()  # healthy: the group's rebalance gave it partitions
        # the log once every worker holds partitions: the victim gives some up
        produce(bootstrap, f"{prefix}interactions", lines)
        victim = workers[0]
        wait_consumed(victim, int(len(lines) * 0.4 / count))
        if scenario == "zombie":
            assert victim.process is not None
            victim.process.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            everyone = {str(p) for p in range(partitions)}
            while set(workers[1].get("/stats")["clocks"]) != everyone:  # it holds all
                assert time.monotonic() - started < 60, "no takeover"
                time.sleep(0.3)
            frozen = time.monotonic() - started
            victim.process.send_signal(signal.SIGCONT)
            survivors += workers
        else:
            victim.kill()
            survivors.append(Worker(bootstrap, prefix, tmp_path / "w0", *args).start()
                             if scenario == "restart" else workers[1])
        committed = wait_committed(bootstrap, f"{prefix}segstream", f"{prefix}interactions",
                                   timeout=150)
        topics = [f"{prefix}{name}" for name in RECORD_TOPICS]
        # all committed by now: at least the records compared, then whatever follows
        records = consume(bootstrap, topics, count=len(expected), timeout=60, settle=3.0)
        everything = consume(bootstrap, topics, count=len(records), timeout=30, settle=1.0,
                             isolation="read_uncommitted")
        stats = [worker.get("/stats") for worker in survivors]
    finally:
        for worker in [*workers, *survivors]:
            if worker.process is not None and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGCONT)
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
    print(f"{scenario}: {len(records)} records read_committed, {len(everything)} "
          f"read_uncommitted" + (f"; frozen {frozen:.1f} s" if frozen else ""))
    for document in stats:
        assert document["invariant_holds"], document["totals"]
        totals = document["totals"]
        assert totals["consumed"] == (totals["applied"] + totals["duplicates"]
                                      + totals["dead_lettered"])
        assert totals["consumed"] > 0
        if scenario != "zombie":
            # the log repeats no event, and a killed worker commits nothing more: a
            # duplicate would be an event whose state was kept from a transaction that
            # never committed (its outputs lost). The resumed zombie may count some:
            # events it reads again from a committed offset fetched a moment too early
            # (README, exactly-once), which its state already holds
            assert totals["duplicates"] == 0, totals


def test_the_producer_of_a_partition_taken_over_is_fenced_and_its_batch_aborted(
        bootstrap: str, prefix: str) -> None:
    """The new owner's start fences the old owner's producer of the same id: the old
    owner's open transaction is aborted (read_committed sees none of it) and its
    commit fails as fenced, which the worker turns into giving the partition up."""
    from aiokafka import AIOKafkaProducer

    from streams.transactions import PartitionTransactions, is_fenced

    topic = f"{prefix}segment-changes"
    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=1))

    def owner() -> PartitionTransactions:
        return PartitionTransactions(f"{prefix}segstream", f"{prefix}interactions",
                                     f"{prefix}segstream", lambda tid: AIOKafkaProducer(
                                         bootstrap_servers=bootstrap, transactional_id=tid))

    async def scenario() -> BaseException | None:
        old, new = owner(), owner()
        await old.assign([0])
        zombie = old.get(0)
        assert zombie is not None
        await zombie.send([(topic, 0, b"k", b"from the old owner")], [])
        await asyncio.gather(*(batch.future for batch in zombie.batches))  # in the log
        await new.assign([0])  # fences the old producer, aborts its transaction
        successor = new.get(0)
        assert successor is not None
        await successor.send([(topic, 0, b"k", b"from the new owner")], [])
        await successor.commit({}, f"{prefix}segstream")
        failure: BaseException | None = None
        try:
            await zombie.commit({}, f"{prefix}segstream")
        except Exception as exc:
            failure = exc
        await old.close()
        await new.close()
        return failure

    failure = asyncio.run(scenario())
    assert failure is not None and is_fenced(failure), repr(failure)
    seen = consume(bootstrap, [topic], count=2, timeout=10, settle=1.0)
    assert [value for _, _, value in seen] == [b"from the new owner"]
    everything = consume(bootstrap, [topic], count=2, timeout=10, settle=1.0,
                         isolation="read_uncommitted")
    assert sorted(value for _, _, value in everything) == [b"from the new owner",
                                                           b"from the old owner"]


def test_a_revocation_says_which_open_transactions_it_had_to_drop(
        bootstrap: str, prefix: str) -> None:
    """A worker frozen past its session wakes up in a revocation with its batch's
    transaction still open, and a newer owner has fenced it: the commit cannot
    happen, so ``revoke`` names the partition. The worker then forgets what it holds
    of it (its memory is ahead of the committed offset; kept, it turned the
    redelivered events into duplicates when the partition came back to it). A
    partition whose transaction commits is not named."""
    from aiokafka import AIOKafkaProducer

    from streams.transactions import PartitionTransactions

    topic = f"{prefix}segment-changes"
    group = f"{prefix}segstream"
    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=2))

    def owner() -> PartitionTransactions:
        return PartitionTransactions(group, f"{prefix}interactions", group,
                                     lambda tid: AIOKafkaProducer(
                                         bootstrap_servers=bootstrap, transactional_id=tid))

    async def scenario() -> list[int]:
        old, new = owner(), owner()
        await old.assign([0, 1])
        for partition in (0, 1):
            txn = old.get(partition)
            assert txn is not None
            await txn.send([(topic, partition, b"k", f"old {partition}".encode())], [])
        await new.assign([0])  # partition 0 only: its old producer is fenced
        committed: list[int] = []

        async def finish(partition: int) -> None:
            txn = old.get(partition)
            assert txn is not None
            await txn.commit({}, group)
            committed.append(partition)

        dropped = await old.revoke([0, 1], finish)
        assert committed == [1] and not old.current
        await new.close()
        return dropped

    dropped = asyncio.run(scenario())
    assert dropped == [0]
    seen = consume(bootstrap, [topic], count=2, timeout=10, settle=1.0)
    assert [value for _, _, value in seen] == [b"old 1"]
