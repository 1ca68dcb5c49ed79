"""Exactly-once: one Kafka transaction per batch of an ``interactions`` partition.

With ``--guarantee exactly-once`` each assigned input partition gets its own
transactional producer, ``transactional_id = <app id>-<topic>-<partition>``. A batch's
outputs, its changelog records (and model checkpoints) and the partition's next offset
(with its mark, ``streams/commit_marks.py``) are sent in one transaction: a
``read_committed`` consumer sees all of them or none, and the offset moves only with
them. Faust never commits these partitions itself (the batch path acknowledges
nothing for them, ``BatchConsumer``).

- On assignment the producer is started before anything reads the committed offset:
  starting it (InitProducerId) fences a previous owner's producer of the same id and
  aborts its open transaction, so the offset read afterwards is final.
- A transaction may be committed at any slice boundary: what was processed so far,
  its outputs and states, and the offset and mark after it belong together.
- On revocation the open transaction is committed (the slice running finishes first)
  and the producer closed; the new owner's start then finds nothing open.
- A fenced producer (another worker owns the partition now: this one is a zombie)
  gives the partition up: one log line, its in-memory state is dropped, its records
  are left to the owner.

>>> transactional_id("segstream", "interactions", 4)
'segstream-interactions-4'
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced
from aiokafka.structs import OffsetAndMetadata
from aiokafka.structs import TopicPartition as AioTopicPartition

from streams.faust_internals import BatchProducer, Outgoing, SentBatch

__all__ = ["Fenced", "PartitionTransaction", "PartitionTransactions", "transactional_id"]

log = logging.getLogger(__name__)

#: one producer per partition; each holds a connection per broker and a sender task
ProducerFactory = Callable[[str], AIOKafkaProducer]


def transactional_id(app_id: str, topic: str, partition: int) -> str:
    """The id of a partition's producer: the same on every worker, so the one that
    takes the partition over fences the one that had it."""
    return f"{app_id}-{topic}-{partition}"


class Fenced(Exception):
    """A newer producer of the partition's transactional id exists: give it up."""


class PartitionTransaction:
    """One partition's producer for one assignment, and its open transaction."""

    def __init__(self, partition: int, producer: AIOKafkaProducer) -> None:
        self.partition = partition
        self.producer = producer
        self.sender = BatchProducer(lambda: producer)
        self.open = False
        self.closed = False
        # what the open transaction sent, to write to this disk once it commits
        self.writes: list[Outgoing] = []
        self.batches: list[SentBatch] = []

    async def send(self, outputs: list[Outgoing], writes: list[Outgoing]) -> None:
        """Send outputs and changelog records in the open transaction (begun here)."""
        if self.closed:
            raise Fenced(self.partition)
        if not self.open:
            await self.producer.begin_transaction()
            self.open = True
        self.batches += await self.sender.send_batches([*outputs, *writes])
        self.writes += writes

    async def commit(self, offsets: dict[AioTopicPartition, OffsetAndMetadata],
                     group_id: str) -> list[tuple[list[Outgoing], list[SentBatch]]]:
        """Commit the open transaction with ``offsets`` (none open: nothing); what it
        had sent, now committed."""
        if not self.open or self.closed:
            return []
        # a failed record fails the whole transaction: say which, abort, stop
        await asyncio.gather(*(batch.future for batch in self.batches))
        if offsets:
            await self.producer.send_offsets_to_transaction(offsets, group_id)
        await self.producer.commit_transaction()
        self.open = False
        done = [(self.writes, self.batches)]
        self.writes, self.batches = [], []
        return done

    async def close(self) -> None:
        """Abort what is open (nothing, after a commit) and stop the producer."""
        if self.closed:
            return
        self.closed = True
        if self.open and not self.producer._txn_manager.is_fatal_error():
            try:
                await self.producer.abort_transaction()
            except Exception as exc:  # the producer is stopped either way
                log.warning("partition %d: aborting its transaction failed: %r",
                            self.partition, exc)
        self.open = False
        await self.producer.stop()


class PartitionTransactions:
    """The transactional producers of the assigned input partitions of one topic."""

    def __init__(self, app_id: str, topic: str, group_id: str,
                 factory: ProducerFactory) -> None:
        self.app_id = app_id
        self.topic = topic
        self.group_id = group_id
        self.factory = factory
        self.current: dict[int, PartitionTransaction] = {}
        self.closing = False  # the worker stops: a closed producer is no fence

    def get(self, partition: int) -> PartitionTransaction | None:
        return self.current.get(partition)

    async def assign(self, partitions: Iterable[int]) -> None:
        """Start a producer for each partition not held yet (fencing older ones)."""
        new = [p for p in sorted(set(partitions)) if p not in self.current]
        started = await asyncio.gather(*(self._start(p) for p in new))
        self.current.update(zip(new, started, strict=True))

    async def _start(self, partition: int) -> PartitionTransaction:
        producer = self.factory(transactional_id(self.app_id, self.topic, partition))
        await producer.start()  # InitProducerId: fences the previous owner, aborts its txn
        return PartitionTransaction(partition, producer)

    async def revoke(self, partitions: Iterable[int],
                     finish: Callable[[int], Awaitable[None]]) -> list[int]:
        """``finish`` (commit) each partition's open transaction, then close it; the
        partitions whose open transaction was dropped instead (fenced): what this
        worker holds of them in memory is ahead of what the broker committed."""
        dropped = []
        for partition in sorted(set(partitions)):
            txn = self.current.get(partition)
            if txn is None:
                continue
            try:
                await finish(partition)
            except ProducerFenced:
                log.warning("partition %d: fenced while handing it over: another worker "
                            "owns it; its open transaction is dropped", partition)
                dropped.append(partition)
            finally:
                del self.current[partition]
                await txn.close()
        return dropped

    async def give_up(self, partition: int) -> None:
        """Drop a fenced partition's producer."""
        txn = self.current.pop(partition, None)
        if txn is not None:
            await txn.close()

    async def close(self) -> None:
        for partition in list(self.current):
            await self.give_up(partition)


def is_fenced(exc: BaseException) -> bool:
    """Whether ``exc`` says a newer producer of the same transactional id exists."""
    return isinstance(exc, (ProducerFenced, Fenced))
