"""Online models in the stream: their scores are features rules can read.

One :class:`PartitionModels` per partition, next to the partition's RFM population,
owned by the :class:`~segments.processor.Processor`. The partition's processing is
the only writer, so for the same input order training is deterministic and the
offline replay equals the worker. Four models (docs/models.md has the tables):

- ``propensity`` (feature ``purchase_propensity``): P(a purchase within
  ``propensity_horizon``, 30 days), and ``churn`` (``churn_risk``): P(no activity
  within ``churn_horizon``, 90 days). River pipelines (standard scaler + logistic
  regression) trained with **delayed labels**: per customer at most one open example
  per model, kept in ``state.models``, resolved by an event or by its horizon through
  the due index, then learned (progressive validation: the metrics see the prediction
  made when the example was captured, before the model learns its label).
- ``cluster`` (``cluster``): sequential k-means with stable ids. Centre ``i`` starts at
  archetype ``i`` (:data:`ARCHETYPES`, plain feature values) in a fixed scaled space,
  on every partition and worker, and only drifts.
- ``btyd`` (``p_alive``, ``expected_clv_365d``): BG/NBD + Gamma-Gamma
  (:mod:`segments.btyd`), population parameters refitted every ``btyd_refit`` from the
  buyers' summaries, per-customer values in closed form at every evaluation.

A model feature is null until its model is warm: for the classifiers,
``model_warm_after`` learned labels of each outcome (labels arrive late, one outcome
first: churn learns "still active" for a whole horizon before its first "went
quiet"); for BG/NBD, the first successful fit; the clusterer is warm from the start
(its archetypes mean something before any data).

>>> len(VECTOR), len(CLUSTER_SPACE), len(ARCHETYPES)
(21, 9, 8)
>>> [round(v, 6) for v in unscale(scale(ARCHETYPES[2].values))] == list(ARCHETYPES[2].values)
True
>>> parse_model_version("p1:btyd=3,prop=1532")
(1, {'btyd': 3, 'propensity': 1532})
"""

from __future__ import annotations

import math
import pickle
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, NamedTuple

from segments.btyd import (
    BgNbdParams,
    FitError,
    GammaGammaParams,
    Summary,
    expected_purchases,
    expected_spend,
    fit_bg_nbd,
    fit_gamma_gamma,
    p_alive,
)
from segments.definitions import Policies
from segments.events import Interaction
from segments.features import MODEL_FEATURES, Features
from segments.state import CustomerState
from segments.timefmt import DAY_MS

__all__ = [
    "ARCHETYPES",
    "CLUSTER_SPACE",
    "FEATURE_MODELS",
    "MODELS",
    "NOT_ACTIVITY",
    "VECTOR",
    "Archetype",
    "Base",
    "BtydFit",
    "Clusterer",
    "OnlineClassifier",
    "PartitionModels",
    "base_values",
    "build_vector",
    "cluster_values",
    "fit_btyd",
    "open_dues",
    "parse_model_version",
    "scale",
    "unscale",
]

MODELS = ("propensity", "churn", "cluster", "btyd")
_SHORT = {"propensity": "prop", "churn": "churn", "cluster": "clus", "btyd": "btyd"}
_LONG = {v: k for k, v in _SHORT.items()}

FEATURE_MODELS: Mapping[str, tuple[str, ...]] = {
    # the classifiers read p_alive and expected purchases in their vector: BG/NBD too
    "purchase_propensity": ("propensity", "btyd"),
    "churn_risk": ("churn", "btyd"),
    "p_alive": ("btyd",),
    "expected_clv_365d": ("btyd",),
    "cluster": ("cluster",),
}
"""Which models a model feature's value depends on (what ``model_version`` names)."""

NOT_ACTIVITY = frozenset({"consent_update", "profile_update", "erase_request",
                          "email_unsubscribe"})
"""Event types that are not "activity" for the churn label: bookkeeping and opting out."""

SNAPSHOT_FORMAT = 1
LEARNING_RATE = 0.003  # the classifiers' SGD step (see OnlineClassifier)


# ------------------------------------------------------------------ feature vector


class VectorFeature(NamedTuple):
    name: str
    meaning: str
    transform: str


_CAP_DAYS = 730.0

VECTOR: tuple[VectorFeature, ...] = (
    VectorFeature("has_purchased", "bought at least once", "1 or 0"),
    VectorFeature("days_since_last_purchase", "recency of the latest purchase",
                  "log1p(min(days, 730)); log1p(730) before the first purchase"),
    VectorFeature("purchases_total", "orders ever", "log1p"),
    VectorFeature("revenue_total", "net revenue ever", "log1p"),
    VectorFeature("avg_order_value", "revenue per order", "log1p; 0 before a purchase"),
    VectorFeature("purchases_90d", "orders in 90 days", "log1p"),
    VectorFeature("purchases_365d", "orders in 365 days", "log1p"),
    VectorFeature("revenue_365d", "revenue in 365 days", "log1p"),
    VectorFeature("days_since_first_purchase", "tenure as a buyer",
                  "log1p(min(days, 730)); 0 before a purchase"),
    VectorFeature("days_since_last_seen", "time since any event", "log1p(min(days, 730))"),
    VectorFeature("sessions_30d", "sessions in 30 days", "log1p"),
    VectorFeature("product_views_7d", "product views in 7 days", "log1p"),
    VectorFeature("cart_adds_7d", "cart adds in 7 days", "log1p"),
    VectorFeature("searches_7d", "searches in 7 days", "log1p"),
    VectorFeature("email_opens_30d", "e-mail opens in 30 days", "log1p"),
    VectorFeature("email_clicks_30d", "e-mail clicks in 30 days", "log1p"),
    VectorFeature("app_opens_7d", "app opens in 7 days", "log1p"),
    VectorFeature("cart_items", "items in the open cart", "log1p"),
    VectorFeature("btyd_known", "BG/NBD values exist (fitted, and a buyer)", "1 or 0"),
    VectorFeature("p_alive", "BG/NBD probability of being alive", "as is; 0.5 when unknown"),
    VectorFeature("expected_purchases_365d", "BG/NBD expected purchase days in 365 days",
                  "log1p; 0 when unknown"),
)
"""The classifiers' input, in order: River sees ``{index: value}`` (integer keys, so
nothing depends on string hashing). A captured example keeps its values rounded to 4
decimals (``state.models`` is JSON), and its prediction is made on those."""


class Base(NamedTuple):
    """The plain feature values both models read (the features of the same names)."""

    purchases_total: int
    revenue_total: float
    avg_order_value: float | None
    days_since_last_purchase: float | None
    days_since_first_purchase: float | None
    days_since_last_seen: float | None
    purchases_90d: int
    purchases_365d: int
    revenue_365d: float
    discount_orders_365d: int
    sessions_30d: int
    product_views_7d: int
    cart_adds_7d: int
    searches_7d: int
    email_opens_30d: int
    email_clicks_30d: int
    app_opens_7d: int
    cart_items: int


def base_values(f: Features) -> Base:
    """:class:`Base` of the features ``f``: read through the mapping, so what the rules
    already computed for this evaluation is not computed again."""
    return Base(
        f["purchases_total"], f["revenue_total"], f["avg_order_value"],
        f["days_since_last_purchase"], f["days_since_first_purchase"],
        f["days_since_last_seen"], f["purchases_90d"], f["purchases_365d"],
        f["revenue_365d"], f["discount_orders_365d"], f["sessions_30d"],
        f["product_views_7d"], f["cart_adds_7d"], f["searches_7d"], f["email_opens_30d"],
        f["email_clicks_30d"], f["app_opens_7d"], f["cart_items"])


def _log_days(days: float | None, missing: float) -> float:
    return math.log1p(missing if days is None else min(max(days, 0.0), _CAP_DAYS))


def build_vector(b: Base, alive: float | None, expected: float | None) -> list[float]:
    """The :data:`VECTOR` of the values ``b`` and the BG/NBD values (None: unknown)."""
    log1p = math.log1p
    aov = b.avg_order_value
    values = (
        1.0 if b.purchases_total > 0 else 0.0,
        _log_days(b.days_since_last_purchase, _CAP_DAYS),
        log1p(b.purchases_total),
        log1p(max(b.revenue_total, 0.0)),
        0.0 if aov is None else log1p(max(aov, 0.0)),
        log1p(b.purchases_90d),
        log1p(b.purchases_365d),
        log1p(max(b.revenue_365d, 0.0)),
        _log_days(b.days_since_first_purchase, 0.0),
        _log_days(b.days_since_last_seen, 0.0),
        log1p(b.sessions_30d),
        log1p(b.product_views_7d),
        log1p(b.cart_adds_7d),
        log1p(b.searches_7d),
        log1p(b.email_opens_30d),
        log1p(b.email_clicks_30d),
        log1p(b.app_opens_7d),
        log1p(max(b.cart_items, 0)),
        0.0 if alive is None else 1.0,
        0.5 if alive is None else alive,
        0.0 if expected is None else log1p(expected),
    )
    return list(values)


# ------------------------------------------------------------- clustering space


class ClusterFeature(NamedTuple):
    name: str
    meaning: str
    cap: float | None  # scaled = log1p(min(v, cap)) / log1p(cap); None: a share in [0, 1]


CLUSTER_SPACE: tuple[ClusterFeature, ...] = (
    ClusterFeature("days_since_last_purchase", "days since the latest purchase; 365 "
                   "when none", 365.0),
    ClusterFeature("purchases_total", "orders ever", 50.0),
    ClusterFeature("avg_order_value", "revenue per order; 0 when none", 1000.0),
    ClusterFeature("days_since_last_seen", "days since any event", 365.0),
    ClusterFeature("sessions_30d", "sessions in 30 days", 60.0),
    ClusterFeature("product_views_7d", "product views in 7 days", 100.0),
    ClusterFeature("cart_adds_7d", "cart adds in 7 days", 20.0),
    ClusterFeature("email_engagement_30d", "email_opens_30d + email_clicks_30d", 30.0),
    ClusterFeature("discount_share_365d", "discount_orders_365d / purchases_365d; 0 when "
                   "none", None),
)
"""The space the clusterer works in: a FIXED scaling of plain values (not an online
scaler), so a centre means the same on every partition and after any restart."""


_SCALE = tuple((spec.cap, None if spec.cap is None else math.log1p(spec.cap))
               for spec in CLUSTER_SPACE)


def scale(plain: Iterable[float]) -> list[float]:
    """Plain values (in :data:`CLUSTER_SPACE` order) to the clustering space, each in [0, 1]."""
    out = []
    log1p = math.log1p
    for value, (cap, top) in zip(plain, _SCALE, strict=True):
        if cap is None or top is None:
            out.append(min(max(value, 0.0), 1.0))
        else:
            out.append(log1p(min(max(value, 0.0), cap)) / top)
    return out


def unscale(scaled: Iterable[float]) -> list[float]:
    """The inverse of :func:`scale` (within the caps)."""
    out = []
    for value, spec in zip(scaled, CLUSTER_SPACE, strict=True):
        out.append(value if spec.cap is None else math.expm1(value * math.log1p(spec.cap)))
    return out


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
"""Cluster ``i`` starts at archetype ``i``; the ids never renumber."""

CLUSTER_RATE = 0.01
"""How far a centre moves toward each vector it wins: an exponential average over
about the last 100 training vectors of that cluster."""


class Clusterer:
    """Sequential k-means (MacQueen's online update, constant rate) with fixed ids.

    Equivalent to ``river.cluster.KMeans(halflife=rate)`` with its centres set to the
    archetypes, written out because River's version (a) keeps centres as
    ``defaultdict``s that draw a random coordinate for any key they have not seen,
    (b) builds a set of keys per centre per prediction (11 us against 2 us here), and
    (c) has no inverse-transform or per-cluster bookkeeping to hang descriptions on.
    Ties go to the lowest id.
    """

    def __init__(self, centres: Iterable[Iterable[float]], rate: float = CLUSTER_RATE) -> None:
        self.centres = [list(c) for c in centres]
        self.rate = rate
        self.updates = 0

    def assign(self, v: list[float]) -> int:
        best, best_d = 0, math.inf
        dist = math.dist
        for i, centre in enumerate(self.centres):
            d = dist(centre, v)
            if d < best_d:
                best, best_d = i, d
        return best

    def learn(self, v: list[float]) -> int:
        i = self.assign(v)
        centre, rate = self.centres[i], self.rate
        for j, value in enumerate(v):
            centre[j] += rate * (value - centre[j])
        self.updates += 1
        return i


# ------------------------------------------------------------------ classifiers


class OnlineClassifier:
    """A River pipeline (standard scaler + logistic regression) with progressive
    validation: rolling ROC AUC (last 2,000 scored labels) and log loss (all).

    Warm once it has learnt ``warm_after`` labels of each outcome: before that its
    sample is one-sided (delayed labels) and its scores rank poorly. SGD's step is
    :data:`LEARNING_RATE`, smaller than River's 0.01 default: the labels of one
    customer are correlated, and a smaller step ranked better on Online Retail II
    (docs/models.md has the comparison)."""

    def __init__(self, name: str, warm_after: int) -> None:
        # River loads with the first model, not with every command: through
        # river.linear_model it imports scipy.stats, seconds of start-up
        from river import compose, linear_model, metrics, optim, preprocessing

        self.name = name
        self.warm_after = warm_after
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(LEARNING_RATE)))
        self.labels = 0
        self.positives = 0
        self.scored = 0
        self.auc = metrics.RollingROCAUC(window_size=2000)  # type: ignore[no-untyped-call]
        self.log_loss = metrics.LogLoss()  # type: ignore[no-untyped-call]

    @property
    def warm(self) -> bool:
        return min(self.positives, self.labels - self.positives) >= self.warm_after

    def predict(self, x: list[float]) -> float:
        proba = self.model.predict_proba_one(dict(enumerate(x)))
        return float(proba.get(True, 0.0))

    def learn(self, x: list[float], label: int, p: float | None) -> None:
        """Score the capture-time prediction ``p`` (if any) first, then learn."""
        if p is not None:
            self.auc.update(bool(label), p)  # type: ignore[no-untyped-call]
            self.log_loss.update(bool(label), p)
            self.scored += 1
        self.model.learn_one(dict(enumerate(x)), bool(label))
        self.labels += 1
        self.positives += label

    def metrics(self) -> dict[str, Any]:
        return {"labels": self.labels, "positives": self.positives, "scored": self.scored,
                "warm": self.warm,
                "roc_auc": round(self.auc.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None,
                "log_loss": round(self.log_loss.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None}


# -------------------------------------------------------------------- BG/NBD fit


class BtydFit(NamedTuple):
    bg: BgNbdParams | None
    gg: GammaGammaParams | None
    note: str


def fit_btyd(rows: list[tuple[int, float, float, float]]) -> BtydFit:
    """BG/NBD and Gamma-Gamma from (frequency, recency, age, monetary) rows in days.

    A module-level function of plain data, so a process pool can run it; the result
    depends on the multiset of rows only (segments.btyd), hence the same in any mode.
    """
    summaries = [Summary(x, r, a, m) for x, r, a, m in rows]
    try:
        bg = fit_bg_nbd(summaries)
    except FitError as exc:
        return BtydFit(None, None, str(exc))
    try:
        gg: GammaGammaParams | None = fit_gamma_gamma(summaries)
        note = ""
    except FitError as exc:
        gg, note = None, str(exc)
    return BtydFit(bg, gg, note)


Submit = Callable[..., "Future[BtydFit]"]
OnLabel = Callable[[int, str, int, int, "float | None", dict[str, Any]], None]


def open_dues(state: CustomerState) -> int | None:
    """The earliest horizon of the customer's open examples."""
    due = None
    models = state.models
    for name in ("propensity", "churn"):
        entry = models.get(name)
        if entry:
            due = entry[1] if due is None else min(due, entry[1])
    return due


def parse_model_version(text: str) -> tuple[int, dict[str, int]]:
    """The partition and per-model counts of a record's ``model_version``."""
    head, _, body = text.partition(":")
    counts = {}
    for part in body.split(","):
        short, _, n = part.partition("=")
        counts[_LONG[short]] = int(n)
    return int(head[1:]), counts


# ---------------------------------------------------------------- per partition


class PartitionModels:
    """Every model of one partition: scoring, delayed labels, BG/NBD refits, snapshots.

    Learned state (the classifiers, their metrics, the cluster centres, the BG/NBD
    parameters and refit bookkeeping) is what :meth:`snapshot` holds. Derived state
    (the buyers' BG/NBD summaries, cluster sizes and categories) is rebuilt from the
    customers' states by :meth:`reset_derived` + :meth:`observe_recovered`.
    """

    def __init__(self, partition: int, policies: Policies, *, submit: Submit | None = None,
                 on_label: OnLabel | None = None) -> None:
        self.partition = partition
        self.policies = policies
        self.submit = submit
        self.on_label = on_label
        self.propensity = OnlineClassifier("propensity", policies.model_warm_after)
        self.churn = OnlineClassifier("churn", policies.model_warm_after)
        self.clusterer = Clusterer(scale(a.values) for a in ARCHETYPES)
        self.bg: BgNbdParams | None = None
        self.gg: GammaGammaParams | None = None
        self.refits = 0  # successful fits applied
        self.refit_started: int | None = None
        self.refit_applied: int | None = None
        self.refit_note = ""
        # a refit in flight: [started at, apply at, BtydFit or its Future]
        self.pending: list[Any] | None = None
        self.dirty = 0  # model updates since the last snapshot
        self.touched = False  # a customer's open examples changed (the state needs a write)
        self.reset_derived()

    # ---- derived state ---------------------------------------------------------

    def reset_derived(self) -> None:
        self._buyers: dict[str, tuple[int, int, int, float]] = {}
        self._sizes = [0] * len(ARCHETYPES)
        self._categories: list[Counter[str]] = [Counter() for _ in ARCHETYPES]

    def observe_recovered(self, key: str, state: CustomerState) -> None:
        self.update_buyer(key, state)
        entry = state.models.get("cluster")
        if entry:
            self._count(entry, 1)

    def update_buyer(self, key: str, state: CustomerState) -> None:
        """Keep the customer's BG/NBD summary (days) current: after each applied event."""
        if state.first_purchase is None or state.last_purchase is None \
                or state.purchases_total == 0:
            self._buyers.pop(key, None)
            return
        x = max(state.purchase_days - 1, 0)
        monetary = max(state.revenue_total - state.first_day_revenue, 0.0) / x if x else 0.0
        self._buyers[key] = (state.first_purchase // DAY_MS, state.last_purchase // DAY_MS,
                             x, monetary)

    def remove_customer(self, key: str, state: CustomerState) -> None:
        """An erased customer leaves the summaries and the cluster counts."""
        self._buyers.pop(key, None)
        entry = state.models.get("cluster")
        if entry:
            self._count(entry, -1)

    def _count(self, entry: list[Any], sign: int) -> None:
        cluster, category = entry
        if not 0 <= cluster < len(self._sizes):
            return
        self._sizes[cluster] += sign
        if category is not None:
            counts = self._categories[cluster]
            counts[category] += sign
            if counts[category] <= 0:
                del counts[category]

    # ---- scoring ---------------------------------------------------------------

    def score(self, name: str, f: Features) -> Any:
        if name == "purchase_propensity":
            return self._classify(self.propensity, f)
        if name == "churn_risk":
            return self._classify(self.churn, f)
        if name == "p_alive":
            values = self._btyd(f)
            return None if values is None else values[0]
        if name == "expected_clv_365d":
            values = self._btyd(f)
            return None if values is None else values[2]
        if name == "cluster":
            return self.clusterer.assign(self.cluster_vector(f))
        raise KeyError(name)

    def _classify(self, clf: OnlineClassifier, f: Features) -> float | None:
        if not clf.warm:
            return None
        return round(clf.predict(self.vector(f)), 6)

    def vector(self, f: Features) -> list[float]:
        def compute() -> list[float]:
            values = self._btyd(f)
            if values is None:
                return build_vector(self.base(f), None, None)
            return build_vector(self.base(f), values[0], values[1])
        result: list[float] = f.memo("models/x", compute)
        return result

    def cluster_vector(self, f: Features) -> list[float]:
        result: list[float] = f.memo("models/c", lambda: scale(cluster_values(self.base(f))))
        return result

    @staticmethod
    def base(f: Features) -> Base:
        result: Base = f.memo("models/base", lambda: base_values(f))
        return result

    def _btyd(self, f: Features) -> tuple[float, float, float | None] | None:
        """(p_alive, expected purchase days in 365 days, expected spend in 365 days)."""
        return f.memo("models/btyd", lambda: self._btyd_values(f.state, f.now))  # type: ignore[no-any-return]

    def _btyd_values(self, s: CustomerState,
                     now: int) -> tuple[float, float, float | None] | None:
        bg = self.bg
        if bg is None or s.first_purchase is None or s.last_purchase is None \
                or s.purchases_total == 0:
            return None
        first, last = s.first_purchase // DAY_MS, s.last_purchase // DAY_MS
        x = max(s.purchase_days - 1, 0)
        recency = float(last - first) if x else 0.0
        age = float(max(now // DAY_MS - first, last - first))
        monetary = max(s.revenue_total - s.first_day_revenue, 0.0) / x if x else 0.0
        summary = Summary(x, recency, age, monetary)
        alive = p_alive(bg, summary)
        expected = expected_purchases(bg, summary, 365.0)
        value = None
        if self.gg is not None:
            spend = expected_spend(self.gg, summary)
            if math.isfinite(spend):
                value = round(expected * spend, 2)
        return round(alive, 6), expected, value

    def stamp(self, state: CustomerState, f: Features) -> None:
        """Keep in ``state.scores`` what the customer was scored with, and the cluster
        counts of :meth:`describe_clusters`."""
        scores: dict[str, Any] = {name: f[name] for name in MODEL_FEATURES}
        scores["model_version"] = self.version_string(MODELS)
        state.scores = scores
        entry = [scores["cluster"], _top_category(state.categories)]
        previous = state.models.get("cluster")
        if previous != entry:
            if previous:
                self._count(previous, -1)
            self._count(entry, 1)
            state.models["cluster"] = entry

    # ---- delayed labels --------------------------------------------------------

    def on_event(self, state: CustomerState, event: Interaction, f: Features) -> None:
        """Resolve the open examples ``event`` decides, then capture where none is open.

        ``f`` holds the features at the evaluation instant ``f.now`` (the partition
        clock), the capture instant. An event that decides an example less than
        ``model_capture_gap`` after it was made only marks it: it is labelled at its
        horizon with the label the event decided, so examples of one customer are at
        least the gap apart and no extra wake-up is needed."""
        ts, gap = event.ts, self.policies.model_capture_gap_ms
        captured = False
        models = state.models
        for clf, decides, label in ((self.propensity, event.type == "purchase", 1),
                                    (self.churn, event.type not in NOT_ACTIVITY, 0)):
            entry = models.get(clf.name)
            if entry is not None:
                if not (decides and entry[0] < ts <= entry[1]):
                    continue
                if f.now - entry[0] < gap:
                    if not entry[5]:
                        entry[5] = 1
                        self.touched = True
                    continue
                self._resolve(clf, entry, label)
            self._capture(state, clf, f)
            captured = True
        if captured:
            self.clusterer.learn(self.cluster_vector(f))
            self.dirty += 1

    def on_due(self, state: CustomerState, instant: int, f: Features) -> None:
        """The clock reached ``instant``: examples whose horizon passed get their label
        (propensity 0, churn 1, unless an event already decided it), then a new example
        is captured at ``f.now``, unless the customer has been inactive for longer than
        ``model_inactive_after``."""
        captured = False
        models = state.models
        for clf, label in ((self.propensity, 0), (self.churn, 1)):
            entry = models.get(clf.name)
            if entry is None or entry[1] > instant:
                continue
            self._resolve(clf, entry, 1 - label if entry[5] else label)
            last_seen = state.last_seen
            if last_seen is None or f.now - last_seen > self.policies.model_inactive_after_ms:
                del models[clf.name]
                continue
            self._capture(state, clf, f)
            captured = True
        if captured:
            self.clusterer.learn(self.cluster_vector(f))
            self.dirty += 1

    def _capture(self, state: CustomerState, clf: OnlineClassifier, f: Features) -> None:
        x = [round(v, 4) for v in self.vector(f)]
        p = round(clf.predict(x), 6) if clf.warm else None
        horizon = (self.policies.propensity_horizon_ms if clf is self.propensity
                   else self.policies.churn_horizon_ms)
        recency = f["days_since_last_purchase"]
        r, fr, m = f["rfm_r"], f["rfm_f"], f["rfm_m"]
        rfm = None if r is None or fr is None or m is None else r + fr + m
        baselines = [None if recency is None else round(recency, 6), rfm]
        state.models[clf.name] = [f.now, f.now + horizon, x, p, baselines, 0]
        self.touched = True

    def _resolve(self, clf: OnlineClassifier, entry: list[Any], label: int) -> None:
        made_at, _, x, p, baselines, _ = entry
        clf.learn(x, label, p)
        self.dirty += 1
        self.touched = True
        if self.on_label is not None:
            self.on_label(self.partition, clf.name, made_at, label, p,
                          {"days_since_last_purchase": baselines[0],
                           "rfm_score": baselines[1]})

    # ---- BG/NBD refits ---------------------------------------------------------

    def refit_due(self, now: int) -> int | None:
        """The refit instant (a multiple of ``btyd_refit``) before ``now`` not yet
        started, if none is in flight."""
        if self.pending is not None:
            return None
        period = self.policies.btyd_refit_ms
        instant = (now - 1) // period * period
        if self.refit_started is not None and instant <= self.refit_started:
            return None
        if self.refit_applied is not None and instant < self.refit_applied:
            return None
        return instant

    def apply_due(self, now: int) -> int | None:
        """The instant the refit in flight is applied, once the clock reached it."""
        if self.pending is None or self.pending[1] > now:
            return None
        return int(self.pending[1])

    def summaries(self, at: int) -> list[tuple[int, float, float, float]]:
        """The buyers' (frequency, recency, age, monetary) in days at instant ``at``."""
        day = at // DAY_MS
        rows = []
        for first, last, x, monetary in self._buyers.values():
            if first > day:
                continue
            recency = last - first if x else 0
            rows.append((x, float(recency), float(max(day - first, recency)), monetary))
        rows.sort()
        return rows

    def start_refit(self, at: int) -> None:
        """Start a refit from the summaries at ``at``; it applies at ``at +
        btyd_apply_after`` whatever the mode (a pool via ``submit``, or inline)."""
        self.refit_started = at
        rows = self.summaries(at)
        repeaters = sum(1 for row in rows if row[0] > 0)
        if repeaters < self.policies.btyd_min_repeat_buyers:
            self.refit_note = (f"{repeaters} repeat buyers at {at}, below "
                               f"btyd_min_repeat_buyers")
            return
        result: Any = fit_btyd(rows) if self.submit is None else self.submit(fit_btyd, rows)
        self.pending = [at, at + self.policies.btyd_apply_after_ms, result]

    def apply_refit(self) -> None:
        """Apply the refit in flight; waits for it if it is still running (only when
        the clock outruns a fit: a replay faster than real time)."""
        assert self.pending is not None
        _, apply_at, result = self.pending
        self.pending = None
        self.refit_applied = apply_at
        try:
            fit = result if isinstance(result, BtydFit) else result.result()
        except Exception as exc:  # the pool broke: keep the parameters we have
            self.refit_note = f"refit failed: {type(exc).__name__}: {exc}"
            return
        self.refit_note = fit.note
        if fit.bg is not None:
            self.bg, self.gg = fit.bg, fit.gg
            self.refits += 1
            self.dirty += 1

    # ---- versions, metrics, descriptions ---------------------------------------

    def versions(self) -> dict[str, int]:
        return {"propensity": self.propensity.labels, "churn": self.churn.labels,
                "cluster": self.clusterer.updates, "btyd": self.refits}

    def version_of(self, model: str) -> str:
        """``"propensity:p1:1532"``: partition 1's propensity model after 1,532 labels."""
        return f"{model}:p{self.partition}:{self.versions()[model]}"

    def version_string(self, models: Iterable[str]) -> str:
        """A record's ``model_version``: ``p<partition>:<model>=<count>,...`` with short
        names (prop, churn, clus, btyd), sorted; at most 64 characters while each
        count is below 10**9 (the schema's bound)."""
        counts = self.versions()
        parts = sorted(f"{_SHORT[m]}={counts[m]}" for m in set(models))
        return f"p{self.partition}:" + ",".join(parts)

    def metrics(self) -> dict[str, Any]:
        """Progressive-validation metrics and counts, as plain data."""
        return {
            "partition": self.partition,
            "propensity": {**self.propensity.metrics(),
                           "version": self.version_of("propensity")},
            "churn": {**self.churn.metrics(), "version": self.version_of("churn")},
            "cluster": {"updates": self.clusterer.updates,
                        "version": self.version_of("cluster")},
            "btyd": {"refits": self.refits, "version": self.version_of("btyd"),
                     "bg_nbd": None if self.bg is None else _params(self.bg),
                     "gamma_gamma": None if self.gg is None else _params(self.gg),
                     "buyers": len(self._buyers), "note": self.refit_note,
                     "in_flight": self.pending is not None},
        }

    def describe_clusters(self) -> list[dict[str, Any]]:
        """Each cluster: archetype, centre in plain values, size, top categories."""
        out = []
        for i, (archetype, centre) in enumerate(zip(ARCHETYPES, self.clusterer.centres,
                                                    strict=True)):
            plain = unscale(centre)
            out.append({
                "cluster": i,
                "archetype": archetype.name,
                "description": archetype.description,
                "centroid": {spec.name: round(v, 3)
                             for spec, v in zip(CLUSTER_SPACE, plain, strict=True)},
                "size": self._sizes[i],
                "top_categories": sorted(self._categories[i].items(),
                                         key=lambda kv: (-kv[1], kv[0]))[:5],
            })
        return out

    # ---- snapshots -------------------------------------------------------------

    def refit_running(self) -> bool:
        """A refit was submitted and its future is not done yet."""
        pending = self.pending
        return pending is not None and not isinstance(pending[2], BtydFit) \
            and not pending[2].done()

    def snapshot(self) -> bytes:
        """The learned state as bytes (pickle; it stays in our own topic). A refit in
        flight is waited for, so the bytes hold its result."""
        pending = self.pending
        if pending is not None and not isinstance(pending[2], BtydFit):
            pending = [pending[0], pending[1], pending[2].result()]
            self.pending = pending
        data = pickle.dumps({
            "format": SNAPSHOT_FORMAT, "partition": self.partition,
            "propensity": self.propensity, "churn": self.churn, "clusterer": self.clusterer,
            "bg": self.bg, "gg": self.gg, "refits": self.refits,
            "refit_started": self.refit_started, "refit_applied": self.refit_applied,
            "refit_note": self.refit_note, "pending": pending,
        }, protocol=5)
        self.dirty = 0
        return data

    def restore(self, data: bytes) -> None:
        """Replace the learned state by a snapshot's; derived state is kept."""
        saved = pickle.loads(data)  # our own topic's bytes
        if saved.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown model snapshot format {saved.get('format')!r}")
        self.propensity, self.churn = saved["propensity"], saved["churn"]
        for clf in (self.propensity, self.churn):
            clf.warm_after = self.policies.model_warm_after
        self.clusterer = saved["clusterer"]
        self.bg, self.gg, self.refits = saved["bg"], saved["gg"], saved["refits"]
        self.refit_started, self.refit_applied = saved["refit_started"], saved["refit_applied"]
        self.refit_note, self.pending = saved["refit_note"], saved["pending"]
        self.dirty = 0


def _params(params: Any) -> dict[str, float]:
    return {name: getattr(params, name) for name in params.__slots__}


def _top_category(categories: dict[str, int]) -> str | None:
    if not categories:
        return None
    return min(categories.items(), key=lambda kv: (-kv[1], kv[0]))[0]
