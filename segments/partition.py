"""One partition's working set: its clock, due index, RFM population, models, accounting.

Partitions are independent (a customer's events all arrive on one), so everything a
partition's processing reads and writes besides customer state lives in one
:class:`Partition`. The :class:`~segments.processor.Processor` creates one on the
partition's first record or at recovery and drops it when a rebalance takes the
partition away; the HTTP views, metrics and checkpoints read it through
:meth:`Processor.partition <segments.processor.Processor.partition>`.

>>> from segments.definitions import PolicySettings
>>> p = Partition(0, PolicySettings(), PartitionStats())
>>> p.advance(1_000), p.advance(500), p.clock  # the clock never goes back
(1000, 1000, 1000)
>>> p.now(wall=2_000, live=True), p.now(wall=2_000, live=False)
(2000, 1000)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from segments.definitions import PolicySettings
from segments.due import DueIndex
from segments.records import Output
from segments.rfm import RfmCuts, RfmPopulation

if TYPE_CHECKING:
    from segments.models import PartitionModels

__all__ = ["UNCOMMITTED", "Partition", "PartitionMark", "PartitionStats"]


@dataclass(slots=True)
class PartitionStats:
    """Accounting: consumed == applied + dead-lettered + duplicates, always."""

    consumed: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: Counter[str] = field(default_factory=Counter)
    time_transitions: int = 0
    time_errors: int = 0  # customers whose time step raised (a bug; logged)
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
            "time_errors": self.time_errors,
        }


@dataclass(frozen=True, slots=True)
class PartitionMark:
    """Where a partition's time stood after a record: its clock and RFM cut points.

    The worker commits it with the offset that follows the record (Kafka's offset
    metadata, as Kafka Streams keeps its partition time), so a worker that takes the
    partition over resumes time exactly there. Deriving the clock from the restored
    states instead runs ahead: states reach the changelog before the commit that
    covers them, and the customers whose events are processed again would see their
    due transitions fire before those events, not after them as the first time.

    >>> mark = PartitionMark(1_000, RfmCuts((1, 2, 3, 4), (1, 1, 2, 3), (5.0, 9.5, 20.0,
    ...                      80.25), 864, 60), 864)
    >>> PartitionMark.decode(mark.encode()) == mark
    True
    >>> PartitionMark.decode(""), PartitionMark.decode("another tool's note")
    (None, None)
    """

    clock: int | None
    cuts: RfmCuts | None
    refreshed_at: int | None

    VERSION = 1

    def encode(self) -> str:
        cuts = self.cuts
        return orjson.dumps({
            "v": self.VERSION, "clock": self.clock, "refreshed_at": self.refreshed_at,
            "rfm": None if cuts is None else [cuts.recency, cuts.frequency,
                                              cuts.monetary, cuts.at, cuts.buyers],
        }).decode()

    @classmethod
    def decode(cls, text: str) -> PartitionMark | None:
        """The mark, or None for metadata that is not one (empty, older, foreign)."""
        try:
            value = orjson.loads(text)
            if not isinstance(value, dict) or value.get("v") != cls.VERSION:
                return None
            rfm = value["rfm"]
            cuts = None if rfm is None else RfmCuts(
                tuple(rfm[0]), tuple(rfm[1]), tuple(float(m) for m in rfm[2]),
                int(rfm[3]), int(rfm[4]))
            clock, refreshed = value["clock"], value["refreshed_at"]
            return cls(None if clock is None else int(clock), cuts,
                       None if refreshed is None else int(refreshed))
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
            return None


#: the mark of a partition nothing was committed for: processing starts from its
#: first record, so time starts there too
UNCOMMITTED = PartitionMark(None, None, None)


class Partition:
    """The clock, due index, RFM population and models of one partition.

    ``stats`` is handed in, not made here: the worker's accounting outlives a
    partition that a rebalance takes away and brings back."""

    __slots__ = ("clock", "due", "models", "number", "population", "redelivery_until",
                 "stats")

    def __init__(self, number: int, policies: PolicySettings, stats: PartitionStats,
                 models: PartitionModels | None = None) -> None:
        self.number = number
        self.clock: int | None = None  # the latest event time seen
        self.due = DueIndex()
        self.population = RfmPopulation(refresh_ms=policies.rfm_refresh_ms,
                                         min_buyers=policies.rfm_min_buyers)
        self.models = models
        self.stats = stats
        # after a recovery: the latest offset a restored state had applied; records up
        # to it may be delivered again (see Processor.recover)
        self.redelivery_until: int | None = None

    def advance(self, ts: int) -> int:
        """Move the clock to event time ``ts`` if that is later; the clock."""
        clock = self.clock
        if clock is None or ts > clock:
            self.clock = clock = ts
        return clock

    def now(self, wall: int, live: bool) -> int | None:
        """The partition's instant: event time, and in live mode the wall clock too."""
        if live:
            return wall if self.clock is None else max(self.clock, wall)
        return self.clock

    def mark(self) -> PartitionMark:
        """Where this partition's time stands now (see :class:`PartitionMark`)."""
        population = self.population
        return PartitionMark(self.clock, population.cuts, population.refreshed_at)

    @property
    def rfm_cuts(self) -> RfmCuts | None:
        return self.population.cuts
