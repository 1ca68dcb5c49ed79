"""Every model of one partition: scoring, delayed labels, BG/NBD refits, snapshots.

The partition's processing is the only writer, so for the same input order training
is deterministic and the offline replay equals the worker.
"""

from __future__ import annotations

import math
import pickle
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, NamedTuple

from segments.btyd import (
    BgNbdParams,
    GammaGammaParams,
    Summary,
    expected_purchases,
    expected_spend,
    p_alive,
)
from segments.definitions import PolicySettings
from segments.events import Interaction
from segments.features import MODEL_FEATURES, Features
from segments.models.classifier import OnlineClassifier
from segments.models.clusters import (
    ARCHETYPES,
    CLUSTER_SPACE,
    Clusterer,
    cluster_values,
    nearest_archetype,
    scale,
    unscale,
)
from segments.models.examples import NOT_ACTIVITY, OpenExample, models_due
from segments.models.refits import BtydFit, Submit, fit_btyd
from segments.models.vector import Base, base_values, build_vector
from segments.models.versions import MODELS, version_string
from segments.state import BuyerDays, CustomerState, buyer_days
from segments.timefmt import DAY_MS

__all__ = ["SNAPSHOT_FORMAT", "OnLabel", "PartitionModels", "RefitInFlight"]

SNAPSHOT_FORMAT = 1
_ALIVE_CACHE_SIZE = 1 << 16
_VERSIONS_CACHE_SIZE = 1 << 12

class RefitInFlight(NamedTuple):
    """A BG/NBD refit started at ``started``, applied at ``apply_at`` (event time)."""

    started: int
    apply_at: int
    result: BtydFit | Future[BtydFit]  # a Future while a pool still runs it


OnLabel = Callable[[int, str, int, int, "float | None", dict[str, Any]], None]


ALL_MODELS = frozenset(MODELS)
"""What PartitionModels.on_due returns: the models whose scores are due."""
CLUSTER_ONLY = frozenset({"cluster"})
NO_MODELS: frozenset[str] = frozenset()


class PartitionModels:
    """Every model of one partition: scoring, delayed labels, BG/NBD refits, snapshots.

    Learned state (the classifiers, their metrics, the cluster centres, the BG/NBD
    parameters and refit bookkeeping) is what :meth:`snapshot` holds. Derived state
    (the buyers' BG/NBD summaries, cluster sizes and categories) is rebuilt from the
    customers' states by :meth:`reset_derived` + :meth:`observe_recovered`.
    """

    def __init__(self, partition: int, policies: PolicySettings, *, submit: Submit | None = None,
                 on_label: OnLabel | None = None) -> None:
        self.partition = partition
        self.policies = policies
        self.submit = submit
        self.on_label = on_label
        self.propensity = OnlineClassifier("propensity", policies.model_warm_after)
        self.churn = OnlineClassifier("churn", policies.model_warm_after)
        self.clusterer = Clusterer((scale(a.values) for a in ARCHETYPES), seed=partition)
        self.bg: BgNbdParams | None = None
        self.gg: GammaGammaParams | None = None
        self.refits = 0  # successful fits applied
        self.refit_started: int | None = None
        self.refit_applied: int | None = None
        self.refit_note = ""
        self.pending: RefitInFlight | None = None
        self.dirty = 0  # model updates since the last snapshot
        self._alive_for: BgNbdParams | None = None  # what _alive_cache was computed with
        self._alive_cache: dict[tuple[int, float, float], tuple[float, float]] = {}
        self._versions: dict[tuple[Any, ...], str] = {}
        self.reset_derived()

    # ---- derived state ---------------------------------------------------------

    def reset_derived(self) -> None:
        self._buyers: dict[str, BuyerDays] = {}
        self._sizes = [0] * len(ARCHETYPES)
        self._categories: list[Counter[str]] = [Counter() for _ in ARCHETYPES]

    def observe_recovered(self, key: str, state: CustomerState) -> None:
        self.update_buyer(key, state)
        entry = state.models.get("cluster")
        if entry:
            self._count(entry, 1)

    def update_buyer(self, key: str, state: CustomerState) -> None:
        """Keep the customer's BG/NBD summary (days) current: after each applied event."""
        days = buyer_days(state)
        if days is None:
            self._buyers.pop(key, None)
        else:
            self._buyers[key] = days

    def remove_customer(self, key: str, state: CustomerState) -> None:
        """An erased customer leaves the summaries, the cluster counts and the
        clusterer's sample."""
        self._buyers.pop(key, None)
        if self.clusterer.forget(key, state.models.get("cluster_sample")):
            self.dirty += 1
        entry = state.models.get("cluster")
        if entry:
            self._count(entry, -1)

    def _count(self, entry: list[Any], sign: int) -> None:
        cluster, category = entry[0], entry[1]
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
            entry = f.state.models.get("cluster")
            best = self._cluster_choice(f)
            if entry is not None and best != entry[0] and f.now < _stay_ends(entry,
                                                                            self.policies):
                return entry[0]  # held: the move happens at the stay's end (stamp)
            return best
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

    def _cluster_choice(self, f: Features) -> int:
        """Where the customer's values put them (hysteresis from their current
        cluster), before any minimum stay holds them."""
        def choose() -> int:
            entry = f.state.models.get("cluster")
            return self.clusterer.assign(self.cluster_vector(f), entry[0] if entry else None)
        result: int = f.memo("models/cluster_choice", choose)
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
        days = buyer_days(s) if bg is not None else None
        if bg is None or days is None:
            return None
        first, last, x, monetary = days
        recency = float(last - first) if x else 0.0
        summary = Summary(x, recency, float(max(now // DAY_MS - first, last - first)),
                          monetary)
        alive, expected = self._alive_expected(bg, summary)
        value = None
        if self.gg is not None:
            spend = expected_spend(self.gg, summary)
            if math.isfinite(spend):
                value = round(expected * spend, 2)
        return alive, expected, value

    def _alive_expected(self, bg: BgNbdParams, summary: Summary) -> tuple[float, float]:
        """p_alive (rounded) and expected purchase days in 365 days: pure functions of
        the parameters and (x, t_x, T) in whole days, which many customers and
        successive time transitions share, so they are kept until the next refit."""
        if bg is not self._alive_for:
            self._alive_for, self._alive_cache = bg, {}
        key = (summary.frequency, summary.recency, summary.age)
        cached = self._alive_cache.get(key)
        if cached is None:
            if len(self._alive_cache) >= _ALIVE_CACHE_SIZE:
                self._alive_cache.clear()
            cached = self._alive_cache[key] = (round(p_alive(bg, summary), 6),
                                               expected_purchases(bg, summary, 365.0))
        return cached

    def stamp(self, state: CustomerState, f: Features,
              scored: frozenset[str] = ALL_MODELS) -> None:
        """Keep in ``state.scores`` what the customer was scored with, and the cluster
        counts of :meth:`describe_clusters`. At a cluster stay's end (``scored`` only
        the clusterer) only the cluster is scored again."""
        if scored == CLUSTER_ONLY and state.scores:
            scores = {**state.scores, "cluster": f["cluster"]}
        else:
            scores = {name: f[name] for name in MODEL_FEATURES}
        scores["model_version"] = self.version_string(MODELS)
        state.scores = scores
        cluster = scores["cluster"]
        previous = state.models.get("cluster")
        since = (previous[2] if previous is not None and previous[0] == cluster
                 and len(previous) > 2 else f.now)
        # a move held back by cluster_min_stay: the due index wakes the customer at the
        # stay's end to make it (segments.models.examples.models_due)
        stay_ends = since + self.policies.cluster_min_stay_ms
        held = f.now < stay_ends and self._cluster_choice(f) != cluster
        entry = [cluster, _top_category(state.categories), since, stay_ends if held else 0]
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
            entry: OpenExample | None = models.get(clf.name)
            if entry is not None:
                if not (decides and entry.made_at < ts <= entry.horizon):
                    continue
                if f.now - entry.made_at < gap:
                    if not entry.decided:
                        models[clf.name] = entry._replace(decided=1)
                    continue
                self._resolve(clf, entry, label, f.now)
            self._capture(state, clf, f)
            captured = True
        if captured:
            self.dirty += 1
        self._observe(state, f)

    def on_due(self, state: CustomerState, instant: int, f: Features) -> frozenset[str]:
        """The clock reached ``instant``: examples whose horizon passed get their label
        (propensity 0, churn 1, unless an event already decided it), then a new example
        is captured at ``f.now``, unless the customer has been inactive for longer than
        ``model_inactive_after``. True when the customer's examples changed (its state
        needs a write: a label learned twice after a restart would skew the model).
        Returns the models whose scores are due at ``instant`` (the segments reading
        them are looked at): every model at a label horizon, the clusterer alone at
        the end of a cluster stay that held a move back, none otherwise."""
        captured = labelled = False
        models = state.models
        for clf, label in ((self.propensity, 0), (self.churn, 1)):
            entry: OpenExample | None = models.get(clf.name)
            if entry is None or entry.horizon > instant:
                continue
            labelled = True
            self._resolve(clf, entry, 1 - label if entry.decided else label, f.now)
            last_seen = state.last_seen
            if last_seen is None or f.now - last_seen > self.policies.model_inactive_after_ms:
                del models[clf.name]
                continue
            self._capture(state, clf, f)
            captured = True
        if captured:
            self.dirty += 1
        if labelled:  # a label horizon: a scoring instant, and an observation
            self._observe(state, f)
        held = models.get("cluster")
        if held and len(held) > 3 and 0 < held[3] <= instant:
            # a held cluster move's stay ended: the cluster is scored again (stamp sets
            # the next stay's end, if any)
            models["cluster"] = [*held[:3], 0]
            return ALL_MODELS if labelled else CLUSTER_ONLY
        return ALL_MODELS if labelled else NO_MODELS

    def _observe(self, state: CustomerState, f: Features) -> None:
        """The customer's values at a scoring instant, for the clusterer's sample."""
        models = state.models
        slot = models.get("cluster_sample")
        fits = self.clusterer.updates
        held = self.clusterer.observe(lambda: cluster_values(self.base(f)), f.now,
                                      state.customer_id, slot)
        if held != slot:
            models["cluster_sample"] = held
        if self.clusterer.updates != fits:
            self.dirty += 1

    def next_due(self, state: CustomerState) -> int | None:
        """When the customer's examples next need the clock: the earliest horizon."""
        return models_due(state)

    def _capture(self, state: CustomerState, clf: OnlineClassifier, f: Features) -> None:
        x = [round(v, 4) for v in self.vector(f)]
        p = round(clf.predict(x), 6) if clf.warm else None
        horizon = (self.policies.propensity_horizon_ms if clf is self.propensity
                   else self.policies.churn_horizon_ms)
        recency = f["days_since_last_purchase"]
        r, fr, m = f["rfm_r"], f["rfm_f"], f["rfm_m"]
        rfm = None if r is None or fr is None or m is None else r + fr + m
        baselines = [None if recency is None else round(recency, 6), rfm]
        state.models[clf.name] = OpenExample(f.now, f.now + horizon, x, p, baselines, 0)

    def _resolve(self, clf: OnlineClassifier, entry: OpenExample, label: int,
                 now: int) -> None:
        clf.learn(entry.x, label, entry.p)
        self.dirty += 1
        if self.on_label is not None:
            self.on_label(self.partition, clf.name, entry.made_at, label, entry.p,
                          {"days_since_last_purchase": entry.baselines[0],
                           "rfm_score": entry.baselines[1], "x": entry.x,
                           "resolved_at": now})

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
        if self.pending is None or self.pending.apply_at > now:
            return None
        return self.pending.apply_at

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
        self.pending = RefitInFlight(at, at + self.policies.btyd_apply_after_ms, result)

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
        """A record's ``model_version`` for the given models (segments.models.versions);
        kept per (models, counts), as every evaluation stamps one and counts move
        far less often than customers are evaluated."""
        key = (models if isinstance(models, tuple | frozenset) else tuple(models),
               self.propensity.labels, self.churn.labels, self.clusterer.updates,
               self.refits)
        text = self._versions.get(key)
        if text is None:
            if len(self._versions) >= _VERSIONS_CACHE_SIZE:
                self._versions.clear()
            text = self._versions[key] = version_string(self.partition, self.versions(),
                                                        key[0])
        return text

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
        fit = self.clusterer.fit
        for i, (archetype, centre) in enumerate(zip(ARCHETYPES, self.clusterer.centres,
                                                    strict=True)):
            plain = unscale(centre)
            nearest = nearest_archetype(centre)
            out.append({
                "cluster": i,
                "archetype": archetype.name,
                "description": archetype.description,
                # the id keeps its archetype's name; whether the centre the data put
                # there is nearer that archetype than any other
                "nearest_archetype": ARCHETYPES[nearest].name,
                "like_archetype": nearest == i,
                "centroid": {spec.name: round(v, 3)
                             for spec, v in zip(CLUSTER_SPACE, plain, strict=True)},
                "size": self._sizes[i],
                "populated": self.clusterer.active[i],
                "fit": None if fit is None else fit._asdict(),
                "top_categories": sorted(self._categories[i].items(),
                                         key=lambda kv: (-kv[1], kv[0]))[:5],
            })
        return out

    # ---- snapshots -------------------------------------------------------------

    def refit_running(self) -> bool:
        """A refit was submitted and its future is not done yet."""
        return self.running_fit() is not None

    def running_fit(self) -> Future[BtydFit] | None:
        """The future of the refit in flight while it is not done yet."""
        pending = self.pending
        if pending is None or isinstance(pending.result, BtydFit) or pending.result.done():
            return None
        return pending.result

    def snapshot(self) -> bytes:
        """The learned state as bytes (pickle; it stays in our own topic). A refit in
        flight is waited for, so the bytes hold its result."""
        pending = self.pending
        if pending is not None and not isinstance(pending.result, BtydFit):
            pending = self.pending = pending._replace(result=pending.result.result())
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
        pending = saved["pending"]  # a list in snapshots before RefitInFlight
        self.refit_note = saved["refit_note"]
        self.pending = None if pending is None else RefitInFlight(*pending)
        self.dirty = 0


def _params(params: Any) -> dict[str, float]:
    return {name: getattr(params, name) for name in params.__slots__}


def _stay_ends(entry: list[Any], policies: PolicySettings) -> int:
    """When the customer may leave the cluster ``entry`` holds (entries written before
    cluster_min_stay have no entry instant: at once)."""
    return entry[2] + policies.cluster_min_stay_ms if len(entry) > 2 else 0


def _top_category(categories: dict[str, int]) -> str | None:
    if not categories:
        return None
    return min(categories.items(), key=lambda kv: (-kv[1], kv[0]))[0]
