"""The figures of the live page ``/dashboard``: one worker's, and the group's merged.

Pure: a worker's figures are read from its processor, its lag and the triggers it last
sent (:class:`RecentTriggers`, noted as the worker emits them); :func:`merge` sums the
figures of every worker in the group, which ``streams/web.py`` gathers over HTTP. The
page (:mod:`streams.dashboard_html`) only draws what these documents say.

>>> meter = RateMeter(window_s=10.0)
>>> meter.rate(0.0, 0) is None, meter.rate(2.0, 100), meter.rate(4.0, 300)
(True, 50.0, 75.0)
>>> merge([{"url": "http://a", "error": "timed out"}])["totals"]["workers_answering"]
0
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from segments.processor import Processor
from segments.records import MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, Output

__all__ = ["RECENT", "RateMeter", "RecentTriggers", "merge", "worker_figures"]

#: how many of the latest triggers (sent, and withheld) a worker keeps and the page shows
RECENT = 20
#: the counters summed over the workers
TOTALS = ("consumed", "applied", "duplicates", "dead_lettered")


class RecentTriggers:
    """The latest triggers sent and withheld, newest first; the worker notes what it
    emits. Only micro-moment records are kept (the record itself: noting is on the
    batch path, so it is shortened to what the page shows only when the page asks)."""

    def __init__(self, size: int = RECENT) -> None:
        self.sent: deque[Mapping[str, Any]] = deque(maxlen=size)
        self.withheld: deque[Mapping[str, Any]] = deque(maxlen=size)

    def note(self, records: Iterable[Output]) -> None:
        sent, withheld = self.sent, self.withheld
        for record in records:
            topic = record.topic
            if topic == MICRO_MOMENTS:
                sent.appendleft(record.value)
            elif topic == MICRO_MOMENTS_SUPPRESSED:
                withheld.appendleft(record.value)

    def shown(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The sent and the withheld triggers as the page shows them."""
        return [_trigger(v) for v in self.sent], [_trigger(v) for v in self.withheld]


def _trigger(value: Mapping[str, Any]) -> dict[str, Any]:
    shown = {key: value.get(key) for key in ("at", "moment", "customer_id", "score",
                                             "trigger_id")}
    shown["outcome"] = value.get("suppressed", "sent")
    if "held_until" in value:
        shown["held_until"] = value["held_until"]
    return shown


class RateMeter:
    """Events per second over the last ``window_s`` seconds, from the samples of the
    consumed count taken each time the figures are read (the page polls every second)."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int]] = deque()

    def rate(self, now: float, consumed: int) -> float | None:
        """The rate since the oldest sample in the window; None without one."""
        samples = self.samples
        while samples and now - samples[0][0] > self.window_s:
            samples.popleft()
        samples.append((now, consumed))
        first_at, first = samples[0]
        if now - first_at <= 0:
            return None
        return round((consumed - first) / (now - first_at), 1)


def _clusters(described: Mapping[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The clusters of several partitions as one list: ids mean the same on every
    partition (each cluster starts at the same archetype), so sizes and top categories
    add up; the centre shown is the size-weighted mean of the partitions' centres.
    ``unlike_name`` lists the partitions whose populated centre of that id is nearer
    another archetype than its own (the id keeps its name; its customers may not fit
    it), with the archetype it is nearest."""
    merged: dict[int, dict[str, Any]] = {}
    for partition, clusters in sorted(described.items()):
        for cluster in clusters:
            into = merged.setdefault(cluster["cluster"], {
                "cluster": cluster["cluster"], "archetype": cluster["archetype"],
                "description": cluster["description"], "size": 0, "partitions": 0,
                "unlike_name": [], "_categories": Counter(), "_centroid": Counter()})
            size = int(cluster["size"])
            into["size"] += size
            into["partitions"] += 1
            if cluster.get("populated") and cluster.get("like_archetype") is False:
                into["unlike_name"].append({"partition": partition,
                                            "nearest": cluster.get("nearest_archetype")})
            into["_categories"].update(dict(cluster["top_categories"]))
            for name, value in cluster["centroid"].items():
                into["_centroid"][name] += value * size
    out = []
    for number in sorted(merged):
        cluster = merged[number]
        categories, centroid = cluster.pop("_categories"), cluster.pop("_centroid")
        size = cluster["size"]
        cluster["top_categories"] = sorted(categories.items(),
                                           key=lambda kv: (-kv[1], kv[0]))[:5]
        cluster["centroid"] = ({name: round(total / size, 3)
                                for name, total in sorted(centroid.items())}
                               if size else {})
        out.append(cluster)
    return out


def worker_figures(processor: Processor, lag: Callable[[], dict[int, int]],
                   recent: RecentTriggers, meter: RateMeter, *, url: str, now: float,
                   clusters: Callable[[], Mapping[int, list[dict[str, Any]]]]
                   ) -> dict[str, Any]:
    """What one worker shows of itself: its counters (as ``/stats`` counts them, every
    partition it has processed), events/s, lag, dead letters by reason, and, for the
    partitions it holds now, segment sizes and its clusters; triggers by moment and
    outcome and the latest triggers it sent and withheld."""
    stats = processor.stats
    totals = {key: 0 for key in TOTALS}
    dead: Counter[str] = Counter()
    triggers: Counter[tuple[str, str]] = Counter()
    for s in stats.values():
        counted = s.as_dict()
        for key in TOTALS:
            totals[key] += counted[key]
        dead.update(s.dead_lettered)
        triggers.update(s.triggers)
    held = sorted(processor.partitions)
    members: Counter[str] = Counter()
    for partition in held:  # sizes of the partitions held: a moved one counts once
        if partition in stats:
            members.update(stats[partition].members)
    behind = lag()
    by_moment: dict[str, dict[str, int]] = {}
    for (moment, outcome), n in sorted(triggers.items()):
        by_moment.setdefault(moment, {})[outcome] = n
    shown_sent, shown_withheld = recent.shown()
    return {
        "url": url,
        "partitions": held,
        "totals": totals,
        "events_per_second": meter.rate(now, totals["consumed"]),
        "lag": {str(p): n for p, n in sorted(behind.items())},
        "lag_total": sum(behind.values()),
        "dead_letters": dict(sorted(dead.items())),
        "segments": {name: n for name, n in sorted(members.items()) if n},
        "triggers": by_moment,
        "recent_sent": shown_sent,
        "recent_withheld": shown_withheld,
        "clusters_by_partition": {str(p): c for p, c in sorted(clusters().items())},
    }


def _newest(lists: Iterable[list[dict[str, Any]]], size: int) -> list[dict[str, Any]]:
    merged = [t for triggers in lists for t in triggers]
    merged.sort(key=lambda t: str(t.get("at") or ""), reverse=True)
    return merged[:size]


def merge(workers: list[dict[str, Any]], size: int = RECENT) -> dict[str, Any]:
    """The group's figures from each worker's (:func:`worker_figures`, or ``{"url",
    "error"}`` for one that did not answer): totals summed, lag and the clusters of each
    partition from the worker holding it, the newest triggers of all; each worker's
    own row kept (without its lists) for the per-worker table."""
    answered = [w for w in workers if "error" not in w]
    totals = {key: sum(w["totals"][key] for w in answered) for key in TOTALS}
    rates = [w["events_per_second"] for w in answered if w["events_per_second"] is not None]
    lag: dict[str, int] = {}
    dead: Counter[str] = Counter()
    segments: Counter[str] = Counter()
    triggers: dict[str, Counter[str]] = {}
    described: dict[int, list[dict[str, Any]]] = {}
    for worker in answered:
        lag.update(worker["lag"])
        dead.update(worker["dead_letters"])
        segments.update(worker["segments"])
        for moment, outcomes in worker["triggers"].items():
            triggers.setdefault(moment, Counter()).update(outcomes)
        for partition, clusters in worker["clusters_by_partition"].items():
            described[int(partition)] = clusters
    rows = [{key: value for key, value in w.items()
             if key not in ("recent_sent", "recent_withheld", "clusters_by_partition",
                            "segments", "triggers")}
            for w in workers]
    return {
        "workers": sorted(rows, key=lambda w: str(w["url"])),
        "totals": {**totals,
                   "events_per_second": round(sum(rates), 1) if rates else None,
                   "lag": sum(lag.values()),
                   "workers": len(workers), "workers_answering": len(answered)},
        "lag": dict(sorted(lag.items(), key=lambda kv: int(kv[0]))),
        "dead_letters": dict(sorted(dead.items())),
        "segments": dict(sorted(segments.items())),
        "triggers": {m: dict(sorted(o.items())) for m, o in sorted(triggers.items())},
        "recent_sent": _newest((w["recent_sent"] for w in answered), size),
        "recent_withheld": _newest((w["recent_withheld"] for w in answered), size),
        "clusters": _clusters(described),
    }
