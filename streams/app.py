"""The Faust application: topics, the customer table, one agent, one timer, web views.

Each ``interactions`` partition gets its own actor (``isolated_partitions``), so offsets
are committed in order; the core :class:`~segments.processor.Processor` does the work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

import faust
import orjson
from faust.transport.drivers import aiokafka as faust_aiokafka

from segments.definitions import Definitions
from segments.engine import Engine
from segments.gate import Gate, GateConfig
from segments.models import MODELS
from segments.processor import Processor, Source
from segments.records import INTERACTIONS, OUTPUT_TOPICS, Output
from streams import codecs, web
from streams.checkpoints import ModelCheckpoints, checkpoint_key
from streams.client.topics import DEAD_LETTER_MAX_BYTES
from streams.heap import HeapSettler
from streams.metrics import Metrics
from streams.settings import Settings
from streams.tables import TableStore

__all__ = ["create_app"]

log = logging.getLogger(__name__)


# Faust asks the broker to hold a fetch up to 1.5 s. When every interactions partition
# still has buffered records, the next fetch names only idle partitions (the assignor's
# leader topic) and the broker holds it that long, during which no fresh fetch can go
# out: a 1.5 s stall that the backlog then keeps repeating. A short hold bounds that.
FETCH_MAX_WAIT_MS = 50
# a full garbage collection slower than this freezes what survived it (streams/heap.py)
FULL_GC_SLOW_MS = 20.0


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    _fetching: tuple[frozenset[Any], frozenset[Any]] | None = None

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read when the fetcher starts
        return consumer

    async def _fetch_records(self, consumer: Any, active_partitions: set[Any],
                             timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        self._fetch_only(consumer, active_partitions)
        return await super()._fetch_records(consumer, active_partitions, timeout=timeout,
                                            max_records=max_records)

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


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def create_app(settings: Settings, definitions: Definitions, partitions: int) -> faust.App:
    codecs.register()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=str(settings.data_dir),
        web_enabled=True,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        topic_partitions=partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=settings.linger_ms / 1000,
        producer_max_request_size=DEAD_LETTER_MAX_BYTES,
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # a worker that died hands its partitions over after this, not Faust's 60 s
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
    )
    app.transport.Consumer = _Consumer
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
    table.changelog_topic = table._new_changelog_topic()
    store = TableStore(table)
    # Model checkpoints: one versioned snapshot per partition, key "p<partition>", on a
    # compacted changelog partition aligned with the interactions partition.
    models_table = app.Table("models", default=None, partitions=partitions)
    models_table.key_serializer = "utf8"
    models_table.value_serializer = "raw"
    models_table.changelog_topic = models_table._new_changelog_topic()
    gate = Gate(GateConfig(max_bytes=settings.max_event_bytes,
                           max_future_ms=settings.max_future_ms))
    # BG/NBD refits run in a separate process: no event waits for one (docs/models.md)
    refits = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
    processor = Processor(Engine(definitions), gate, store, live=settings.clock == "live",
                          dedupe_window_ms=settings.dedupe_window_ms, submit=refits.submit)
    checkpoints = ModelCheckpoints(every_updates=settings.checkpoint_updates,
                                   every_seconds=settings.checkpoint_seconds)
    models_changelog = models_table.changelog_topic.get_topic_name()
    # full collections walked the whole state; see streams/heap.py
    heap = HeapSettler(slow_ms=FULL_GC_SLOW_MS,
                       schedule=lambda freeze: app.loop.call_soon_threadsafe(freeze))
    heap.install()
    active: set[int] = set()
    positions: dict[int, int] = {}  # partition -> next offset to process

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

    async def emit(records: list[Output]) -> None:
        """Produce the changelog writes, then the outputs, straight to the producer.

        Faust's ``send_soon`` goes through a buffer task and several wrappers per
        record, a fifth of the worker's time; the producer's own batching is enough.
        A commit flushes the producer first, so no offset passes an unsent record."""
        send = app.producer.send
        for partition, key, value in store.drain():
            (await send(changelog_name, key, value, partition, None, None)
             ).add_done_callback(delivered)
        for record in records:
            key = None if record.key is None else record.key.encode()
            (await send(output_names[record.topic], key, orjson.dumps(record.value), None,
                        None, None)).add_done_callback(delivered)

    @app.agent(source, isolated_partitions=True, name=f"{settings.app_id}.process")
    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            raw = event.value if isinstance(event.value, bytes) else b""
            origin = Source(message.topic, message.partition, message.offset, message.key,
                            int(message.timestamp * 1000) if message.timestamp else None)
            started = clock()
            emitted = processor.process(raw, origin, wall_ms())
            observe(clock() - started)
            await emit(emitted)
            positions[message.partition] = message.offset + 1

    @table.on_recover
    async def rebuild_due_index() -> None:
        assigned = {tp.partition for tp in app.assignor.assigned_actives()
                    if tp.topic == source.get_topic_name()}
        for partition in active - assigned:
            processor.forget(partition)
        for partition in sorted(assigned):
            processor.recover(partition, store.items(partition))
            snapshot = models_table.data.get(checkpoint_key(partition))
            models = processor.models(partition)
            if snapshot is not None and models is not None:
                models.restore(snapshot)
                log.info("models of partition %d restored from their checkpoint (%s)",
                         partition, models.version_string(MODELS))
        active.clear()
        active.update(assigned)
        heap.settle()
        log.info("due index rebuilt for partitions %s (%d customers)", sorted(assigned),
                 len(store))

    @app.timer(settings.tick_seconds)
    async def fire_due_transitions() -> None:
        if app.rebalancing:
            return
        wall = wall_ms()
        for partition in sorted(active):
            now = processor.now(partition, wall)
            if now is not None:
                await emit(processor.tick(partition, now))
        await checkpoint_models(force=False)

    async def checkpoint_models(*, force: bool) -> None:
        for partition in sorted(active):
            snapshot = checkpoints.take(partition, processor.models(partition),
                                        time.monotonic(), force=force)
            if snapshot is None:
                continue
            key = checkpoint_key(partition)
            models_table.data[key] = snapshot
            (await app.producer.send(models_changelog, key.encode(), snapshot, partition,
                                     None, None)).add_done_callback(delivered)

    web.install(app, processor, store, definitions, metrics)

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
            await app.producer.flush()
        refits.shutdown(wait=False, cancel_futures=True)
        heap.uninstall()
        log.info("heap: %d full collections (last %.0f ms), %d freezes, %d objects of "
                 "cyclic garbage were held by a freeze", heap.full_collections,
                 heap.last_full_ms, heap.freezes, heap.leaked())
        for partition, stats in sorted(processor.stats.items()):
            log.warning("partition %d: %s", partition, stats.as_dict())

    return app
