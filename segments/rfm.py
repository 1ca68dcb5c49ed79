"""RFM scores from the current population: quintile cut points over a partition's buyers.

A score means "where this customer stands among the others", so the cut points come
from the population, not from constants: :class:`RfmPopulation` keeps every buyer of a
partition ranked by recency (the instant of the last purchase), frequency (orders ever)
and money (net revenue ever), updated on each of their events, and turns the ranks into
:class:`RfmCuts` at fixed instants of the partition clock (every ``refresh_ms``, UTC
day boundaries by default). Between two refreshes the cuts stand still, which keeps
scores stable and replays deterministic; at a refresh, only the buyers whose value lies
between an old and a new cut point can change score, and those are the ones returned
for re-evaluation.

Ranks are exact (a sorted list per dimension, about 200 bytes per buyer in memory,
rebuilt from the state table after a restart), not a sketch: a partition holds far
fewer buyers than a sketch would save memory on.

>>> pop = RfmPopulation(refresh_ms=1000, min_buyers=5)
>>> for n in range(1, 11):
...     pop.update(f"c{n}", (n * 100, n, n * 10.0))
>>> pop.cuts is None, pop.refresh_due(now=1500)
(True, 1000)
>>> changed = pop.refresh(at=1000)
>>> len(changed), pop.cuts.frequency
(10, (2, 4, 6, 8))
>>> pop.cuts.score_f(1), pop.cuts.score_f(3), pop.cuts.score_f(10)
(1, 2, 5)
"""

from __future__ import annotations

from dataclasses import dataclass

from sortedcontainers import SortedList

from segments.timefmt import DAY_MS

__all__ = ["RfmCuts", "RfmPopulation", "RfmValues", "rfm_segment"]

RfmValues = tuple[int, int, float]
"""A buyer's (last purchase instant in ms, orders ever, net revenue ever)."""

_LAST_KEY = "\U0010ffff"  # sorts after any customer id of the same value


@dataclass(frozen=True, slots=True)
class RfmCuts:
    """Four ascending cut points per dimension; a value above k of them scores k + 1."""

    recency: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[float, ...]
    at: int
    buyers: int

    def score_r(self, last_purchase: int) -> int:
        return 1 + sum(last_purchase > cut for cut in self.recency)

    def score_f(self, orders: int) -> int:
        return 1 + sum(orders > cut for cut in self.frequency)

    def score_m(self, revenue: float) -> int:
        return 1 + sum(revenue > cut for cut in self.monetary)


class RfmPopulation:
    """The buyers of one partition, ranked three ways; cut points on a fixed period."""

    def __init__(self, *, refresh_ms: int = DAY_MS, min_buyers: int = 50) -> None:
        if refresh_ms <= 0:
            raise ValueError("refresh_ms must be positive")
        self.refresh_ms = refresh_ms
        self.min_buyers = max(5, min_buyers)
        self.cuts: RfmCuts | None = None
        self.refreshed_at: int | None = None
        self._values: dict[str, RfmValues] = {}
        self._ranked: tuple[SortedList, SortedList, SortedList] = (
            SortedList(), SortedList(), SortedList())

    def __len__(self) -> int:
        return len(self._values)

    def update(self, key: str, values: RfmValues | None) -> None:
        """Record a buyer's current values; ``None`` removes them (no purchase, erased)."""
        old = self._values.get(key)
        if old == values:
            return
        if old is not None:
            for ranked, value in zip(self._ranked, old, strict=True):
                ranked.remove((value, key))
            del self._values[key]
        if values is not None:
            for ranked, value in zip(self._ranked, values, strict=True):
                ranked.add((value, key))
            self._values[key] = values

    def refresh_due(self, now: int) -> int | None:
        """The latest refresh instant before ``now`` not yet taken, if any."""
        instant = (now - 1) // self.refresh_ms * self.refresh_ms
        if self.refreshed_at is not None and instant <= self.refreshed_at:
            return None
        return instant

    def refresh(self, at: int) -> list[str]:
        """Recompute the cut points at instant ``at``; return the buyers whose score may
        have changed, sorted."""
        old, new = self.cuts, self._compute(at)
        self.cuts, self.refreshed_at = new, at
        if old is None and new is None:
            return []
        if old is None or new is None:
            return sorted(self._values)
        changed: set[str] = set()
        for ranked, before, after in zip(self._ranked, (old.recency, old.frequency,
                                                        old.monetary),
                                         (new.recency, new.frequency, new.monetary),
                                         strict=True):
            for a, b in zip(before, after, strict=True):
                if a != b:
                    lo, hi = min(a, b), max(a, b)
                    start = ranked.bisect_left((lo,))
                    stop = ranked.bisect_right((hi, _LAST_KEY))
                    changed.update(key for _, key in ranked.islice(start, stop))
        return sorted(changed)

    def _compute(self, at: int) -> RfmCuts | None:
        n = len(self._values)
        if n < self.min_buyers:
            return None
        # nearest rank: the k-th quintile cut is the value at rank ceil(k * n / 5)
        ranks = [-(-k * n // 5) - 1 for k in (1, 2, 3, 4)]
        recency, frequency, monetary = (tuple(ranked[i][0] for i in ranks)
                                        for ranked in self._ranked)
        return RfmCuts(recency, frequency, monetary, at, n)


def rfm_segment(r: int, f: int) -> str:
    """The named RFM segment of a recency score and a frequency score.

    The usual 5 x 5 recency-frequency grid (as in the RFM literature and most CRM
    tools): recent and frequent buyers are champions, frequent buyers who stopped
    are at risk or can't-be-lost, and so on; the README draws the grid.

    >>> rfm_segment(5, 5), rfm_segment(1, 1), rfm_segment(2, 5), rfm_segment(3, 3)
    ('champions', 'lost', 'cant_lose', 'need_attention')
    """
    if r >= 4 and f >= 4:
        return "champions" if r == 5 else "loyal"
    if r <= 2:
        if f == 5:
            return "cant_lose"
        if f >= 3:
            return "at_risk"
        return "lost" if r == 1 and f == 1 else "hibernating"
    if r == 3:
        if f >= 4:
            return "loyal"
        return "need_attention" if f == 3 else "about_to_sleep"
    # r in (4, 5), f in (1, 2, 3)
    if f == 1:
        return "new" if r == 5 else "promising"
    return "potential_loyalist"
