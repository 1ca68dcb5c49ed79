"""The worker's HTTP views: health, accounting, Prometheus metrics."""

from __future__ import annotations

from typing import Any

from segments.definitions import Definitions
from segments.processor import Processor
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
        "clocks": {str(p): c for p, c in sorted(processor.clocks.items())},
    }


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
