"""The worker's HTTP views: health, accounting, Prometheus metrics, customer profiles,
the online models and the clusters they found, and the live page ``/dashboard``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from segments.definitions import Definitions
from segments.processor import Processor
from segments.timefmt import format_ts
from streams import dashboard_html
from streams.dashboard import RateMeter, RecentTriggers, merge, worker_figures
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


#: how long the worker serving ``/dashboard/data`` waits for each other worker's figures
PEER_TIMEOUT_S = 2.0


def group_urls(app: Any) -> list[str]:
    """Every worker of the group by its advertised web URL (``--web-advertise``): the
    URLs the group's assignment carries, as for forwarding profile requests; this
    worker's own first, alone before the first assignment."""
    own = str(app.conf.canonical_url).rstrip("/")
    others = {str(url).rstrip("/") for url in app.router.tables_metadata()}
    return [own, *sorted(others - {own})]


async def peer_figures(app: Any, url: str, authorization: str | None) -> dict[str, Any]:
    """Another worker's own figures (``/dashboard/data?scope=worker``), with the token
    of the request; ``{"url", "error"}`` when it does not answer in time."""
    import aiohttp

    headers = {} if authorization is None else {"Authorization": authorization}
    try:
        async with app.http_client.get(
                f"{url}/dashboard/data", params={"scope": "worker"}, headers=headers,
                timeout=aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)) as response:
            if response.status != 200:
                return {"url": url, "error": f"HTTP {response.status}"}
            figures: dict[str, Any] = await response.json()
            return figures
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        return {"url": url, "error": f"{type(exc).__name__}: {exc}".rstrip(": ")}


def install(app: Any, processor: Processor, store: TableStore, definitions: Definitions,
            metrics: Metrics, lag: Callable[[], dict[int, int]] | None = None,
            recent: RecentTriggers | None = None) -> None:
    lag = lag or dict
    recent = recent or RecentTriggers()
    meter = RateMeter()

    def own_figures() -> dict[str, Any]:
        return worker_figures(
            processor, lag, recent, meter, url=str(app.conf.canonical_url).rstrip("/"),
            now=time.monotonic(),
            clusters=lambda: {p: m.describe_clusters()
                              for p, m in processor.models_by_partition().items()})

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

    @app.page("/dashboard")
    async def dashboard(web: Any, request: Any) -> Any:
        # the page holds no figures: it reads them from /dashboard/data with the token
        return web.html(dashboard_html.page())

    @app.page("/dashboard/data")
    async def dashboard_data(web: Any, request: Any) -> Any:
        mine = own_figures()
        if request.query.get("scope") == "worker":
            return web.json(mine)
        authorization = request.headers.get("Authorization")
        others = await asyncio.gather(*(peer_figures(app, url, authorization)
                                        for url in group_urls(app)[1:]))
        return web.json(merge([mine, *others]))
