"""The Faust application: topics, the customer table, the batch path, one timer, web.

Faust runs the consumer group, the tables and their changelogs, recovery, the timer and
the web server; the records of ``interactions`` skip its per-record Stream machinery:
the consumer hands each partition's fetched records to :func:`create_app`'s ``process``
in offset order (``streams/faust_internals.py``), the core
:class:`~segments.processor.Processor` does the work, a batch's outputs are sent, its
changelog records follow once those are acknowledged (``streams/write_order.py``), and
the offsets are committed by Faust after both have been flushed, each with the
partition's clock and RFM cut points at that offset (``streams/commit_marks.py``), from
which a worker taking the partition over resumes time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
import orjson
from aiokafka.structs import OffsetAndMetadata
from aiokafka.structs import TopicPartition as AioTopicPartition
from faust.types import TP as FaustTP

from segments.definitions import Definitions
from segments.engine import Engine
from segments.gate import Gate, GateConfig
from segments.models import MODELS
from segments.models.classifier import fast_prediction_agrees
from segments.models.refits import refit_pool
from segments.partition import UNCOMMITTED, PartitionMark
from segments.processor import Processor, RefitRunning, Source
from segments.records import INTERACTIONS, OUTPUT_TOPICS, Output
from streams import codecs, faust_internals, web, web_auth
from streams.checkpoints import ModelCheckpoints, checkpoint_key
from streams.client.group import client_id
from streams.client.topics import DEAD_LETTER_MAX_BYTES
from streams.commit_marks import CommitMarks
from streams.dashboard import RecentTriggers
from streams.heap import HeapSettler
from streams.metrics import Metrics
from streams.settings import Settings
from streams.tables import LocalCopies, RocksTableStore, TableStore
from streams.transactions import Fenced, PartitionTransactions, is_fenced
from streams.write_order import WritesAfterOutputs

__all__ = ["create_app"]

log = logging.getLogger(__name__)


# a full garbage collection slower than this freezes what survived it (streams/heap.py)
FULL_GC_SLOW_MS = 20.0
# the most records one fetch hands over (over all partitions)
MAX_POLL_RECORDS = 2000
# a batch is processed in slices of about this long: each slice's outputs are sent
# before the next starts, and the timer and web requests run in between
SLICE_SECONDS = 0.02


#: how soon a transactional producer retries (the Java client's 20 ms for this case)
TRANSACTION_RETRY_MS = 20

#: fault injection for the tests: the worker exits at once (code 86) when the Nth batch
#: of changelog records is about to be sent, its outputs already acknowledged
FAULT_EXIT_BEFORE_CHANGELOG = "SEGSTREAM_FAULT_EXIT_BEFORE_CHANGELOG"
FAULT_EXIT_CODE = 86


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _exit_before(send: Callable[[list[Any]], Awaitable[None]]
                 ) -> Callable[[list[Any]], Awaitable[None]]:
    """``send``, or with :data:`FAULT_EXIT_BEFORE_CHANGELOG` set, ``send`` that exits
    the process instead at its Nth call."""
    value = os.environ.get(FAULT_EXIT_BEFORE_CHANGELOG)
    if not value:
        return send
    calls = 0

    async def exit_at_nth(writes: list[Any]) -> None:
        nonlocal calls
        calls += 1
        if calls >= int(value):
            log.error("%s: exiting before a changelog batch", FAULT_EXIT_BEFORE_CHANGELOG)
            os._exit(FAULT_EXIT_CODE)
        await send(writes)

    return exit_at_nth


def create_app(settings: Settings, definitions: Definitions, partitions: int) -> faust.App:
    faust_internals.check()
    codecs.register()
    # who may read the HTTP API: a middleware ahead of every route (Faust's own too)
    closed: dict[str, Any] = {"web_application_options": {"middlewares": [
        web_auth.middleware(settings.web_token, settings.metrics_token)]}}
    if settings.web_cert is not None:
        closed["web_ssl_context"] = web_auth.server_context(settings.web_cert,
                                                            settings.web_key)
        # a forwarded profile request goes to the owner over TLS too
        closed["HttpClient"] = web_auth.forwarding_client(settings.web_ca)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        # names the definitions version: a worker on another one is refused
        broker_client_id=client_id(definitions.version),
        store=f"{settings.store}://",
        datadir=str(settings.data_dir),
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # what the other workers forward profile requests to
        canonical_url=settings.web_url,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=settings.linger_ms / 1000,
        producer_max_request_size=DEAD_LETTER_MAX_BYTES,
        broker_commit_every=1000,
        broker_max_poll_records=MAX_POLL_RECORDS,
        broker_commit_interval=1.0,
        # a worker that died hands its partitions over after this, not Faust's 60 s
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
        table_standby_replicas=settings.standby_replicas,
        consumer_group_instance_id=settings.group_instance_id,
        # SSL/SASL from --kafka-config: the same settings the admin client used
        **settings.kafka.faust(),
        **closed,
    )
    source = app.topic(settings.topic(INTERACTIONS), key_serializer="raw",
                       value_serializer="raw", partitions=partitions)
    outputs = {name: app.topic(settings.topic(name), key_serializer="raw",
                               value_serializer="raw", partitions=partitions)
               for name in OUTPUT_TOPICS}
    table = app.Table("customers", default=None, partitions=partitions)
    # Faust derives codecs from key/value types and builds the changelog topic while
    # registering the table, with JSON codecs. Recovery decodes with that topic, so
    # set ours and rebuild it: otherwise a restart cannot read its own changelog.
    table.key_serializer = "utf8"
    table.value_serializer = "customer-state"
    faust_internals.rebuild_changelog_topic(table)
    store = RocksTableStore(table) if settings.store == "rocksdb" else TableStore(table)
    # Model checkpoints: one versioned snapshot per partition, key "p<partition>", on a
    # compacted changelog partition aligned with the interactions partition.
    models_table = app.Table("models", default=None, partitions=partitions)
    models_table.key_serializer = "utf8"
    models_table.value_serializer = "raw"
    faust_internals.rebuild_changelog_topic(models_table)
    models_local = (faust_internals.RocksPartitions(models_table)
                    if isinstance(store, RocksTableStore) else None)
    gate = Gate(GateConfig(max_bytes=settings.max_event_bytes,
                           max_future_ms=settings.max_future_ms))
    refits = None  # without models: no refits, and no process loading SciPy for them
    if settings.models:
        # BG/NBD refits run in a separate process: no event waits for one (docs/models.md)
        refits = refit_pool("spawn")
        # load River and check the classifiers' fast prediction now: at the first
        # record it held the event loop for seconds (River imports scipy.stats)
        fast_prediction_agrees()
    processor = Processor(Engine(definitions), gate, store, live=settings.clock == "live",
                          dedupe_window_ms=settings.dedupe_window_ms,
                          submit=None if refits is None else refits.submit,
                          models=settings.models)
    checkpoints = ModelCheckpoints(every_updates=settings.checkpoint_updates,
                                   every_seconds=settings.checkpoint_seconds)
    models_changelog = models_table.changelog_topic.get_topic_name()
    # full collections walked the whole state; see streams/heap.py
    heap = HeapSettler(slow_ms=FULL_GC_SLOW_MS,
                       schedule=lambda freeze: app.loop.call_soon_threadsafe(freeze))
    heap.install()
    active: set[int] = set()
    positions: dict[int, int] = {}  # partition -> next offset to process
    marks = CommitMarks(source.get_topic_name())

    def lag() -> dict[int, int]:
        from faust.types import TP

        behind = {}
        for partition in sorted(active):
            try:
                end = app.consumer.highwater(TP(source.get_topic_name(), partition))
            except Exception:  # not assigned or not fetched yet: no figure
                continue
            if end is not None and end >= 0:
                behind[partition] = max(0, end - positions.get(partition, end))
        return behind

    metrics = Metrics(processor, lag)
    recent = RecentTriggers()  # the latest triggers, for /dashboard
    observe = metrics.latency.observe
    clock = metrics.clock

    output_names = {name: topic.get_topic_name() for name, topic in outputs.items()}
    changelog_name = table.changelog_topic.get_topic_name()

    def delivered(future: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is None:
            return
        # an output or changelog record was lost: stop before its offset is committed
        log.error("a record could not be produced: %r", future.exception())
        app.add_future(app.crash(future.exception()))

    producer = faust_internals.BatchProducer(lambda: app.producer._ensure_producer())
    source_topic = source.get_topic_name()
    # exactly-once: a transactional producer per assigned interactions partition
    txns = (PartitionTransactions(settings.app_id, source_topic, settings.app_id,
                                  lambda tid: transactional_producer(app, settings, tid))
            if settings.guarantee == "exactly-once" else None)

    # with RocksDB, changelog records are written to this disk as they are sent
    local = (LocalCopies({changelog_name: store.local, models_changelog: models_local})
             if isinstance(store, RocksTableStore) and models_local is not None else None)

    async def send_writes(writes: list[faust_internals.Outgoing]) -> None:
        if local is not None:
            local.write(writes)
        batches = await producer.send_batches(writes)
        for batch in batches:
            batch.future.add_done_callback(delivered)
        if local is not None:
            local.sent(batches)

    # changelog records (and model checkpoints) go out once the outputs before them are
    # acknowledged: a state never reaches the changelog ahead of its events' outputs
    writes_after = WritesAfterOutputs(_exit_before(send_writes))

    async def flush_everything() -> None:
        """Queue the writes still waiting for their outputs, then flush the producer."""
        await writes_after.drained()
        await app.producer.flush()

    async def emit(partition: int, records: list[Output]) -> None:
        """Produce the outputs, a batch per topic partition; the changelog writes follow
        once they are acknowledged (:class:`WritesAfterOutputs`). Exactly-once: both
        go into the open transaction of ``partition``, the partition they come from.

        Faust's ``send_soon`` goes through a buffer task and several wrappers per
        record, and even the producer's own ``send`` costs tens of µs each. A commit
        waits for the writes to be queued and flushes the producer first, so no offset
        passes an unsent record."""
        writes: list[faust_internals.Outgoing] = [
            (changelog_name, partition, key, value) for partition, key, value in store.drain()]
        recent.note(records)
        outgoing: list[faust_internals.Outgoing] = [
            (output_names[record.topic], None,
             None if record.key is None else record.key.encode(), orjson.dumps(record.value))
            for record in records]
        if txns is not None:
            await send_in_transaction(partition, outgoing, writes)
            return
        futures = await producer.send(outgoing) if outgoing else []
        for future in futures:
            future.add_done_callback(delivered)
        writes_after.after(futures, writes)

    async def send_in_transaction(partition: int, outgoing: list[faust_internals.Outgoing],
                                  writes: list[faust_internals.Outgoing]) -> None:
        assert txns is not None
        if not outgoing and not writes:
            return
        txn = txns.get(partition)
        if txn is None:  # given up, or no longer assigned
            raise Fenced(partition)
        await txn.send(outgoing, writes)

    async def commit(partition: int) -> None:
        """Exactly-once: commit the partition's open transaction with the offset after
        the records processed so far and the partition's mark there (under ``turn``,
        between slices, where the three agree)."""
        assert txns is not None
        txn = txns.get(partition)
        if txn is None or not txn.open:
            return
        offsets = {}
        if partition in positions:  # something was processed in this assignment
            mark = processor.partition(partition).mark().encode()
            offsets[AioTopicPartition(source_topic, partition)] = OffsetAndMetadata(
                positions[partition], mark)
        done = await txn.commit(offsets, settings.app_id)
        if offsets:
            committed_here[partition] = positions[partition]
            app.consumer.committed_elsewhere(FaustTP(source_topic, partition))
        for writes, batches in done:
            if local is not None:  # this disk holds only what the broker committed
                local.write(writes)
                local.sent(batches)

    async def give_up(partition: int, exc: BaseException) -> None:
        """A fenced partition: another worker owns it now. Drop what this one holds of
        it (its in-memory state may be ahead of what was committed) and leave its
        records alone until the group's next rebalance takes it away."""
        assert txns is not None
        if not txns.closing:
            log.warning("partition %d: fenced (another worker took it over): giving it "
                        "up (%s)", partition, type(exc).__name__)
        await txns.give_up(partition)
        forget_uncommitted(partition)

    def forget_uncommitted(partition: int) -> None:
        """Drop what this worker holds of a partition whose open transaction was
        dropped: its states, due times and dedupe memory are ahead of the committed
        offset, and kept they would make the redelivered events look like duplicates
        (their outputs lost) when the partition comes back to this worker."""
        positions.pop(partition, None)
        committed_here.pop(partition, None)
        processor.forget(partition)
        store.forget(partition)
        active.discard(partition)

    async def guarded(partition: int, work: Callable[[], Awaitable[None]]) -> bool:
        """``work``, giving the partition up if its producer was fenced; whether it ran."""
        try:
            await work()
        except Exception as exc:
            if txns is None or not is_fenced(exc):
                raise
            await give_up(partition, exc)
            return False
        return True

    # one lock orders the batches and the due-time ticks: each one's outputs are sent
    # (and its changelog records queued behind them) before the next one starts
    turn = asyncio.Lock()

    async def process(tp: Any, records: list[Any]) -> int:
        """A partition's records from one fetch, in order, in slices of at most
        ``SLICE_SECONDS``: each slice's outputs leave before the next starts, and the
        timer and the web server get the loop in between. A rebalance that begins
        between two slices stops it there (the partition may be someone else's now);
        how many records it processed."""
        if txns is None:
            return await process_slices(tp, records)
        partition = tp.partition
        txn = txns.get(partition)
        if txn is None:  # given up: its owner reads it; the next rebalance revokes it
            await asyncio.sleep(0.5)
            return 0
        expected = positions.get(partition)
        if expected is not None and records[0].offset != expected:
            # the transaction commits the offset after the last record processed: a
            # batch that does not go on from there skips records (or a transactional
            # producer upstream left markers: offsets it never hands out)
            log.warning("partition %d: a batch starts at offset %d, not %d", partition,
                        records[0].offset, expected)
        done = 0

        async def run() -> None:
            nonlocal done
            done = await process_slices(tp, records)
            async with turn:
                if txns.get(partition) is txn:  # not handed over meanwhile
                    await commit(partition)

        return done if await guarded(partition, run) else 0

    async def process_slices(tp: Any, records: list[Any]) -> int:
        generation = app.consumer_generation_id
        done = 0
        while done < len(records):
            if app.consumer_generation_id != generation or not app.consumer.flow_active:
                break
            emitted: list[Output] = []
            async with turn:
                until = clock() + SLICE_SECONDS
                for record in records[done:]:
                    value = record.value
                    raw = value if isinstance(value, bytes) else b""
                    origin = Source(record.topic, record.partition, record.offset,
                                    record.key, record.timestamp)
                    while True:
                        started = clock()
                        try:
                            emitted += processor.process(raw, origin, wall_ms(), wait=False)
                            break
                        except RefitRunning as running:
                            # the event clock outran a BG/NBD fit (a backlog): wait for
                            # it with the loop free (web, heartbeats), not blocked on it
                            emitted += running.outputs
                            await emit(tp.partition, emitted)
                            emitted = []
                            # (a failed fit raises nothing here: applying it keeps the
                            # parameters and says why, as without the wait)
                            await asyncio.wait([asyncio.wrap_future(running.future)])
                    finished = clock()
                    observe(finished - started)
                    done += 1
                    if finished >= until:
                        break
                await emit(tp.partition, emitted)
                positions[tp.partition] = next_offset = records[done - 1].offset + 1
            if txns is None:  # exactly-once commits the mark itself (commit)
                marks.note(tp.partition, next_offset,
                           processor.partition(tp.partition).mark())
            if done < len(records):
                await asyncio.sleep(0)
        return done

    @app.on_partitions_revoked.connect
    async def finish_writes(_app: Any, revoked: Any, **_: Any) -> None:
        # Faust stopped the flow and flushed its producer; a slice may still be running
        # and writes may wait for their outputs. Finish both before the partitions go
        # to another worker: a write landing after its new owner read the changelog
        # could later shadow that owner's newer state of the key.
        async with turn:
            if txns is None:
                await flush_everything()
                return
            # exactly-once: commit what the open transactions hold, close the producers
            partitions = {tp.partition for tp in revoked if tp.topic == source_topic}
            for partition in await txns.revoke(partitions, commit):
                forget_uncommitted(partition)
            for partition in partitions:
                positions.pop(partition, None)
                if isinstance(store, RocksTableStore) and partition in committed_here:
                    # how far this disk held the changelog when the partition left
                    persisted_here[partition] = store.local.persisted_offset(partition)

    settling: list[Any] = []
    # exactly-once: the offset this worker's last transaction committed, per partition
    committed_here: dict[int, int] = {}
    # exactly-once: the changelog offset this disk held when a partition was revoked
    persisted_here: dict[int, int | None] = {}

    async def start_transactions(assigned: set[Any]) -> None:
        """Before Faust reads the committed offsets: start (and so fence) the producers
        of the partitions assigned, close those of the ones that are not."""
        assert txns is not None
        if not settling:  # app tasks start after the first recovery: this one ends it
            settling.append(app.add_future(faust_internals.end_recovery_past_markers(app)))
        partitions = {tp.partition for tp in assigned if tp.topic == source_topic}
        async with turn:
            for partition in set(txns.current) - partitions:
                await txns.give_up(partition)
            await txns.assign(partitions)

    app.transport.Consumer = faust_internals.BatchConsumer.handling(
        {source_topic: process}, before_commit=writes_after.drained,
        commit_metadata=marks.metadata, acknowledges=txns is None,
        before_assigned=None if txns is None else start_transactions)
    app.topics.add(source)  # subscribed without an agent: the batch path reads it

    @table.on_recover
    async def rebuild_due_index() -> None:
        from faust.types import TP

        topic = source.get_topic_name()
        assigned = {tp.partition for tp in app.assignor.assigned_actives()
                    if tp.topic == topic}
        for partition in active - assigned:
            processor.forget(partition)
        committed = await app.consumer.committed(
            [TP(topic, partition) for partition in sorted(assigned)])
        loaded = 0
        if isinstance(store, RocksTableStore):
            for partition in store.loaded() - assigned:
                store.forget(partition)
            if txns is not None:
                # a partition held in memory that another worker committed since (this
                # one was frozen past its session: it missed the rebalances between) is
                # read again from this disk, which the recovery just brought up to date.
                # Another worker's records in the changelog say so too: the offset
                # fetched may still be the old one for a moment after a transaction
                # that moved it committed (an OffsetFetch without KIP-447's
                # require_stable, which aiokafka does not send); read from the disk,
                # the events of that transaction are then duplicates, not outputs again
                for partition in store.loaded() & assigned:
                    offset = committed.get(TP(topic, partition), (None, ""))[0]
                    if (offset != committed_here.get(partition)
                            or store.local.persisted_offset(partition)
                            != persisted_here.get(partition)):
                        store.forget(partition)
            for partition in sorted(assigned):
                loaded += store.load(partition)
        # processing resumes from the committed offsets, and time from their marks
        marks.clear()
        for partition in sorted(assigned):
            found = committed.get(TP(topic, partition))
            metadata = None if found is None else found[1]
            start = UNCOMMITTED if metadata is None else PartitionMark.decode(metadata)
            if start is None:
                log.warning("partition %d: its committed offset carries no mark (an "
                            "older version committed it): its clock is taken from its "
                            "customers' states", partition)
            processor.recover(partition, store.items(partition), start)
            key = checkpoint_key(partition)
            snapshot = (models_table.data.get(key) if models_local is None
                        else models_local.get(partition, key.encode()))
            models = processor.models(partition)
            if snapshot is not None and models is not None:
                models.restore(snapshot)
                log.info("models of partition %d restored from their checkpoint (%s)",
                         partition, models.version_string(MODELS))
        active.clear()
        active.update(assigned)
        heap.settle()
        log.info("due index rebuilt for partitions %s (%d customers, %d read from this "
                 "disk)", sorted(assigned), len(store), loaded)

    @app.timer(settings.tick_seconds)
    async def fire_due_transitions() -> None:
        if app.rebalancing:
            return
        wall = wall_ms()
        for partition in sorted(active):
            async with turn:
                now = processor.now(partition, wall)
                if now is None:
                    continue
                outputs = processor.tick(partition, now)
                if txns is None:
                    await emit(partition, outputs)
                    continue
                await guarded(partition, functools.partial(tick_in_transaction, partition,
                                                           outputs))
        await checkpoint_models(force=False)

    async def tick_in_transaction(partition: int, outputs: list[Output]) -> None:
        await emit(partition, outputs)
        await commit(partition)

    async def checkpoint_models(*, force: bool) -> None:
        for partition in sorted(active):
            snapshot = checkpoints.take(partition, processor.models(partition),
                                        time.monotonic(), force=force)
            if snapshot is None:
                continue
            key = checkpoint_key(partition)
            if models_local is None:
                models_table.data[key] = snapshot  # the memory store (RocksDB: send_writes)
            write: list[faust_internals.Outgoing] = [
                (models_changelog, partition, key.encode(), snapshot)]
            if txns is None:
                writes_after.after([], write)
                continue
            async with turn:
                await guarded(partition, functools.partial(checkpoint_in_transaction,
                                                           partition, write))

    async def checkpoint_in_transaction(partition: int,
                                        write: list[faust_internals.Outgoing]) -> None:
        await send_in_transaction(partition, [], write)
        await commit(partition)

    web.install(app, processor, store, definitions, metrics, lag, recent)

    @app.task
    async def quiet_client_logs() -> None:
        # aiokafka logs every request at debug level; with the level left open those
        # records cost ~10% of the worker's time before a handler drops them
        level = logging.getLevelName(settings.loglevel.upper())
        level = max(level if isinstance(level, int) else logging.WARNING, logging.INFO)
        for name in ("aiokafka", "faust", "mode", "kafka"):
            logging.getLogger(name).setLevel(level)

    @app.on_before_shutdown.connect
    async def report(_app: Any, **_: Any) -> None:
        if not app.rebalancing:
            await checkpoint_models(force=True)
            await flush_everything()
        if txns is not None:
            async with turn:
                for partition in sorted(txns.current):
                    if not app.rebalancing:
                        await guarded(partition, functools.partial(commit, partition))
                txns.closing = True
                await txns.close()
        if refits is not None:
            refits.shutdown(wait=False, cancel_futures=True)
        heap.uninstall()
        log.info("heap: %d full collections (last %.0f ms), %d freezes, %d objects of "
                 "cyclic garbage were held by a freeze", heap.full_collections,
                 heap.last_full_ms, heap.freezes, heap.leaked())
        for partition, stats in sorted(processor.stats.items()):
            log.warning("partition %d: %s", partition, stats.as_dict())

    return app


def transactional_producer(app: faust.App, settings: Settings,
                           transactional_id: str) -> Any:
    """A partition's transactional producer, connected as Faust's own producer is."""
    from aiokafka import AIOKafkaProducer
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap, client_id=f"{transactional_id}-producer",
        acks=-1, linger_ms=settings.linger_ms, max_request_size=DEAD_LETTER_MAX_BYTES,
        transactional_id=transactional_id,
        # a transaction begun right after a commit is often told CONCURRENT_TRANSACTIONS
        # while the broker writes the last one's markers: retry soon, not after 100 ms
        retry_backoff_ms=TRANSACTION_RETRY_MS,
        **credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context))
