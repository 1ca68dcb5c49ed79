"""``segstream models`` and ``segstream clusters``: the online models, from the workers.

Each worker holds the models of the partitions it owns, so both commands ask every
``--worker`` given (default: the local one) and merge the partitions. ``models`` shows
each classifier's version, labels and progressive metrics and the BG/NBD fit;
``clusters`` describes the discovered microsegments for a marketer: each partition's
latest fit (how many clusters the data holds, their silhouette), then per cluster the
archetype that names it, its centre in plain feature values, its size, top categories.
"""

from __future__ import annotations

import urllib.error
from typing import TYPE_CHECKING, Any

from streams.client.worker_api import WebAccess, get_json, said
from streams.errors import UserError

if TYPE_CHECKING:
    from rich.console import RenderableType

NONE_YET = "no partitions with models on these workers yet"

__all__ = ["clusters_tables", "collect", "format_clusters", "format_models", "models_tables"]


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
            auc, loss = _metric(m["roc_auc"]), _metric(m["log_loss"])
            lines.append(f"{partition:>9}  {name:<10}  {m['version']:<20}  {m['labels']:>6}  "
                         f"{m['positives']:>9}  {auc:>7}  {loss:>8}  {m['warm']}")
        btyd = models["btyd"]
        params = _fit(btyd)
        fits.append(f"{partition:>9}  btyd  {btyd['version']:<18}  {btyd['buyers']:>6} buyers  "
                    f"{params}")
    if not document["partitions"]:
        return NONE_YET
    return "\n".join([*lines, "", "partition  BG/NBD + Gamma-Gamma fit", *fits])


def format_clusters(document: dict[str, Any]) -> str:
    """Each partition's fit (k, silhouette), then per cluster: size over all
    partitions, archetype, and its centre in each partition that populates it."""
    if not document["partitions"]:
        return NONE_YET
    lines = [f"partition {partition}: {fit}" for partition, fit in _fits(document)]
    by_id = _by_cluster(document)
    for cid, entries in sorted(by_id.items()):
        first = entries[0][1]
        size = sum(c["size"] for _, c in entries)
        lines.append(f"cluster_{cid}  {first['archetype']}  ({size} customers)  "
                     f"{first['description']}")
        top = _top_categories(entries)
        if top:
            lines.append("  top categories  " + ", ".join(f"{n} ({k})" for n, k in top))
        for partition, c in entries:
            lines.append(f"  partition {partition}: {c['size']} customers; {_centre(c)}")
    return "\n".join(lines)


def _fits(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Each partition's latest fit, in words."""
    out = []
    for partition, clusters in document["partitions"].items():
        fit = clusters[0].get("fit") if clusters else None
        if fit is None:
            out.append((partition, "not fitted yet (the archetypes are the centres)"))
            continue
        out.append((partition, f"{fit['k']} clusters, silhouette "
                               f"{fit['silhouette']:.3f}, fitted after {fit['seen']:,} "
                               "scoring instants"))
    return out


def _centre(cluster: dict[str, Any]) -> str:
    if not cluster.get("populated", True):
        return "empty in this partition's fit"
    centre = "centre " + ", ".join(f"{k}={v:g}" for k, v in cluster["centroid"].items())
    if cluster.get("like_archetype", True):
        return centre
    return f"{centre} (unlike its name: nearest to {cluster['nearest_archetype']})"


def _fit(btyd: dict[str, Any]) -> str:
    bg = btyd.get("bg_nbd")
    return "not fitted yet" if not bg else ", ".join(
        f"{k}={v:.4g}" for k, v in {**bg, **(btyd.get("gamma_gamma") or {})}.items())


def _by_cluster(document: dict[str, Any]) -> dict[int, list[tuple[str, dict[str, Any]]]]:
    """Each cluster id's (partition, cluster) entries."""
    by_id: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for partition, clusters in document["partitions"].items():
        for cluster in clusters:
            by_id.setdefault(cluster["cluster"], []).append((partition, cluster))
    return by_id


def _top_categories(entries: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, int]]:
    """The five commonest categories over a cluster's partitions."""
    categories: dict[str, int] = {}
    for _, c in entries:
        for name, count in c["top_categories"]:
            categories[name] = categories.get(name, 0) + count
    return sorted(categories.items(), key=lambda kv: (-kv[1], kv[0]))[:5]


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def models_tables(document: dict[str, Any]) -> RenderableType:
    """:func:`format_models` for a terminal: the classifiers' table, then the fits'."""
    from rich.console import Group

    from streams.terminal import table

    if not document["partitions"]:
        return NONE_YET
    rows, fits = [], []
    for partition, models in document["partitions"].items():
        for name in ("propensity", "churn"):
            m = models[name]
            rows.append([partition, name, m["version"], str(m["labels"]), str(m["positives"]),
                         _metric(m["roc_auc"]), _metric(m["log_loss"]), str(m["warm"])])
        btyd = models["btyd"]
        params = _fit(btyd)
        fits.append([partition, btyd["version"], str(btyd["buyers"]), params])
    return Group(
        table(("partition", "model", "version", "labels", "positives", "roc_auc", "log_loss",
               "warm"), rows, right=(0, 3, 4, 5, 6)),
        table(("partition", "BG/NBD version", "buyers", "BG/NBD + Gamma-Gamma fit"), fits,
              right=(0, 2)))


def clusters_tables(document: dict[str, Any]) -> RenderableType:
    """:func:`format_clusters` for a terminal: the fits, one row per cluster (size over
    all partitions, archetype, top categories, description), then the centres."""
    from rich.console import Group

    from streams.terminal import table

    if not document["partitions"]:
        return NONE_YET
    by_id = _by_cluster(document)
    rows, centres = [], []
    for cid, entries in sorted(by_id.items()):
        first = entries[0][1]
        top = _top_categories(entries)
        rows.append([f"cluster_{cid}", first["archetype"],
                     str(sum(c["size"] for _, c in entries)),
                     ", ".join(f"{n} ({k})" for n, k in top) or "-", first["description"]])
        centres.extend([f"cluster_{cid}", partition, str(c["size"]), _centre(c)]
                       for partition, c in entries)
    return Group(
        table(("partition", "latest fit"), [list(row) for row in _fits(document)], right=(0,)),
        table(("cluster", "archetype", "customers", "top categories", "description"), rows,
              right=(2,)),
        table(("cluster", "partition", "customers", "centre"), centres, right=(1, 2)))
