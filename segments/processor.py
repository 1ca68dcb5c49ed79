"""The pipeline one partition runs: decode, validate, dedupe, update, evaluate, emit.

:class:`Processor` is the whole worker minus Kafka: the Faust adapter feeds it records
and produces what it returns; ``segstream replay --offline`` feeds it a file. Both run
this same code, which is why their outputs agree. Customer state lives behind
:class:`StateStore` (a Faust table in the worker, a dict offline); everything else a
partition needs (clock, due index, RFM population, models, accounting) is its
:class:`~segments.partition.Partition`.

>>> from segments.definitions import parse_definitions
>>> from segments.engine import Engine
>>> from segments.gate import Gate
>>> p = Processor(Engine(parse_definitions('[segments.buyer]\\nwhen = "purchases_total >= 1"')),
...               Gate(), MemoryStore(), live=False)
>>> raw = (b'{"event_id":"e1","customer_id":"c1","type":"purchase","ts":1000000000000,'
...        b'"properties":{"order_id":"o1","revenue":5}}')
>>> [o.value["segment"] for o in p.process(raw, Source("interactions", 0, 0), wall=10**12)]
['buyer']
>>> p.process(raw, Source("interactions", 0, 1), wall=10**12)  # same event_id: dropped
[]
>>> p.stats[0].as_dict()["duplicates"]
1
>>> p.partition(0).clock
1000000000000
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from segments.engine import Engine
from segments.events import Interaction
from segments.features import Features
from segments.gate import Gate, Rejection
from segments.partition import Partition, PartitionMark, PartitionStats
from segments.records import DEAD_LETTERS, Output, dead_letter
from segments.rfm import RfmValues
from segments.state import CustomerState, event_hash
from segments.timefmt import DAY_MS

if TYPE_CHECKING:
    from segments.models import OnLabel, PartitionModels, Submit

__all__ = ["MemoryStore", "PartitionStats", "Processor", "RefitRunning", "Source",
           "StateStore"]

log = logging.getLogger(__name__)


class RefitRunning(Exception):
    """``process(..., wait=False)`` reached the apply instant of a BG/NBD fit that is
    still running: instead of blocking on it, the record is left unapplied (not even
    counted). ``outputs`` are those of the time steps already taken before that
    instant; send them, wait for ``future``, then process the same record again. The
    two calls give exactly the records one blocking call gives."""

    def __init__(self, outputs: list[Output], future: Future[Any]) -> None:
        super().__init__("a BG/NBD refit is still running at its apply instant")
        self.outputs = outputs
        self.future = future


class StateStore(Protocol):
    """Where customer state lives; writes name their partition (changelog)."""

    def get(self, key: str) -> CustomerState | None: ...

    def put(self, partition: int, key: str, state: CustomerState) -> None: ...

    def delete(self, partition: int, key: str) -> None: ...


class MemoryStore:
    """A plain dict store, for offline replay and tests."""

    def __init__(self) -> None:
        self.data: dict[str, CustomerState] = {}

    def get(self, key: str) -> CustomerState | None:
        return self.data.get(key)

    def put(self, partition: int, key: str, state: CustomerState) -> None:
        self.data[key] = state

    def delete(self, partition: int, key: str) -> None:
        self.data.pop(key, None)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record came from: kept in dead letters so it can be found and replayed."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp: int | None = None


class Processor:
    """Runs the core over records of any number of partitions, each with its own clock."""

    def __init__(self, engine: Engine, gate: Gate, store: StateStore, *, live: bool,
                 dedupe_window_ms: int = DAY_MS, dedupe_limit: int = 1000,
                 models: bool = True, submit: Submit | None = None,
                 on_label: OnLabel | None = None) -> None:
        """``models``: run the online models (segments.models) per partition;
        ``submit`` (like ``Executor.submit``) runs BG/NBD refits off the event path
        (None: inline; the result is applied at the same instant either way);
        ``on_label(partition, model, made_at, label, p, captured)`` sees every
        resolved example (``captured``: the baselines and the vector ``x`` at capture,
        and ``resolved_at``, the partition clock when the label was learnt)."""
        self.engine = engine
        self.gate = gate
        self.store = store
        self.live = live
        self.dedupe_window_ms = dedupe_window_ms
        self.dedupe_limit = dedupe_limit
        self.models_enabled = models
        self.submit = submit
        self.on_label = on_label
        # accounting per partition number: it outlives a partition a rebalance takes
        self.stats: dict[int, PartitionStats] = {}
        self._partitions: dict[int, Partition] = {}

    # ---- partitions ------------------------------------------------------------

    @property
    def partitions(self) -> Mapping[int, Partition]:
        """The partitions this processor holds now, by number."""
        return self._partitions

    def partition(self, number: int) -> Partition:
        """Partition ``number``, created on first use."""
        partition = self._partitions.get(number)
        if partition is None:
            partition = self._partitions[number] = self._new_partition(number)
        return partition

    def _new_partition(self, number: int) -> Partition:
        stats = self.stats.setdefault(number, PartitionStats())
        models = None
        if self.models_enabled:
            # imported with the first model: it loads SciPy and River, seconds of
            # start-up that the commands without models do not pay
            from segments.models.partition import PartitionModels

            models = PartitionModels(number, self.engine.definitions.policies,
                                     submit=self.submit, on_label=self.on_label)
        return Partition(number, self.engine.definitions.policies, stats, models)

    def models_by_partition(self) -> dict[int, PartitionModels]:
        """The models of the partitions held now, by number (empty without models)."""
        return {n: p.models for n, p in sorted(self._partitions.items())
                if p.models is not None}

    def models(self, number: int) -> PartitionModels | None:
        """The partition's models (None when the processor runs without models)."""
        return self.partition(number).models

    def now(self, number: int, wall: int) -> int | None:
        """The partition's clock: event time, and in live mode the wall clock too."""
        partition = self._partitions.get(number)
        if partition is None:
            return wall if self.live else None
        return partition.now(wall, self.live)

    def features(self, state: CustomerState, number: int | None, wall: int) -> Features:
        """The customer's features as the partition sees them now (what
        ``segstream profile`` shows): its clock, its RFM cut points, the scores the
        customer was last evaluated with."""
        partition = self._partitions.get(number) if number is not None else None
        now = (self.now(number, wall) if number is not None else None) or 0
        now = max(now, state.last_seen or 0)
        rfm = partition.rfm_cuts if partition is not None else None
        return self.engine.features(state, now, rfm)

    def recover(self, number: int, states: Iterable[tuple[str, CustomerState]],
                start: PartitionMark | None = None) -> None:
        """Rebuild the due index and the RFM population of a partition from its table
        after a restart or a takeover. ``start`` is where the partition's time stood at
        the committed offset (:class:`~segments.partition.PartitionMark`;
        :data:`~segments.partition.UNCOMMITTED` when nothing was committed): the
        records from there on are processed again, and time resumes exactly as it
        went the first time. Without it (a commit of an older version) the clock is
        the latest event time of the restored states and the RFM cut points are
        recomputed at its last refresh instant, both possibly ahead of the records
        processed again.

        The changelog runs ahead of the commit, so a restored state may already hold
        records that are delivered again; its ``applied_offset`` tells them (its
        ``seen`` event ids cover only a day of event time, which a fast replay passes
        in a second). Up to the latest offset a restored state applied, a record at
        or before its customer's ``applied_offset`` (and no later in event time than
        the state's ``last_seen``) is a duplicate.

        The models' derived state (BG/NBD summaries, cluster counts) is rebuilt;
        their learned state is kept (a checkpoint restores it:
        ``partition.models.restore``)."""
        old = self.partition(number)
        partition = self._partitions[number] = Partition(
            number, self.engine.definitions.policies, old.stats, old.models)
        version = self.engine.definitions.version
        members = partition.stats.members
        members.clear()
        models = partition.models
        if models is not None:
            models.reset_derived()
        population = partition.population
        latest = old.clock or 0
        applied = -1
        dues: list[tuple[str, int | None]] = []
        for key, state in states:
            if state.applied_offset is not None and state.applied_offset > applied:
                applied = state.applied_offset
            population.update(key, _rfm_values(state))
            if models is not None:
                models.observe_recovered(key, state)
            members.update(state.segments)
            if state.last_seen is not None:
                latest = max(latest, state.last_seen)
            if state.definitions not in (None, version):
                state.due = min(state.due or 0, state.last_seen or 0)
            dues.append((key, state.due))
        partition.due.rebuild(dues)
        partition.redelivery_until = applied if applied >= 0 else None
        if start is not None:
            partition.clock = start.clock
            population.cuts, population.refreshed_at = start.cuts, start.refreshed_at
        elif latest:
            partition.clock = latest
            instant = population.refresh_due(latest + 1)
            if instant is not None:
                population.refresh(instant)

    def forget(self, number: int) -> None:
        """Drop what this processor holds for a partition taken away by a rebalance
        (its accounting stays)."""
        self._partitions.pop(number, None)

    # ---- records and time ------------------------------------------------------

    def process(self, raw: bytes, source: Source, wall: int, *,
                wait: bool = True) -> list[Output]:
        """One consumed record in, the records it causes out (dead letter included).

        A record whose time reaches the apply instant of a BG/NBD refit still running
        in the pool waits for the fit; with ``wait=False`` it raises
        :class:`RefitRunning` instead (the worker awaits the fit with its event loop
        free)."""
        partition = self.partition(source.partition)
        try:
            outputs = self._process(partition, raw, source, wall, wait)
        except RefitRunning as running:
            if running.outputs:
                partition.stats.count(running.outputs)
            raise
        if outputs:
            partition.stats.count(outputs)
        return outputs

    def _process(self, partition: Partition, raw: bytes, source: Source,
                 wall: int, wait: bool = True) -> list[Output]:
        stats = partition.stats
        checked = self.gate.check(raw, wall)
        if isinstance(checked, Rejection):
            stats.consumed += 1
            return [self._dead_letter(stats, checked, raw, source, wall)]
        event = checked
        clock = partition.advance(event.ts)
        now = max(clock, wall) if self.live else clock
        outputs = self._tick(partition, now, wait)
        stats.consumed += 1  # after the steps: a record RefitRunning stopped counts later
        state = self.store.get(event.customer_id)
        if state is not None and (
                self._is_duplicate(state, event)
                or (partition.redelivery_until is not None  # only just after a recovery
                    and self._is_redelivered(partition, state, event, source))):
            stats.duplicates += 1
            return outputs
        if state is None:
            state = CustomerState(event.customer_id)
        state.applied_offset = source.offset
        try:
            outputs.extend(self._apply(partition, state, event, now))
        except Exception as exc:  # a bug must not stop the partition: keep the record
            log.exception("processing failed for %s", source)
            self.store.put(partition.number, event.customer_id, state)
            failure = Rejection("processing_error", f"{type(exc).__name__}: {exc}",
                                None, event.customer_id)
            outputs.append(self._dead_letter(stats, failure, raw, source, wall))
            return outputs
        stats.applied += 1
        return outputs

    def tick(self, number: int, now: int) -> list[Output]:
        """Fire the time-based transitions of partition ``number`` that fell due before
        ``now``: customers' due instants and, in their place in time, an RFM refresh."""
        partition = self.partition(number)
        outputs = self._tick(partition, now)
        if outputs:
            partition.stats.count(outputs)
        return outputs

    def _tick(self, partition: Partition, now: int, wait: bool = True) -> list[Output]:
        """Customers' due instants and the partition's own instants (RFM refresh,
        BG/NBD refit start and apply), each in its place in time. Without ``wait``, a
        refit to apply whose fit is still running stops the steps there
        (:class:`RefitRunning`); the steps are derived from the state, so a later call
        goes on from exactly that point."""
        population = partition.population
        models = partition.models
        outputs: list[Output] = []
        while True:
            steps = []
            refresh = population.refresh_due(now)
            if refresh is not None:
                steps.append((refresh, 0))
            if models is not None:
                apply_at = models.apply_due(now)
                if apply_at is not None:
                    steps.append((apply_at, 1))
                else:
                    refit = models.refit_due(now)
                    if refit is not None:
                        steps.append((refit, 2))
            if not steps:
                break
            instant, kind = min(steps)
            if kind == 1 and not wait:
                assert models is not None
                running = models.running_fit()
                if running is not None:
                    raise RefitRunning(outputs, running)
            outputs.extend(self._fire(partition, instant))
            if kind == 0:
                outputs.extend(self._rescore(partition, instant))
            elif kind == 1:
                assert models is not None
                models.apply_refit()
            else:
                assert models is not None
                models.start_refit(instant)
        outputs.extend(self._fire(partition, now))
        return outputs

    def _fire(self, partition: Partition, now: int) -> list[Output]:
        outputs: list[Output] = []
        rfm = partition.rfm_cuts
        models = partition.models
        store = self.store

        def current(key: str) -> int | None:  # a re-scheduled or erased entry is stale
            state = store.get(key)
            return None if state is None else state.due

        for _, key in partition.due.pop_due(now, current):
            state = store.get(key)
            assert state is not None
            try:
                fired, changed = self.engine.on_time(state, now, rfm, live=self.live,
                                                     models=models)
            except Exception:  # a bug must not stop the partition, nor loop on one due
                self._time_failed(partition, key, state)
                continue
            if fired:
                partition.stats.time_transitions += len(fired)
                outputs.extend(fired)
            if fired or changed:
                # a label learned or an example opened must not be learned twice
                store.put(partition.number, key, state)
            # else only the due instant moved, in the object the store holds: no write.
            # After a restart the stored, earlier due fires again on the same state and
            # again changes nothing, so skipping the changelog record loses nothing.
            partition.due.push(key, state.due)
        return outputs

    def _time_failed(self, partition: Partition, key: str, state: CustomerState) -> None:
        """A time step that raised: logged and counted; the customer keeps what the step
        had changed, without its outputs, and waits for its next event to be scheduled
        again (a due kept would raise at every tick)."""
        log.exception("time step failed for customer %r in partition %d", key,
                      partition.number)
        partition.stats.time_errors += 1
        state.due = None
        self.store.put(partition.number, key, state)

    def _rescore(self, partition: Partition, at: int) -> list[Output]:
        population = partition.population
        changed = population.refresh(at)
        if not self.engine.reads_rfm:
            return []
        outputs: list[Output] = []
        for key in changed:
            state = self.store.get(key)
            if state is None:
                continue
            try:
                fired = self.engine.on_rescore(state, at, population.cuts, partition.models)
            except Exception:  # as in _fire
                self._time_failed(partition, key, state)
                continue
            if fired:
                partition.stats.time_transitions += len(fired)
                outputs.extend(fired)
                self.store.put(partition.number, key, state)
        return outputs

    def _apply(self, partition: Partition, state: CustomerState, event: Interaction,
               now: int) -> list[Output]:
        population = partition.population
        models = partition.models
        if event.type == "erase_request":
            outputs = self.engine.on_erase(state, event)
            if models is not None:
                models.remove_customer(event.customer_id, state)
            self.store.delete(partition.number, event.customer_id)
            population.update(event.customer_id, None)
            return outputs
        self._remember(state, event)
        due_before = state.due
        outputs = self.engine.on_event(state, event, now, population.cuts, models)
        self.store.put(partition.number, event.customer_id, state)
        if state.due != due_before:
            # an unchanged due already has its heap entry: pushing again per event grew
            # the heap by one entry per event (every customer has a label horizon)
            partition.due.push(event.customer_id, state.due)
        population.update(event.customer_id, _rfm_values(state))
        if models is not None:
            models.update_buyer(event.customer_id, state)
        return outputs

    def _is_duplicate(self, state: CustomerState, event: Interaction) -> bool:
        return event_hash(event.event_id) in state.seen

    @staticmethod
    def _is_redelivered(partition: Partition, state: CustomerState, event: Interaction,
                        source: Source) -> bool:
        """A record the restored state already applied (see :meth:`recover`)."""
        until = partition.redelivery_until
        assert until is not None
        if source.offset > until:  # past every restored state: processing as usual
            partition.redelivery_until = None
            return False
        applied, last_seen = state.applied_offset, state.last_seen
        return (applied is not None and source.offset <= applied
                and last_seen is not None and event.ts <= last_seen)

    def _remember(self, state: CustomerState, event: Interaction) -> None:
        seen = state.seen
        seen[event_hash(event.event_id)] = event.ts
        if len(seen) > 64:
            horizon = (state.last_seen or event.ts) - self.dedupe_window_ms
            for key in [k for k, ts in seen.items() if ts < horizon]:
                del seen[key]
            while len(seen) > self.dedupe_limit:
                del seen[min(seen.items(), key=lambda kv: (kv[1], kv[0]))[0]]

    def _dead_letter(self, stats: PartitionStats, rejection: Rejection, raw: bytes,
                     source: Source, wall: int) -> Output:
        stats.dead_lettered[rejection.reason] += 1
        value = dead_letter(rejection.reason, rejection.detail, rejection.path,
                            topic=source.topic, partition=source.partition,
                            offset=source.offset, key=source.key,
                            timestamp=source.timestamp, raw=raw,
                            customer_id=rejection.customer_id, processed_at=wall)
        key = None if source.key is None else source.key.decode("utf-8", "replace")
        return Output(DEAD_LETTERS, key, value)


def _rfm_values(state: CustomerState) -> RfmValues | None:
    if state.last_purchase is None or state.purchases_total == 0:
        return None
    return (state.last_purchase, state.purchases_total, state.revenue_total)
