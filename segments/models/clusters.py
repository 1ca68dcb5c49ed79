"""Discovered microsegments: a fixed clustering space, archetypes that name the
clusters, k-means refitted on a sample, where the data decides how many clusters
there are.

>>> [round(v, 6) for v in unscale(scale(ARCHETYPES[2].values))] == list(ARCHETYPES[2].values)
True
>>> Clusterer([[0.0, 0.0], [1.0, 1.0]]).assign([0.9, 0.8])
1
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from segments.models.vector import Base
from segments.state import event_hash
from segments.timefmt import DAY_MS

__all__ = ["ARCHETYPES", "CLUSTER_SPACE", "HYSTERESIS", "Archetype",
           "ClusterFeature", "ClusterFit", "Clusterer", "aged", "choose_k", "cluster_values",
           "nearest_archetype", "scale", "unscale"]


class ClusterFeature(NamedTuple):
    name: str
    meaning: str
    cap: float | None  # scaled = log1p(min(v, cap)) / log1p(cap); None: a share in [0, 1]
    window: float | None = None  # days: 0, grows with time (days since ...); N, a count
    #                              over N days, expected to fall linearly to 0 in N days


CLUSTER_SPACE: tuple[ClusterFeature, ...] = (
    ClusterFeature("days_since_last_purchase", "days since the latest purchase; 365 "
                   "when none", 365.0, 0.0),
    ClusterFeature("purchases_total", "orders ever", 50.0),
    ClusterFeature("avg_order_value", "revenue per order; 0 when none", 1000.0),
    ClusterFeature("days_since_last_seen", "days since any event", 365.0, 0.0),
    ClusterFeature("sessions_30d", "sessions in 30 days", 60.0, 30.0),
    ClusterFeature("product_views_7d", "product views in 7 days", 100.0, 7.0),
    ClusterFeature("cart_adds_7d", "cart adds in 7 days", 20.0, 7.0),
    ClusterFeature("email_engagement_30d", "email_opens_30d + email_clicks_30d", 30.0, 30.0),
    ClusterFeature("discount_share_365d", "discount_orders_365d / purchases_365d; 0 when "
                   "none", None),
)
"""The space the clusterer works in: a FIXED scaling of plain values (not an online
scaler), so a centre means the same on every partition and after any restart."""


# per dimension: (a share, its cap, log1p(cap)); a share is clipped to [0, 1]
_SCALE = tuple((True, 1.0, 1.0) if spec.cap is None else (False, spec.cap, math.log1p(spec.cap))
               for spec in CLUSTER_SPACE)


def scale(plain: Iterable[float]) -> list[float]:
    """Plain values (in :data:`CLUSTER_SPACE` order) to the clustering space, each in [0, 1]."""
    # min(max(value, 0.0), cap) spelled out (each evaluation of a customer scales a
    # vector): max and min return their first argument unless the second is greater
    # (smaller), and so do these comparisons, so the values are the same, NaN included
    log1p = math.log1p
    out: list[float] = []
    append = out.append
    for value, (share, cap, top) in zip(plain, _SCALE, strict=True):
        v = 0.0 if value < 0.0 else value
        v = cap if cap < v else v
        append(v if share else log1p(v) / top)
    return out


def unscale(scaled: Iterable[float]) -> list[float]:
    """The inverse of :func:`scale` (within the caps)."""
    out = []
    for value, spec in zip(scaled, CLUSTER_SPACE, strict=True):
        out.append(value if spec.cap is None else math.expm1(value * math.log1p(spec.cap)))
    return out


def aged(plain: list[float], days: float) -> list[float]:
    """Plain values as they would read ``days`` later with no event in between: the
    days-since values grow, a window's count falls linearly to 0 over the window.

    >>> aged([10.0, 2.0, 50.0, 1.0, 30.0, 7.0, 7.0, 3.0, 0.5], 7.0)
    [17.0, 2.0, 50.0, 8.0, 23.0, 0.0, 0.0, 2.3, 0.5]
    """
    out = []
    for value, spec in zip(plain, CLUSTER_SPACE, strict=True):
        window = spec.window
        if window is None or days <= 0:
            out.append(value)
        elif window == 0:
            out.append(value + days)
        else:
            out.append(round(value * max(0.0, 1.0 - days / window), 12))
    return out


def nearest_archetype(centre: list[float]) -> int:
    """The index of the archetype nearest to a scaled ``centre`` (ties: the lowest).

    >>> ARCHETYPES[nearest_archetype(scale([300.0, 3, 60, 140, 0, 0, 0, 0, 0]))].name
    'lapsed_buyer'
    """
    return min(range(len(ARCHETYPES)), key=lambda i: math.dist(centre, _ANCHORS[i]))


def cluster_values(b: Base) -> list[float]:
    """The customer's plain values in :data:`CLUSTER_SPACE` order."""
    recency = b.days_since_last_purchase
    aov = b.avg_order_value
    return [
        365.0 if recency is None else recency,
        float(b.purchases_total),
        0.0 if aov is None else aov,
        b.days_since_last_seen or 0.0,
        float(b.sessions_30d),
        float(b.product_views_7d),
        float(b.cart_adds_7d),
        float(b.email_opens_30d + b.email_clicks_30d),
        b.discount_orders_365d / b.purchases_365d if b.purchases_365d else 0.0,
    ]


class Archetype(NamedTuple):
    name: str
    description: str
    values: tuple[float, ...]  # plain values, CLUSTER_SPACE order


ARCHETYPES: tuple[Archetype, ...] = (
    #                                     recency orders  aov  seen sess views adds mail disc
    Archetype("new_browser", "recent visitor who looks around, no purchase yet",
              (365.0, 0.0, 0.0, 2.0, 3.0, 10.0, 0.0, 0.0, 0.0)),
    Archetype("one_time_buyer", "bought once, a while ago, little since",
              (60.0, 1.0, 50.0, 30.0, 1.0, 1.0, 0.0, 0.0, 0.0)),
    Archetype("loyal_high_value", "buys often and recently, large orders, engaged",
              (14.0, 12.0, 150.0, 3.0, 10.0, 15.0, 3.0, 2.0, 0.1)),
    Archetype("lapsed_buyer", "several orders, none for months, not seen lately",
              (200.0, 3.0, 60.0, 150.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
    Archetype("cart_hesitant", "adds to cart and browses a lot, never buys",
              (365.0, 0.0, 0.0, 1.0, 6.0, 25.0, 5.0, 0.0, 0.0)),
    Archetype("discount_hunter", "buys mostly with a discount",
              (30.0, 4.0, 35.0, 7.0, 4.0, 8.0, 2.0, 1.0, 0.8)),
    Archetype("email_engaged", "opens and clicks e-mails, buys now and then",
              (45.0, 2.0, 60.0, 5.0, 3.0, 3.0, 0.0, 12.0, 0.2)),
    Archetype("dormant_visitor", "never bought, not seen for months",
              (365.0, 0.0, 0.0, 120.0, 0.0, 0.0, 0.0, 0.0, 0.0)),
)
"""Cluster ``i`` is named after archetype ``i``: it starts there, and each fit gives id
``i`` to the new centre that matches it (segments.models.clusters.Clusterer)."""

_ANCHORS = [scale(a.values) for a in ARCHETYPES]

SAMPLE_SIZE = 800
"""Customers a partition's clusterer keeps a vector of: a reservoir sample of the
customers it has seen, each with their values at their latest scoring instant."""

FIRST_FIT = 200
"""Observations (scoring instants) before the first fit; until then the archetypes are
the centres."""

REFIT_EVERY = 10_000
"""After the first fits (at 200, 400, ... 6,400 observations) a fit every this many."""

K_CHOICES = range(2, len(ARCHETYPES) + 1)
"""How many clusters a fit may find."""

SILHOUETTE_TOLERANCE = 0.2
"""A fit keeps the largest k whose silhouette on the sample is within this share of the
best k's: the silhouette alone prefers two clusters (on Online Retail II: 0.64 for
k = 2, 0.62 for 3, 0.52 for 4, 0.37 for 5), and "bought lately / lapsed" tells a
marketer little that the rule segments do not."""

INCUMBENT_TOLERANCE = 0.3
"""A refit keeps the previous fit's k, when that is larger than the k chosen by
:data:`SILHOUETTE_TOLERANCE`, while its silhouette is within this share of the best."""

HYSTERESIS = 0.1
"""A customer moves to another cluster only when its centre is this much closer
(a tenth of the distance to the current one): no flapping at a boundary."""

_ITERATIONS = 40
_FIRST_FITS = frozenset(FIRST_FIT * 2**i for i in range(8) if FIRST_FIT * 2**i < REFIT_EVERY)


class ClusterFit(NamedTuple):
    """What the latest fit found: k, its silhouette on the sample, when (observations)."""

    k: int
    silhouette: float
    seen: int


class Clusterer:
    """k-means on a reservoir sample of customers, refitted as data arrives, with
    stable, named ids.

    Each scoring instant of a customer is an observation: their values at that instant
    replace the ones the sample holds of them, and a customer seen for the first time
    may enter the sample (reservoir sampling over customers, so each is equally likely
    to be in it however often they come). Until :data:`FIRST_FIT` observations the
    centres are the archetypes. Then each fit ages every sampled customer's values to
    the fit's instant (:func:`aged`: a customer the sample last saw a month ago is a
    month more lapsed now), runs k-means (k-means++ seeding, Lloyd's iterations) for
    every k in :data:`K_CHOICES` and keeps a k by silhouette (see
    :data:`SILHOUETTE_TOLERANCE`): the data decides how many clusters there are. The
    new centres take ids by the Hungarian algorithm, matched to the previous fit's
    centres (an id keeps its meaning across fits) and to their archetypes (which name
    them). Ids no centre took are empty until a later fit fills them.

    The sample holds no customer id, only a digest of it (``owner``), so an erased
    customer's values can be taken out (:meth:`forget`). Everything is computed from
    the observations in the order they came, with a seeded generator kept in the
    snapshot: the worker and the offline replay agree, and a restored clusterer goes
    on exactly like one that never stopped.

    >>> c = Clusterer([scale(a.values) for a in ARCHETYPES])
    >>> c.assign(scale(ARCHETYPES[2].values))
    2
    >>> c.active == [True] * 8, c.fit is None
    (True, True)
    >>> slot = c.observe(lambda: list(ARCHETYPES[2].values), 0, "a", None)
    >>> slot, c.observe(lambda: list(ARCHETYPES[2].values), 1, "a", slot), len(c.sample)
    (0, 0, 1)
    >>> c.forget("a", slot), c.owners
    (True, [None])
    """

    def __init__(self, centres: Iterable[Iterable[float]], *, seed: int = 0) -> None:
        self.centres = [list(c) for c in centres]
        self.updates = 0  # fits applied: the model_version of "cluster"
        self._setup(seed)

    def _setup(self, seed: int) -> None:
        self.active = [True] * len(self.centres)
        self.anchors = [list(c) for c in self.centres]  # what names an empty id
        # per slot: a customer's plain values, the instant they were taken, a digest of
        # whose they are (None: a vacant slot, after an erase)
        self.sample: list[list[float]] = []
        self.taken: list[int] = []
        self.owners: list[str | None] = []
        self.customers = 0  # customers offered to the reservoir
        self.seen = 0  # observations
        self.fit: ClusterFit | None = None
        self.random = random.Random(seed)

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "active" not in state:  # a snapshot of the drifting clusterer: resume from it
            self.__dict__.pop("rate", None)
            self._setup(0)
            if len(self.centres) == len(ARCHETYPES):
                self.anchors = [list(a) for a in _ANCHORS]

    def assign(self, v: list[float], current: int | None = None) -> int:
        """The nearest populated centre to the scaled vector ``v``; ``current`` is kept
        unless another is :data:`HYSTERESIS` closer. Ties go to the lowest id."""
        best, best_d = 0, math.inf
        dist = math.dist
        distances = []
        for i, centre in enumerate(self.centres):
            d = dist(centre, v) if self.active[i] else math.inf
            distances.append(d)
            if d < best_d:
                best, best_d = i, d
        if (current is not None and current != best and 0 <= current < len(distances)
                and distances[current] * (1 - HYSTERESIS) <= best_d):
            return current
        return best

    def observe(self, values: Callable[[], list[float]], now: int, customer_id: str,
                slot: int | None) -> int:
        """A customer's scoring instant ``now``; ``values()``: their plain values
        (:data:`CLUSTER_SPACE` order), read only when the sample holds them; ``slot``:
        what the last call returned for them (None: never offered). Returns their slot
        in the sample, or -1 when they are not in it. A fit runs when due."""
        if slot is not None and slot >= 0 and not (
                slot < len(self.owners) and self.owners[slot] == event_hash(customer_id)):
            # a slot this sample never gave them (it was restored from a snapshot older
            # than their admission): they are offered again; one another customer
            # holds: they were replaced
            fresh = slot >= len(self.owners) or self.owners[slot] is None
            slot = None if fresh else -1
        if slot is None:
            self.customers += 1
            slot = self._admit(event_hash(customer_id))
        if slot >= 0:
            self.sample[slot] = values()
            self.taken[slot] = now
        self.seen += 1
        if self.seen in _FIRST_FITS or self.seen % REFIT_EVERY == 0:
            self.refit(now)
        return slot

    def _admit(self, owner: str) -> int:
        if None in self.owners:  # a slot an erase left
            slot = self.owners.index(None)
        elif len(self.sample) < SAMPLE_SIZE:
            self.sample.append([])
            self.taken.append(0)
            self.owners.append(owner)
            return len(self.sample) - 1
        else:
            slot = self.random.randrange(self.customers)
            if slot >= SAMPLE_SIZE:
                return -1
        self.owners[slot] = owner
        return slot

    def forget(self, customer_id: str, slot: int | None) -> bool:
        """Take an erased customer's values out of the sample (True when it held them)."""
        if (slot is None or not 0 <= slot < len(self.owners)
                or self.owners[slot] != event_hash(customer_id)):
            return False
        self.owners[slot] = None
        self.sample[slot] = []
        return True

    def vectors(self, now: int) -> list[list[float]]:
        """The sampled customers' values aged to ``now``, scaled."""
        return [scale(aged(plain, (now - taken) / DAY_MS))
                for plain, taken, owner in zip(self.sample, self.taken, self.owners,
                                               strict=True) if owner is not None]

    def refit(self, now: int) -> ClusterFit:
        """Fit on the sample as it stands at ``now``; the new centres' ids are matched
        to the old ones'."""
        import numpy as np
        from scipy.optimize import linear_sum_assignment  # type: ignore[import-untyped]

        vectors = self.vectors(now)
        rng = np.random.default_rng(self.random.randrange(2**32))
        if len(vectors) <= min(K_CHOICES):  # too few customers for two clusters
            return self.fit or ClusterFit(0, 0.0, self.seen)
        x = np.asarray(vectors, dtype=np.float64)
        distinct = len(np.unique(x, axis=0))
        squared = _pairwise_squared(x, x)
        distances = np.sqrt(np.maximum(squared, 0.0))
        fits: list[tuple[float, int, Any]] = []
        for k in K_CHOICES:
            if k > distinct or k >= len(x):
                break
            centres, labels = _kmeans(x, k, rng)
            if len(set(labels.tolist())) < k:  # a centre left empty: not k clusters
                continue
            fits.append((_silhouette(distances, labels), k, centres))
        if not fits:
            return self.fit or ClusterFit(0, 0.0, self.seen)
        chosen = choose_k({k: score for score, k, _ in fits},
                          self.fit.k if self.fit is not None else 0)
        score, k, centres = next(f for f in fits if f[1] == chosen)
        # names come from the dimensions the data varies in: a log without e-mail or
        # browsing must not match its centres to archetypes by those
        varies = x.std(axis=0) > 0
        # An id's cost: the distance to its archetype plus, when the last fit
        # populated it, the distance to that centre: an id keeps its meaning across
        # fits and its name stays the archetype's nearest to it.
        anchors = np.asarray(self.anchors, dtype=np.float64)[:, varies]
        previous = np.asarray([c if active and self.fit is not None else a for c, active, a
                               in zip(self.centres, self.active, self.anchors, strict=True)],
                              dtype=np.float64)[:, varies]
        cost = (np.sqrt(np.maximum(_pairwise_squared(centres[:, varies], anchors), 0.0))
                + np.sqrt(np.maximum(_pairwise_squared(centres[:, varies], previous), 0.0)))
        rows, ids = linear_sum_assignment(cost)
        active = [False] * len(self.centres)
        for row, cid in zip(rows.tolist(), ids.tolist(), strict=True):
            self.centres[cid] = [float(v) for v in centres[row]]
            active[cid] = True
        self.active = active
        self.updates += 1
        self.fit = ClusterFit(k, round(float(score), 6), self.seen)
        return self.fit


def choose_k(silhouettes: dict[int, float], previous: int) -> int:
    """The k a fit keeps, from each k's silhouette: the largest within
    :data:`SILHOUETTE_TOLERANCE` of the best, or the ``previous`` fit's k when that is
    larger and within :data:`INCUMBENT_TOLERANCE` (a k that shrinks and grows back from
    one fit to the next moves many customers for no gain in meaning).

    >>> choose_k({2: 0.64, 3: 0.62, 4: 0.52, 5: 0.47}, previous=0)
    4
    >>> choose_k({2: 0.64, 3: 0.62, 4: 0.50, 5: 0.47}, previous=5)
    5
    >>> choose_k({2: 0.64, 3: 0.62, 4: 0.50, 5: 0.40}, previous=5)
    3
    """
    top = max(silhouettes.values())
    k = max(k for k, score in silhouettes.items() if score >= top * (1 - SILHOUETTE_TOLERANCE))
    if previous > k and silhouettes.get(previous, -math.inf) >= top * (1 - INCUMBENT_TOLERANCE):
        return previous
    return k


def _pairwise_squared(a: Any, b: Any) -> Any:
    """Squared distances, one coordinate at a time: elementwise sums only (no BLAS),
    so the floats are the same in every process."""
    import numpy as np

    out = np.zeros((len(a), len(b)), dtype=np.float64)
    if len(b) < 64:  # a point against a few centres (Lloyd's iterations)
        for j in range(a.shape[1]):
            diff = a[:, j, None] - b[None, :, j]
            out += diff * diff
        return out
    # The sample against itself: blocks of rows that stay in the CPU cache, over
    # contiguous columns, in one buffer. Each entry still sums the same squares in
    # the same order, so the floats are the same.
    rows = max(1, (1 << 14) // len(b))
    diff = np.empty((min(rows, len(a)), len(b)), dtype=np.float64)
    a_columns, b_columns = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    for start in range(0, len(a), rows):
        block = out[start:start + rows]
        d = diff[:len(block)]
        for j in range(a.shape[1]):
            np.subtract(a_columns[j, start:start + rows, None], b_columns[j], out=d)
            np.multiply(d, d, out=d)
            block += d
    return out


def _kmeans(x: Any, k: int, rng: Any) -> tuple[Any, Any]:
    """k-means++ seeding, then Lloyd's iterations until the labels settle."""
    import numpy as np

    n = len(x)
    centres = [x[int(rng.integers(n))]]
    closest = _pairwise_squared(x, np.asarray(centres))[:, 0]
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0.0:
            pick = int(rng.integers(n))
        else:
            pick = int(np.searchsorted(np.cumsum(closest), rng.random() * total))
            pick = min(pick, n - 1)
        centres.append(x[pick])
        closest = np.minimum(closest, _pairwise_squared(x, x[pick:pick + 1])[:, 0])
    c = np.asarray(centres, dtype=np.float64)
    labels = np.full(n, -1)
    for _ in range(_ITERATIONS):
        new = np.argmin(_pairwise_squared(x, c), axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for i in range(k):
            members = x[labels == i]
            if len(members):
                c[i] = members.mean(axis=0)
    return c, labels


def _silhouette(distances: Any, labels: Any) -> float:
    """The mean silhouette (Rousseeuw) of ``labels``, from the distance matrix."""
    import numpy as np

    clusters = sorted(set(labels.tolist()))
    sums = np.stack([distances[:, labels == c].sum(axis=1) for c in clusters], axis=1)
    sizes = np.asarray([int((labels == c).sum()) for c in clusters], dtype=np.float64)
    own = np.searchsorted(np.asarray(clusters), labels)
    own_size = sizes[own]
    a = np.where(own_size > 1, sums[np.arange(len(labels)), own] / np.maximum(own_size - 1, 1),
                 0.0)
    means = sums / sizes
    means[np.arange(len(labels)), own] = np.inf
    b = means.min(axis=1)
    s = np.where(own_size > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())
