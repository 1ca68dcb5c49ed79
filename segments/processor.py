"""The pipeline one partition runs: decode, validate, dedupe, update, evaluate, emit.

:class:`Processor` is the whole worker minus Kafka: the Faust adapter feeds it records
and produces what it returns; ``segstream replay --offline`` feeds it a file. Both run
this same code, which is why their outputs agree. State lives behind
:class:`StateStore` (a Faust table in the worker, a dict offline).

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
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from segments.engine import Engine
from segments.events import Interaction
from segments.gate import Gate, Rejection
from segments.models import OnLabel, PartitionModels, Submit
from segments.records import DEAD_LETTERS, Output, dead_letter
from segments.rfm import RfmPopulation, RfmValues
from segments.state import CustomerState, event_hash
from segments.timefmt import DAY_MS

__all__ = ["MemoryStore", "PartitionStats", "Processor", "Source", "StateStore"]

log = logging.getLogger(__name__)


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


@dataclass(slots=True)
class PartitionStats:
    """Accounting: consumed == applied + dead-lettered + duplicates, always."""

    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    time_transitions: int = 0
    # what came out: (segment, entered|exited), (moment, sent|<suppression reason>)
    segment_changes: Counter[tuple[str, str]] = field(default_factory=Counter)
    triggers: Counter[tuple[str, str]] = field(default_factory=Counter)
    members: Counter[str] = field(default_factory=Counter)  # current, per segment

    def count(self, outputs: list[Output]) -> None:
        for output in outputs:
            value = output.value
            segment = value.get("segment")
            if segment is not None:
                change = value["change"]
                self.segment_changes[(segment, change)] += 1
                self.members[segment] += 1 if change == "entered" else -1
            elif "moment" in value:
                self.triggers[(value["moment"], value.get("suppressed", "sent"))] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "consumed": self.consumed,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "dead_lettered": sum(self.dead_lettered.values()),
            "dead_lettered_by_reason": dict(sorted(self.dead_lettered.items())),
            "time_transitions": self.time_transitions,
        }


class Processor:
    """Runs the core over records of any number of partitions, each with its own clock."""

    def __init__(self, engine: Engine, gate: Gate, store: StateStore, *, live: bool,
                 dedupe_window_ms: int = DAY_MS, dedupe_limit: int = 1000,
                 models: bool = True, submit: Submit | None = None,
                 on_label: OnLabel | None = None) -> None:
        """``models``: run the online models (segments.models) per partition;
        ``submit`` (like ``Executor.submit``) runs BG/NBD refits off the event path
        (None: inline; the result is applied at the same instant either way);
        ``on_label(partition, model, made_at, label, p, baselines)`` sees every
        resolved example."""
        self.engine = engine
        self.gate = gate
        self.store = store
        self.live = live
        self.dedupe_window_ms = dedupe_window_ms
        self.dedupe_limit = dedupe_limit
        self.stats: dict[int, PartitionStats] = {}
        self.clocks: dict[int, int] = {}
        self._due: dict[int, list[tuple[int, str]]] = {}
        self.populations: dict[int, RfmPopulation] = {}
        self.models_enabled = models
        self.submit = submit
        self.on_label = on_label
        self.partition_models: dict[int, PartitionModels] = {}

    def process(self, raw: bytes, source: Source, wall: int) -> list[Output]:
        """One consumed record in, the records it causes out (dead letter included)."""
        outputs = self._process(raw, source, wall)
        if outputs:
            self.stats[source.partition].count(outputs)
        return outputs

    def _process(self, raw: bytes, source: Source, wall: int) -> list[Output]:
        partition = source.partition
        stats = self.stats.setdefault(partition, PartitionStats())
        stats.consumed += 1
        checked = self.gate.check(raw, wall)
        if isinstance(checked, Rejection):
            return [self._dead_letter(stats, checked, raw, source, wall)]
        event = checked
        clock = max(self.clocks.get(partition, event.ts), event.ts)
        self.clocks[partition] = clock
        now = max(clock, wall) if self.live else clock
        outputs = self._tick(partition, now)
        state = self.store.get(event.customer_id)
        if state is not None and self._is_duplicate(state, event):
            stats.duplicates += 1
            return outputs
        if state is None:
            state = CustomerState(event.customer_id)
        try:
            outputs.extend(self._apply(partition, state, event, now))
        except Exception as exc:  # a bug must not stop the partition: keep the record
            log.exception("processing failed for %s", source)
            self.store.put(partition, event.customer_id, state)
            failure = Rejection("processing_error", f"{type(exc).__name__}: {exc}",
                                None, event.customer_id)
            outputs.append(self._dead_letter(stats, failure, raw, source, wall))
            return outputs
        stats.applied += 1
        return outputs

    def tick(self, partition: int, now: int) -> list[Output]:
        """Fire the time-based transitions of ``partition`` that fell due before ``now``:
        customers' due instants and, in their place in time, an RFM refresh."""
        outputs = self._tick(partition, now)
        if outputs:
            self.stats.setdefault(partition, PartitionStats()).count(outputs)
        return outputs

    def _tick(self, partition: int, now: int) -> list[Output]:
        """Customers' due instants and the partition's own instants (RFM refresh,
        BG/NBD refit start and apply), each in its place in time."""
        population = self.population(partition)
        models = self.models(partition)
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

    def models(self, partition: int) -> PartitionModels | None:
        """The partition's models (None when the processor runs without models)."""
        if not self.models_enabled:
            return None
        models = self.partition_models.get(partition)
        if models is None:
            on_label = self.on_label
            models = self.partition_models[partition] = PartitionModels(
                partition, self.engine.definitions.policies, submit=self.submit,
                on_label=on_label)
        return models

    def models_snapshot(self, partition: int) -> bytes | None:
        """The partition's learned model state, for a checkpoint; None without models."""
        models = self.partition_models.get(partition) if self.models_enabled else None
        return None if models is None else models.snapshot()

    def restore_models(self, partition: int, data: bytes) -> None:
        """Load a checkpoint; before or after :meth:`recover`, either order works."""
        models = self.models(partition)
        if models is not None:
            models.restore(data)

    def models_dirty(self, partition: int) -> int:
        """Model updates (labels learned, clusterer moves, refits) since the last
        snapshot: when to checkpoint."""
        models = self.partition_models.get(partition)
        return 0 if models is None else models.dirty

    def refit_in_flight(self, partition: int) -> bool:
        """A BG/NBD refit of the partition is still running (a snapshot would wait)."""
        models = self.partition_models.get(partition)
        return models is not None and models.refit_running()

    def models_version(self, partition: int) -> str:
        """Every model's version on the partition, e.g. for a log line."""
        models = self.partition_models.get(partition)
        return "no models" if models is None else models.version_string(
            ("propensity", "churn", "cluster", "btyd"))

    def population(self, partition: int) -> RfmPopulation:
        population = self.populations.get(partition)
        if population is None:
            policies = self.engine.definitions.policies
            population = self.populations[partition] = RfmPopulation(
                refresh_ms=policies.rfm_refresh_ms, min_buyers=policies.rfm_min_buyers)
        return population

    def _fire(self, partition: int, now: int) -> list[Output]:
        heap = self._due.get(partition)
        outputs: list[Output] = []
        rfm = self.population(partition).cuts
        models = self.models(partition)
        while heap and heap[0][0] < now:
            due, key = heapq.heappop(heap)
            state = self.store.get(key)
            if state is None or state.due != due:
                continue  # superseded: the customer was re-scheduled or erased
            if models is not None:
                models.touched = False
            fired = self.engine.on_time(state, now, rfm, live=self.live, models=models)
            if fired:
                self.stats.setdefault(partition, PartitionStats()).time_transitions += len(fired)
                outputs.extend(fired)
            if fired or (models is not None and models.touched):
                # a label learned or an example opened must not be learned twice
                self.store.put(partition, key, state)
            # else only the due instant moved, in the object the store holds: no write.
            # After a restart the stored, earlier due fires again on the same state and
            # again changes nothing, so skipping the changelog record loses nothing.
            self._schedule(partition, key, state)
        return outputs

    def _rescore(self, partition: int, at: int) -> list[Output]:
        population = self.population(partition)
        changed = population.refresh(at)
        if not self.engine.reads_rfm:
            return []
        outputs: list[Output] = []
        for key in changed:
            state = self.store.get(key)
            if state is None:
                continue
            fired = self.engine.on_rescore(state, at, population.cuts,
                                           self.models(partition))
            if fired:
                self.stats.setdefault(partition, PartitionStats()).time_transitions += len(fired)
                outputs.extend(fired)
                self.store.put(partition, key, state)
        return outputs

    def now(self, partition: int, wall: int) -> int | None:
        """The partition's clock: event time, and in live mode the wall clock too."""
        clock = self.clocks.get(partition)
        if self.live:
            return wall if clock is None else max(clock, wall)
        return clock

    def recover(self, partition: int, states: Iterable[tuple[str, CustomerState]]) -> None:
        """Rebuild the due index and the RFM population of a partition from its table
        after a restart. The RFM cut points are recomputed at once, at the last refresh
        instant of the recovered clock; they may differ slightly from the ones before
        the restart, which were taken from the population as it was then. The models'
        derived state (BG/NBD summaries, cluster counts) is rebuilt; their learned
        state is kept (see :meth:`restore_models`)."""
        heap: list[tuple[int, str]] = []
        version = self.engine.definitions.version
        clock = self.clocks.get(partition, 0)
        self.populations.pop(partition, None)
        population = self.population(partition)
        members = self.stats.setdefault(partition, PartitionStats()).members
        members.clear()
        models = self.models(partition)
        if models is not None:
            models.reset_derived()
        for key, state in states:
            population.update(key, _rfm_values(state))
            if models is not None:
                models.observe_recovered(key, state)
            members.update(state.segments)
            if state.last_seen is not None:
                clock = max(clock, state.last_seen)
            if state.definitions not in (None, version):
                state.due = min(state.due or 0, state.last_seen or 0)
            if state.due is not None:
                heap.append((state.due, key))
        heapq.heapify(heap)
        self._due[partition] = heap
        if clock:
            self.clocks[partition] = clock
            instant = population.refresh_due(clock + 1)
            if instant is not None:
                population.refresh(instant)

    def forget(self, partition: int) -> None:
        """Drop what this processor holds for a partition taken away by a rebalance."""
        self._due.pop(partition, None)
        self.clocks.pop(partition, None)
        self.populations.pop(partition, None)
        self.partition_models.pop(partition, None)

    def _apply(self, partition: int, state: CustomerState, event: Interaction,
               now: int) -> list[Output]:
        population = self.population(partition)
        models = self.models(partition)
        if event.type == "erase_request":
            outputs = self.engine.on_erase(state, event)
            if models is not None:
                models.remove_customer(event.customer_id, state)
            self.store.delete(partition, event.customer_id)
            population.update(event.customer_id, None)
            return outputs
        self._remember(state, event)
        due_before = state.due
        outputs = self.engine.on_event(state, event, now, population.cuts, models)
        self.store.put(partition, event.customer_id, state)
        if state.due != due_before:
            # an unchanged due already has its heap entry: pushing again per event grew
            # the heap by one entry per event (every customer has a label horizon)
            self._schedule(partition, event.customer_id, state)
        population.update(event.customer_id, _rfm_values(state))
        if models is not None:
            models.update_buyer(event.customer_id, state)
        return outputs

    def _schedule(self, partition: int, key: str, state: CustomerState) -> None:
        if state.due is not None:
            heapq.heappush(self._due.setdefault(partition, []), (state.due, key))

    def _is_duplicate(self, state: CustomerState, event: Interaction) -> bool:
        return event_hash(event.event_id) in state.seen

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
