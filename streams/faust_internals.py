"""Every private Faust and aiokafka detail the worker relies on, and the check for them.

Neither library offers publicly what the worker needs: a short broker fetch hold, a
client that fetches only what Faust reads, a batch path past Faust's per-record
Stream/Event machinery (~400 µs an event), a changelog topic rebuilt after the table's
codecs change, and the memory store written with explicit partitions. Each of those
touches a private name, so all of them live here (and offsets committed with
metadata, which Faust always leaves empty), and :func:`check` runs when the app
is built: an upgrade that renames one stops the worker with the name, instead of
silently doing nothing (a no-op ``_fetch_max_wait_ms`` would bring back 1.5 s stalls).

>>> check()  # the installed Faust and aiokafka have everything the worker uses
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import re
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any, NamedTuple

import aiokafka
import aiokafka.consumer.fetcher as aiokafka_fetcher
import aiokafka.consumer.group_coordinator as aiokafka_coordinator
import rocksdict
from aiokafka.errors import CommitFailedError
from aiokafka.structs import OffsetAndMetadata
from aiokafka.structs import TopicPartition as AioTopicPartition
from faust.stores import memory as faust_memory
from faust.stores import rocksdb as faust_rocksdb
from faust.tables import recovery as faust_recovery
from faust.tables.base import Collection as FaustTable
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types import tuples as faust_tuples
from mode.utils.futures import notify

from streams.errors import UserError
from streams.tools.partitioner import partition_for

__all__ = [
    "FETCH_MAX_WAIT_MS",
    "BatchConsumer",
    "BatchHandler",
    "BatchProducer",
    "InternalsChanged",
    "MemoryStoreView",
    "RocksPartitions",
    "SentBatch",
    "check",
    "end_recovery_past_markers",
    "rebuild_changelog_topic",
]

# Faust asks the broker to hold a fetch up to 1.5 s. When every interactions partition
# still has buffered records, the next fetch names only idle partitions (the assignor's
# leader topic) and the broker holds it that long, during which no fresh fetch can go
# out: a 1.5 s stall that the backlog then keeps repeating. A short hold bounds that.
FETCH_MAX_WAIT_MS = 50

#: called with a partition and its fresh records, in offset order; returns how many of
#: them (from the first) it processed, which then count as processed (their offsets may
#: be committed after a flush). It stops short only when a rebalance began: the records
#: it left are fetched again from the committed offset by whoever owns the partition.
BatchHandler = Callable[[Any, list[Any]], Awaitable[int]]

#: given the offsets a commit is about to write, the metadata each carries (a missing
#: partition carries none)
CommitMetadata = Callable[[Mapping[Any, int]], Mapping[Any, str]]


class InternalsChanged(UserError):
    """An upgrade of Faust or aiokafka removed or renamed something the worker uses.

    A user error: installing the locked versions (``make venv``) fixes it."""


# (where, name): methods and class attributes that must exist
_ATTRIBUTES: tuple[tuple[Any, str], ...] = (
    (faust_aiokafka.AIOKafkaConsumerThread, "_create_worker_consumer"),
    (faust_aiokafka.AIOKafkaConsumerThread, "_fetch_records"),
    (faust_aiokafka.AIOKafkaConsumerThread, "commit"),
    (faust_aiokafka.AIOKafkaConsumerThread, "call_thread"),
    (faust_aiokafka.AIOKafkaConsumerThread, "_ensure_consumer"),
    (faust_aiokafka.AIOKafkaConsumerThread, "crash"),
    (aiokafka_coordinator.GroupCoordinator, "fetch_committed_offsets"),
    (faust_aiokafka.Consumer, "_new_consumer_thread"),
    (faust_consumer.Consumer, "_drain_messages"),
    (faust_consumer.Consumer, "_wait_next_records"),
    (faust_consumer.Consumer, "_add_gap"),
    (faust_consumer.Consumer, "_commit_offsets"),
    (faust_consumer.Consumer, "_new_offset"),
    (faust_consumer.Consumer, "on_partitions_revoked"),
    (faust_consumer.Consumer, "on_partitions_assigned"),
    (faust_consumer.Consumer, "_n_acked"),
    (faust_consumer.Consumer, "perform_seek"),
    (faust_consumer.Consumer, "seek"),
    (faust_consumer.Consumer, "assignment"),
    (faust_consumer.Consumer, "flow_active"),
    (faust_aiokafka.Consumer, "_to_message"),
    (FaustTable, "_new_changelog_topic"),
    (faust_rocksdb.Store, "_db_for_partition"),
    (faust_rocksdb.Store, "_visible_items"),
    (faust_rocksdb.Store, "set_persisted_offset"),
    (faust_rocksdb.Store, "persisted_offset"),
    (faust_rocksdb.Store, "offset_key"),
    (faust_tuples, "ack_lock"),
    (faust_aiokafka.Producer, "_ensure_producer"),
    (faust_recovery.Recovery, "_set_recovery_ended"),
    (faust_recovery.Recovery, "flush_buffers"),
    (faust_recovery.Recovery, "need_recovery"),
    (faust_recovery.Recovery, "_build_highwaters"),
    (faust_recovery.Recovery, "_seek_offsets"),
    (faust_recovery.Recovery, "signal_recovery_end"),
    (faust_aiokafka, "credentials_to_aiokafka_auth"),
    (aiokafka.AIOKafkaProducer, "create_batch"),
    (aiokafka.AIOKafkaProducer, "send_batch"),
    (aiokafka.AIOKafkaProducer, "partitions_for"),
    (aiokafka.AIOKafkaProducer, "send_offsets_to_transaction"),
)
# (class, name): attributes its constructor sets on every instance
_INSTANCE_ATTRIBUTES: tuple[tuple[type, str], ...] = (
    (faust_consumer.Consumer, "callback"),
    (faust_consumer.Consumer, "_read_offset"),
    (faust_consumer.Consumer, "_acked"),
    (faust_consumer.Consumer, "_acked_index"),
    (faust_consumer.Consumer, "_committed_offset"),
    (faust_consumer.Consumer, "_commit_every"),
    (faust_consumer.Consumer, "_buffered_partitions"),
    (faust_consumer.Consumer, "_waiting_for_ack"),
    (faust_recovery.Recovery, "active_highwaters"),
    (faust_recovery.Recovery, "active_offsets"),
    (faust_recovery.Recovery, "in_recovery"),
    (faust_memory.Store, "data"),
    (faust_memory.Store, "_key_partition"),
    (aiokafka.AIOKafkaConsumer, "_fetch_max_wait_ms"),
    (aiokafka.AIOKafkaConsumer, "_isolation_level"),
    (aiokafka.AIOKafkaProducer, "_txn_manager"),
    (aiokafka.AIOKafkaConsumer, "_fetcher"),
    (aiokafka.AIOKafkaConsumer, "_coordinator"),
    (faust_consumer.ThreadDelegateConsumer, "_thread"),
    (faust_aiokafka.AIOKafkaConsumerThread, "tp_last_committed_at"),
)
# (function, parameter): parameters the overrides pass on
_PARAMETERS: tuple[tuple[Callable[..., Any], str], ...] = (
    (faust_aiokafka.AIOKafkaConsumerThread._fetch_records, "active_partitions"),
    (faust_aiokafka.AIOKafkaConsumerThread._fetch_records, "max_records"),
    (faust_consumer.Consumer._wait_next_records, "timeout"),
    (faust_consumer.Consumer._commit_offsets, "start_new_transaction"),
    (faust_consumer.Consumer.on_partitions_assigned, "generation_id"),
    (aiokafka_fetcher.Fetcher.__init__, "fetch_max_wait_ms"),
    (faust_recovery.Recovery._build_highwaters, "destination"),
)


def _sets(cls: type, name: str) -> bool:
    """Whether the module of ``cls`` or of a base assigns ``self.<name>``.

    Modules rather than classes: finding a class's own lines parses its module,
    ~40 ms each, and these modules set these names only on these classes."""
    pattern = re.compile(rf"self\.{re.escape(name)}\s*(:[^=\n]*)?=(?!=)")
    return any(pattern.search(_module_source(klass)) for klass in cls.__mro__)


@functools.cache
def _module_source(cls: type) -> str:
    try:
        return inspect.getsource(sys.modules[cls.__module__])
    except (OSError, TypeError, KeyError):
        return ""


def check() -> None:
    """Fail naming the first private attribute that the installed libraries lack."""
    for owner, name in _ATTRIBUTES:
        if not hasattr(owner, name):
            raise _changed(f"{_name(owner)}.{name} is gone", owner)
    for cls, name in _INSTANCE_ATTRIBUTES:
        if not _sets(cls, name):
            raise _changed(f"{_name(cls)} no longer sets self.{name}", cls)
    for function, parameter in _PARAMETERS:
        if parameter not in inspect.signature(function).parameters:
            raise _changed(f"{function.__qualname__} no longer takes {parameter!r}",
                           function)


def _changed(what: str, owner: Any) -> InternalsChanged:
    module = getattr(owner, "__module__", None) or owner.__name__
    library = str(module).split(".")[0]
    return InternalsChanged(f"{what}: the installed {library} is not a version segstream "
                            "supports (make venv installs the locked ones)")


def _name(owner: Any) -> str:
    return getattr(owner, "__qualname__", None) or owner.__name__


def _require(obj: Any, name: str) -> None:
    if not hasattr(obj, name):
        raise _changed(f"{type(obj).__qualname__} has no {name}", type(obj))


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's client thread with a short fetch hold, fetching only what Faust reads,
    committing offsets with metadata and reading it back."""

    _fetching: tuple[frozenset[Any], frozenset[Any]] | None = None

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        _require(consumer, "_fetch_max_wait_ms")
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the fetcher starts
        if getattr(self.consumer, "read_committed", False):
            # exactly-once: changelogs (recovery, standbys) are written in transactions;
            # Faust sets this only for its own processing_guarantee (not used here)
            _require(consumer, "_isolation_level")
            consumer._isolation_level = "read_committed"  # read when the fetcher starts
        return consumer

    async def _fetch_records(self, consumer: Any, active_partitions: set[Any],
                             timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        self._fetch_only(consumer, active_partitions)
        return await super()._fetch_records(consumer, active_partitions, timeout=timeout,
                                            max_records=max_records)

    async def commit(self, offsets: Mapping[Any, int]) -> bool:
        # the metadata is taken here, on the app's loop, where it is written
        marks = getattr(self.consumer, "commit_metadata", None)
        metadata = dict(marks(offsets)) if marks is not None else {}
        return bool(await self.call_thread(self._commit_with, offsets, metadata))

    async def _commit_with(self, offsets: Mapping[Any, int],
                           metadata: Mapping[Any, str]) -> bool:
        # Faust's AIOKafkaConsumerThread._commit, with metadata instead of ""
        consumer = self._ensure_consumer()
        assignment = self.assignment()
        committable = {tp: offset for tp, offset in offsets.items() if tp in assignment}
        try:
            self.tp_last_committed_at.update(
                {tp: time.monotonic() for tp in committable})
            await consumer.commit({
                AioTopicPartition(tp.topic, tp.partition):
                    OffsetAndMetadata(offset, metadata.get(tp, ""))
                for tp, offset in committable.items()})
        except CommitFailedError as exc:
            if "already rebalanced" in str(exc):
                return False
            self.log.exception("Committing raised exception: %r", exc)
            await self.crash(exc)
            return False
        except Exception as exc:
            self.log.exception("Got exception: %r\nCurrent assignment: %r", exc,
                               self.assignment())
            await self.crash(exc)
            return False
        return True

    async def committed(self, tps: Iterable[Any]) -> dict[Any, tuple[int, str]]:
        """Each partition's committed offset and its metadata; a partition with no
        committed offset is left out."""
        return dict(await self.call_thread(self._committed, list(tps)))

    async def _committed(self, tps: list[Any]) -> dict[Any, tuple[int, str]]:
        coordinator = self._ensure_consumer()._coordinator
        by_aiokafka = {AioTopicPartition(tp.topic, tp.partition): tp for tp in tps}
        found = await coordinator.fetch_committed_offsets(list(by_aiokafka))
        return {by_aiokafka[tp]: (value.offset, value.metadata or "")
                for tp, value in found.items() if tp in by_aiokafka and value.offset >= 0}

    def _fetch_only(self, consumer: Any, active: set[Any]) -> None:
        """Make the client fetch only what Faust reads: its "paused" partitions too.

        Faust pauses a partition by leaving it out of ``getmany``, but the client
        keeps fetching it, and a record it fetched and nobody reads holds back every
        fetch from that broker for 100 ms (aiokafka's prefetch backoff). After
        recovery the tables' changelog partitions are such partitions: the first model
        checkpoint written to its changelog stalled the interactions ~200 ms."""
        assigned = frozenset(consumer.assignment())
        key = (frozenset(active), assigned)
        if key == self._fetching:
            return
        self._fetching = key
        paused = consumer.paused()  # the client's own TopicPartition objects, as assigned
        pause = [tp for tp in assigned if tp not in key[0] and tp not in paused]
        resume = [tp for tp in paused if tp in key[0]]
        if pause:
            consumer.pause(*pause)
        if resume:
            consumer.resume(*resume)


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's consumer, handing the records of chosen topics over a partition at a time.

    Faust turns every record into a Message, an Event and a trip through a Stream
    before an agent sees it, and acknowledges it one by one. For the topics in
    :attr:`batch_handlers` this consumer skips that: it gives a handler all fresh
    records of a partition from one fetch, then marks their offsets acknowledged
    exactly as ``Consumer.ack`` would, so Faust's own commit (which flushes the
    producer first) commits them. Every other topic (table changelogs during recovery)
    goes through Faust's per-message path unchanged. Every commit, Faust's periodic
    one and the one before a rebalance included, first awaits :attr:`before_commit`,
    and each committed offset carries the metadata :attr:`commit_metadata` gives it.
    """

    #: topic name -> handler; see :meth:`handling`
    batch_handlers: Mapping[str, BatchHandler] = {}
    #: awaited before the producer's flush of every commit (writes still to queue)
    before_commit: Callable[[], Awaitable[None]] | None = None
    #: the metadata committed offsets carry (None: none)
    commit_metadata: CommitMetadata | None = None
    #: how many times partitions were revoked (a rebalance began)
    revocations = 0
    #: False: the handlers commit their offsets themselves (in a Kafka transaction,
    #: ``streams/transactions.py``): nothing is acknowledged, so Faust commits none
    acknowledges = True
    #: awaited with the assigned partitions before Faust's own assignment callbacks
    #: (which read the committed offsets): exactly-once starts its producers there
    before_assigned: Callable[[set[Any]], Awaitable[None]] | None = None
    #: read the changelogs (recovery, standbys) with isolation_level read_committed
    read_committed = False

    @classmethod
    def handling(cls, handlers: Mapping[str, BatchHandler], *,
                 before_commit: Callable[[], Awaitable[None]] | None = None,
                 commit_metadata: CommitMetadata | None = None,
                 acknowledges: bool = True,
                 before_assigned: Callable[[set[Any]], Awaitable[None]] | None = None,
                 ) -> type[BatchConsumer]:
        """This consumer class with ``handlers`` (Faust builds the instance itself);
        ``acknowledges=False`` for handlers that commit in transactions."""
        def static(function: Any) -> Any:
            return None if function is None else staticmethod(function)

        return type(cls.__name__, (cls,), {"batch_handlers": dict(handlers),
                                           "before_commit": static(before_commit),
                                           "commit_metadata": static(commit_metadata),
                                           "acknowledges": acknowledges,
                                           "read_committed": not acknowledges,
                                           "before_assigned": static(before_assigned)})

    async def committed(self, tps: Iterable[Any]) -> dict[Any, tuple[int, str]]:
        """Each partition's committed offset and what :attr:`commit_metadata` (or a
        transaction) gave it ("" for an offset committed without); partitions never
        committed are left out."""
        thread = self._thread
        assert isinstance(thread, ConsumerThread)
        return await thread.committed(tps)

    async def _commit_offsets(self, offsets: Mapping[Any, int],
                              start_new_transaction: bool = True) -> bool:
        # Faust flushes the producer here and then commits; what must precede the
        # flush (the changelog writes awaiting their outputs) is queued first
        if self.before_commit is not None:
            await self.before_commit()
        return bool(await super()._commit_offsets(
            offsets, start_new_transaction=start_new_transaction))

    def committed_elsewhere(self, tp: Any) -> None:
        """A handler committed ``tp``'s offset itself (a transaction): Faust's
        slow-commit warnings look at when each partition last committed."""
        self._thread.tp_last_committed_at[tp] = time.monotonic()

    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - broker
        # Faust's loop (transport/consumer.py), with the batch path for our topics
        callback = self.callback
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        set_flag, unset_flag = self.diag.set_flag, self.diag.unset_flag
        fetching = faust_consumer.CONSUMER_FETCHING
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(fetching)
                records, active = await self._wait_next_records(1.0)
                await self.sleep(0)
                if records is None or self.should_stop:
                    unset_flag(fetching)
                    continue
                if not self.flow_active:
                    try:
                        await self.perform_seek()
                        for tp, batch in records.items():
                            await self._fetch_again(tp, batch)
                    except Exception as exc:
                        self.log.warning("exception performing seek when flow not "
                                         "active %s", exc)
                    unset_flag(fetching)
                    continue
                generation = self.app.consumer_generation_id
                fetched = list(records.items())
                for index, (tp, batch) in enumerate(fetched):
                    if (not self.flow_active
                            or self.app.consumer_generation_id != generation):
                        for dropped, later in fetched[index:]:
                            await self._fetch_again(dropped, later)
                        break
                    if (active is not None and tp not in active
                            and tp not in self._buffered_partitions):
                        await self._fetch_again(tp, batch)
                        continue
                    fresh = await self._fresh(tp, batch)
                    if not fresh:
                        continue
                    handler = self.batch_handlers.get(tp.topic)
                    if handler is None:
                        for record in fresh:
                            await self._maybe_commit()
                            await self.wait_first(callback(self._to_message(tp, record)),
                                                  self.suspend_flow.wait())
                            self._read_offset[tp] = record.offset
                        continue
                    await self._maybe_commit()
                    if not await self._hand_over(tp, fresh, handler):
                        break
                unset_flag(fetching)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(fetching)

    async def _hand_over(self, tp: Any, fresh: list[Any], handler: BatchHandler) -> bool:
        """Give ``fresh`` to ``handler`` and acknowledge what it processed; False when
        a rebalance revoked the partitions meanwhile: nothing is acknowledged then.

        A revocation makes Faust forget each partition's acknowledged and committed
        offsets; acknowledgements noted after it count for the next assignment. Its
        commits then jump past records it has not processed yet, to an offset that is
        no slice end of its own and so carries no mark (5 of 1,935 commits in eleven
        join-leave failover runs, issue 18), or, when the gap is ahead of the committed
        offset, hold back until processing reaches it (``Consumer._new_offset``). What
        the handler processed is processed again from the committed offset, by
        whoever owns the partition now.
        """
        revocations = self.revocations
        done = await handler(tp, fresh)
        if self.revocations != revocations:
            return False
        if done:
            self._read_offset[tp] = fresh[done - 1].offset
            if self.acknowledges:
                self.acknowledge(tp, (record.offset for record in fresh[:done]))
        if done < len(fresh):  # a rebalance began: the rest is read again
            await self._fetch_again(tp, fresh[done:])
        return True

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        self.revocations += 1  # before Faust forgets the partitions' offsets
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[Any],
                                     generation_id: int = 0) -> None:
        if self.before_assigned is not None:
            await self.before_assigned(assigned)
        await super().on_partitions_assigned(assigned, generation_id=generation_id)

    async def _fetch_again(self, tp: Any, dropped: list[Any]) -> None:
        """Make sure the records of ``dropped`` (fetched, then left unprocessed: the
        flow stopped, the partition was paused, a rebalance began) that a batch
        handler has not processed are fetched again.

        Faust relies on the seek to the committed offset after a rebalance for that.
        A partition nothing was committed for yet has no such offset, and aiokafka
        leaves its position where the fetch left it: a new group lost the records
        fetched during its first rebalances (about one failover test in five)."""
        if (tp.topic not in self.batch_handlers or self._committed_offset.get(tp)
                or tp not in self.assignment()):
            return  # not ours to read, or the seek to the committed offset goes back
        read = self._read_offset[tp]
        first = next((r.offset for r in dropped if read is None or r.offset >= read), None)
        if first is not None:
            await self.seek(tp, first)

    async def _fresh(self, tp: Any, records: list[Any]) -> list[Any]:
        """The records at or past the partition's read offset, noting gaps as Faust
        does (the read offset is the last one processed, or the one sought to)."""
        read = self._read_offset[tp]
        fresh = []
        for record in records:
            offset = record.offset
            if read is None or offset >= read:
                if read and offset - read > 1 and self.app.topics.acks_enabled_for(tp.topic):
                    await self._add_gap(tp, read + 1, offset)
                fresh.append(record)
                read = offset
        return fresh

    def acknowledge(self, tp: Any, offsets: Iterable[int]) -> int:
        """Mark processed offsets as ``Consumer.ack`` marks one message's; how many."""
        if not self.app.topics.acks_enabled_for(tp.topic):
            return 0
        with faust_tuples.ack_lock:
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            new = []
            for offset in offsets:
                if (committed is None or offset >= committed) and offset not in index:
                    index.add(offset)
                    new.append(offset)
            self._acked[tp].extend(new)
            self._n_acked += len(new)
            notify(self._waiting_for_ack)
        return len(new)

    async def _maybe_commit(self) -> None:
        every = self._commit_every
        if every is not None and self._n_acked >= every:
            self._n_acked = 0
            await self.commit()


#: how often the recovery of transactional changelogs is checked for its end
RECOVERY_SETTLE_SECONDS = 0.25


async def end_recovery_past_markers(app: Any) -> None:
    """End a table recovery that only a transaction marker keeps going (exactly-once).

    Faust's recovery is done when it has read a changelog partition's record just
    below its end offset. A changelog written in transactions ends with a commit
    marker (or an aborted transaction), which a read_committed consumer never
    delivers: the recovery would wait for it forever. Faust handles that only for
    its own processing_guarantee, after two 5 s timeouts. Here, while it reads (its
    flow running): when the changelog queue is empty and a partition's fetch
    position has passed its end twice in a row, with no record of it arriving in
    between, what is left are markers and aborted records."""
    recovery = app.tables.recovery
    queue = app.tables.changelog_queue
    passed: dict[Any, int | None] = {}  # tp -> its read offset when first seen passed
    # only while it reads, from after it sought the active partitions to where their
    # tables are: before, the client may have fetched ahead from anywhere
    reading = [False]
    build, seek = recovery._build_highwaters, recovery._seek_offsets

    async def build_highwaters(consumer: Any, tps: Any, destination: Any,
                               title: str) -> None:
        if title == "active":
            reading[0] = False
        await build(consumer, tps, destination, title)

    async def seek_offsets(consumer: Any, tps: Any, offsets: Any, title: str) -> None:
        await seek(consumer, tps, offsets, title)
        if title == "active":
            reading[0] = True

    recovery._build_highwaters, recovery._seek_offsets = build_highwaters, seek_offsets
    while not app.should_stop:
        await asyncio.sleep(RECOVERY_SETTLE_SECONDS)
        if not (reading[0] and recovery.in_recovery and app.consumer.flow_active):
            passed.clear()
            continue
        highwaters, offsets = recovery.active_highwaters, recovery.active_offsets
        behind = [tp for tp, highwater in list(highwaters.items())
                  if highwater is not None and highwater >= 0
                  and (offsets.get(tp) is None or offsets[tp] < highwater)]
        for tp in behind:
            position = await app.consumer.position(tp)
            seen = offsets.get(tp)
            if position is None or position <= highwaters[tp] or not queue.empty():
                passed.pop(tp, None)
            elif tp not in passed or passed[tp] != seen:
                passed[tp] = seen
            else:
                offsets[tp] = highwaters[tp]
                del passed[tp]
        if (behind and queue.empty() and not recovery.need_recovery() and reading[0]
                and recovery.in_recovery and app.consumer.flow_active):
            # what Faust's _slurp_changelogs does on its next record or timeout
            recovery.flush_buffers()
            recovery._set_recovery_ended()
            recovery.signal_recovery_end.set()


def rebuild_changelog_topic(table: Any) -> None:
    """Rebuild a table's changelog topic after its codecs were changed.

    Faust builds the topic while registering the table, with the codecs it derived
    then; recovery decodes with that topic."""
    table.changelog_topic = table._new_changelog_topic()


#: (topic, partition or ``None`` for the key's, key, value)
Outgoing = tuple[str, "int | None", "bytes | None", "bytes | None"]


class SentBatch(NamedTuple):
    """A batch :class:`BatchProducer` queued."""

    future: asyncio.Future[Any]
    topic: str
    partition: int
    records: int


class BatchProducer:
    """Records sent as one aiokafka batch per topic partition, not one ``send`` each.

    Faust's and aiokafka's ``send`` cost tens of µs a record (an await, metadata and
    size checks, a future); a batch built with ``create_batch`` and queued with
    ``send_batch`` costs that once. A keyed record goes to the partition Kafka's
    default partitioner gives its key (murmur2, as ``send`` would), a keyless one to
    a random partition (as ``send`` would). The producer's ``flush``, which Faust calls
    before every commit, waits for these batches like any other."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client  # the aiokafka producer (Faust's, or a transactional one)
        self._partitions: dict[str, int] = {}

    async def send(self, records: Iterable[Outgoing]) -> list[asyncio.Future[Any]]:
        """Queue ``records`` in order; the futures of their batches."""
        return [sent.future for sent in await self.send_batches(records)]

    async def send_batches(self, records: Iterable[Outgoing]) -> list[SentBatch]:
        """Queue ``records`` in order; each batch's future (its result's offset is
        the batch's first), topic, partition and number of records."""
        client = self._client()
        groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
        for topic, partition, key, value in records:
            if partition is None:
                count = self._partitions.get(topic) or await self._count(client, topic)
                partition = (random.randrange(count) if key is None
                             else partition_for(key, count))
            groups.setdefault((topic, partition), []).append((key, value))
        sent = []
        for (topic, partition), items in groups.items():
            batch = client.create_batch()
            size = 0
            for key, value in items:
                if batch.append(key=key, value=value, timestamp=None) is None:  # full
                    future = await client.send_batch(batch, topic, partition=partition)
                    sent.append(SentBatch(future, topic, partition, size))
                    batch = client.create_batch()
                    batch.append(key=key, value=value, timestamp=None)  # a first always fits
                    size = 0
                size += 1
            future = await client.send_batch(batch, topic, partition=partition)
            sent.append(SentBatch(future, topic, partition, size))
        return sent

    async def _count(self, client: Any, topic: str) -> int:
        count = len(await client.partitions_for(topic))
        self._partitions[topic] = count
        return count


class MemoryStoreView:
    """A Faust memory store read and written directly, with explicit partitions.

    The store forgets a revoked partition's keys through its key -> partition map,
    which Faust itself fills only from the current stream event."""

    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def data(self) -> MutableMapping[Any, Any]:
        return self.table.data.data  # type: ignore[no-any-return]

    @property
    def partitions(self) -> MutableMapping[Any, int]:
        return self.table.data._key_partition  # type: ignore[no-any-return]


class RocksPartitions:
    """A Faust RocksDB store read and written by partition.

    Faust writes a RocksDB table only from a stream event (it takes the partition from
    the current event) and records the changelog offset a partition's database holds
    only for records it produced itself; the worker writes from its batch path and
    produces its own changelog records, so it does both here."""

    def __init__(self, table: Any) -> None:
        self.table = table
        store = table.data
        if not isinstance(store, faust_rocksdb.Store):
            raise TypeError(f"{table.name} is not stored in RocksDB")
        self.store = store

    def items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """The partition's keys and values, as its database holds them."""
        store = self.store
        yield from store._visible_items(store._db_for_partition(partition))

    def get(self, partition: int, key: bytes) -> bytes | None:
        value = self.store._db_for_partition(partition).get(key)
        return None if value is None else bytes(value)

    def write(self, partition: int, records: Iterable[tuple[bytes, bytes | None]]) -> None:
        """Put (or, for ``None``, delete) each key, in one atomic batch."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self.store._db_for_partition(partition).write(batch)

    def persisted(self, partition: int, offset: int) -> None:
        """The partition's database holds the changelog up to ``offset``: a restart
        on this disk reads the changelog from there on only."""
        store = self.store
        tp = TP(self.table.changelog_topic.get_topic_name(), partition)
        current = store.persisted_offset(tp)
        if current is None or offset > current:
            store.set_persisted_offset(tp, offset)

    def persisted_offset(self, partition: int) -> int | None:
        tp = TP(self.table.changelog_topic.get_topic_name(), partition)
        return self.store.persisted_offset(tp)  # type: ignore[no-any-return]
