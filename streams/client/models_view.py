"""``segstream models`` and ``segstream clusters``: the online models, from the workers.

Each worker holds the models of the partitions it owns, so both commands ask every
``--worker`` given (default: the local one) and merge the partitions. ``models`` shows
each classifier's version, labels and progressive metrics and the BG/NBD fit;
``clusters`` describes the discovered microsegments for a marketer: the archetype
each started from, its centre in plain feature values, its size, top categories.
"""

from __future__ import annotations

import urllib.error
from typing import Any

from streams.client.worker_api import WebAccess, get_json, said
from streams.errors import UserError

__all__ = ["collect", "format_clusters", "format_models"]


def collect(workers: list[str], path: str, access: WebAccess | None = None) -> dict[str, Any]:
    """``GET path`` (``/models`` or ``/clusters``) of each worker, partitions merged."""
    partitions: dict[str, Any] = {}
    for worker in workers:
        try:
            document = get_json(worker, path, access=access)
        except urllib.error.HTTPError as exc:
            raise UserError(f"worker at {worker} answered HTTP {exc.code} for {path}"
                            f"{said(exc)}") from exc
        partitions.update(document.get("partitions", {}))
    return {"partitions": dict(sorted(partitions.items(), key=lambda kv: int(kv[0])))}


def format_models(document: dict[str, Any]) -> str:
    """One line per partition and classifier, then the BG/NBD fits."""
    lines = ["partition  model       version               labels  positives  roc_auc  "
             "log_loss  warm"]
    fits = []
    for partition, models in document["partitions"].items():
        for name in ("propensity", "churn"):
            m = models[name]
            auc = "-" if m["roc_auc"] is None else f"{m['roc_auc']:.3f}"
            loss = "-" if m["log_loss"] is None else f"{m['log_loss']:.3f}"
            lines.append(f"{partition:>9}  {name:<10}  {m['version']:<20}  {m['labels']:>6}  "
                         f"{m['positives']:>9}  {auc:>7}  {loss:>8}  {m['warm']}")
        btyd = models["btyd"]
        bg = btyd.get("bg_nbd")
        params = "not fitted yet" if not bg else ", ".join(
            f"{k}={v:.4g}" for k, v in {**bg, **(btyd.get("gamma_gamma") or {})}.items())
        fits.append(f"{partition:>9}  btyd  {btyd['version']:<18}  {btyd['buyers']:>6} buyers  "
                    f"{params}")
    if not document["partitions"]:
        return "no partitions with models on these workers yet"
    return "\n".join([*lines, "", "partition  BG/NBD + Gamma-Gamma fit", *fits])


def format_clusters(document: dict[str, Any]) -> str:
    """Per cluster: size over all partitions, archetype, centre per partition."""
    if not document["partitions"]:
        return "no partitions with models on these workers yet"
    lines = []
    by_id: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for partition, clusters in document["partitions"].items():
        for cluster in clusters:
            by_id.setdefault(cluster["cluster"], []).append((partition, cluster))
    for cid, entries in sorted(by_id.items()):
        first = entries[0][1]
        size = sum(c["size"] for _, c in entries)
        lines.append(f"cluster_{cid}  {first['archetype']}  ({size} customers)  "
                     f"{first['description']}")
        categories: dict[str, int] = {}
        for _, c in entries:
            for name, count in c["top_categories"]:
                categories[name] = categories.get(name, 0) + count
        if categories:
            top = sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
            lines.append("  top categories  " + ", ".join(f"{n} ({k})" for n, k in top))
        for partition, c in entries:
            centre = ", ".join(f"{k}={v:g}" for k, v in c["centroid"].items())
            lines.append(f"  partition {partition}: {c['size']} customers; centre {centre}")
    return "\n".join(lines)
