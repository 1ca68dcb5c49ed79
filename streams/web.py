"""The worker's HTTP views: health, accounting, Prometheus metrics, customer profiles,
the online models and the clusters they found."""

from __future__ import annotations

import time
from typing import Any

from segments.definitions import Definitions
from segments.processor import Processor
from segments.timefmt import format_ts
from streams.metrics import CONTENT_TYPE, Metrics
from streams.tables import TableStore

__all__ = ["install"]


def stats_document(processor: Processor) -> dict[str, Any]:
    partitions = {str(p): s.as_dict() for p, s in sorted(processor.stats.items())}
    totals = {k: sum(p[k] for p in partitions.values())
              for k in ("consumed", "applied", "duplicates", "dead_lettered")}
    return {
        "totals": totals,
        "invariant_holds": totals["consumed"] == (
            totals["applied"] + totals["duplicates"] + totals["dead_lettered"]),
        "partitions": partitions,
        "clocks": {str(n): p.clock for n, p in sorted(processor.partitions.items())
                   if p.clock is not None},
    }


def profile_document(processor: Processor, store: TableStore, key: str,
                     wall: int) -> dict[str, Any] | None:
    """One customer as marketing automation reads it: segments, features, scores."""
    state = store.get(key)
    if state is None:
        return None
    partition = store.partition_of(key)
    features = processor.features(state, partition, wall)
    now = features.now
    values = {name: features[name] for name in features}
    values.update({f"profile.{k}": v for k, v in sorted(state.profile.items())})
    return {
        "customer_id": key,
        "as_of": format_ts(now),
        "segments": list(state.segments),
        "features": values,
        "scores": dict(state.scores),
        "cart": [{"product_id": pid, "quantity": item[0], "price": item[1],
                  "category": item[2]} for pid, item in state.cart.items()],
        "consent": {"marketing": state.consent_marketing,
                    "personalization": state.consent_personalization},
        "pending_triggers": [{"moment": t.moment, "kind": t.kind, "due": format_ts(t.due)}
                             for t in state.moments.get("pending", [])],
        "next_change_due": None if state.due is None else format_ts(state.due),
        "first_seen": None if state.first_seen is None else format_ts(state.first_seen),
        "last_seen": None if state.last_seen is None else format_ts(state.last_seen),
        "partition": partition,
    }


def models_document(processor: Processor) -> dict[str, Any]:
    """This worker's partitions' models: versions, progressive metrics, BG/NBD fits."""
    return {"partitions": {str(p): m.metrics()
                           for p, m in processor.models_by_partition().items()}}


def clusters_document(processor: Processor) -> dict[str, Any]:
    """This worker's clusters per partition, described for a marketer. Ids mean the
    same on every partition: each cluster starts at the same archetype."""
    return {"partitions": {str(p): m.describe_clusters()
                           for p, m in processor.models_by_partition().items()}}


def install(app: Any, processor: Processor, store: TableStore, definitions: Definitions,
            metrics: Metrics) -> None:
    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok", "customers": len(store),
                          "definitions_version": definitions.version})

    @app.page("/stats")
    async def stats(web: Any, request: Any) -> Any:
        return web.json(stats_document(processor))

    @app.page("/metrics")
    async def prometheus(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), content_type=CONTENT_TYPE)

    @app.page("/models")
    async def models(web: Any, request: Any) -> Any:
        return web.json(models_document(processor))

    @app.page("/clusters")
    async def clusters(web: Any, request: Any) -> Any:
        return web.json(clusters_document(processor))

    @app.page("/profile/{customer}")
    @app.table_route(table=store.table, match_info="customer")
    async def profile(web: Any, request: Any, customer: str) -> Any:
        # table_route sends the request on to the worker that owns the key
        document = profile_document(processor, store, customer, time.time_ns() // 1_000_000)
        if document is None:
            return web.json({"error": f"no customer {customer!r} on this worker",
                             "customer_id": customer}, status=404)
        return web.json(document)
