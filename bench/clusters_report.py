"""Do the discovered microsegments split the customers? Three public logs.

    SEGSTREAM_DATA=../shared/data .venv/bin/python bench/clusters_report.py [--write docs/models.md]

Each log (Online Retail II, the REES46 sample, the Taobao sample) is imported
(``segstream import``), and so is a simulated one (``segstream simulate
--customers 5000 --days 30 --seed 7``, the personas of ``make demo``), sorted by event
time and replayed through the worker's core
(:class:`~segments.processor.Processor`, 3 partitions as the worker's topic has, event
clock, default definitions), as ``segstream replay --offline`` does. At two fixed
instants, the log's middle event and its last, every customer of each partition is
looked at:

- **sizes**: the cluster the customer is in (``state.models["cluster"]``, what the
  ``cluster_*`` segments read), summed over partitions, by archetype name;
- **silhouette**: of the partition model's assignment at that instant (its current
  centres, with hysteresis from the customer's cluster) on the customers' vectors
  (the fixed clustering space), against scikit-learn's batch ``KMeans`` (k-means++,
  10 restarts) fitted on the very same vectors with the same k; on at most 4,000
  customers per partition, the same ones for both;
- **like their name**: per partition, how many of the populated ids have a centre
  nearer their own archetype than any other (``like_archetype`` in ``/clusters``);
- **flips**: how often a customer's cluster differs between two consecutive events of
  theirs, with the shipped hysteresis and ``cluster_min_stay`` and, in a second
  replay, with neither.

With ``--write FILE`` the tables replace the block between
``<!-- clusters-report:start -->`` and ``<!-- clusters-report:end -->`` in FILE.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson
from models_report import data_dir, load_events, sorted_lines, write_block

import segments.models.clusters as clusters
from segments.definitions import Definitions, load_default
from segments.engine import Engine
from segments.gate import Gate
from segments.models import ARCHETYPES
from segments.processor import MemoryStore, Processor, Source
from streams.tools.offline import partition_of

START, END = "<!-- clusters-report:start -->", "<!-- clusters-report:end -->"
PARTITIONS = 3
SILHOUETTE_SAMPLE = 4000
LOGS = (("Online Retail II", "online-retail", "online-retail-ii/online_retail_ii.parquet"),
        ("REES46 sample", "rees46", "rees46-sample/2019-Oct-sample.csv"),
        ("Taobao sample", "taobao", "taobao-userbehavior/UserBehavior.csv"))
SIMULATED = "simulated, 5,000 customers, 30 days"  # segstream simulate --seed 7


class Look(NamedTuple):
    """One partition at one instant."""

    partition: int
    customers: int
    k: int  # the latest fit's k (0: not fitted yet, the archetypes are the centres)
    online: float | None  # silhouette of the model's assignment
    batch: float | None  # silhouette of scikit-learn's KMeans, same k, same vectors
    sizes: Counter[str]
    named: tuple[int, int]  # populated ids whose centre is nearest their own archetype, all


class Replay(NamedTuple):
    events: int
    seconds: float
    looks: dict[str, list[Look]]  # "middle" / "end"
    pairs: int  # consecutive events of one customer
    flips: int  # ... after which the customer's cluster differs
    refitted: int  # ... of those, with a fit of the partition in between
    returns: int  # ... of those, back to the cluster held before the previous flip


def simulated() -> list[bytes]:
    from streams.tools.simulate import simulate

    return sorted_lines(list(simulate(customers=5000, days=30, seed=7,
                                      start=1_767_571_200_000)))


def silhouettes(x: Any, online: Any, k: int) -> tuple[float | None, float | None]:
    """The silhouette of ``online`` and of scikit-learn's KMeans with ``k`` on ``x``."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    if k < 2 or len(x) <= k:
        return None, None
    rng = np.random.default_rng(0)
    pick = rng.choice(len(x), size=min(len(x), SILHOUETTE_SAMPLE), replace=False)
    x, online = x[pick], online[pick]
    batch = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(x)
    ours = float(silhouette_score(x, online)) if len(set(online.tolist())) > 1 else None
    theirs = float(silhouette_score(x, batch)) if len(set(batch.tolist())) > 1 else None
    return ours, theirs


def look(processor: Processor, store: MemoryStore, owner: dict[str, int], wall: int
         ) -> list[Look]:
    out = []
    for number, models in processor.models_by_partition().items():
        vectors, assigned, sizes = [], [], Counter[str]()
        for key, state in store.data.items():
            if owner.get(key) != number:
                continue
            entry = state.models.get("cluster")
            current = entry[0] if entry else None
            if current is not None:
                sizes[ARCHETYPES[current].name] += 1
            f = processor.features(state, number, wall)
            vector = models.cluster_vector(f)
            vectors.append(vector)
            assigned.append(models.clusterer.assign(vector, current))
        fit = models.clusterer.fit
        k = 0 if fit is None else fit.k
        online, batch = silhouettes(np.asarray(vectors), np.asarray(assigned), k)
        populated = [c for c in models.describe_clusters() if c["populated"]]
        named = (sum(c["like_archetype"] for c in populated), len(populated))
        out.append(Look(number, len(vectors), k, online, batch, sizes, named))
    return out


def replay(lines: list[bytes], definitions: Definitions) -> Replay:
    store = MemoryStore()
    processor = Processor(Engine(definitions), Gate(), store, live=False)
    wall = 4_000_000_000_000  # far after every log: the event clock rules
    owner: dict[str, int] = {}
    last: dict[str, tuple[int | None, int]] = {}  # cluster, fits of the partition then
    before: dict[str, int | None] = {}  # the cluster before the customer's latest flip
    pairs = flips = refitted = returns = 0
    middle = orjson.loads(lines[len(lines) // 2])["ts"]
    looks: dict[str, list[Look]] = {}
    seconds = 0.0
    for number, line in enumerate(lines):
        event = orjson.loads(line)
        if "middle" not in looks and event["ts"] > middle:
            looks["middle"] = look(processor, store, owner, wall)
        key = event["customer_id"]
        partition = owner[key] = partition_of(line, PARTITIONS)
        started = time.perf_counter()
        processor.process(line, Source("interactions", partition, number), wall)
        seconds += time.perf_counter() - started
        state = store.data.get(key)
        entry = state.models.get("cluster") if state is not None else None
        cluster = entry[0] if entry else None
        models = processor.models(partition)
        fits = models.clusterer.updates if models is not None else 0
        if key in last:
            pairs += 1
            held, fits_then = last[key]
            if cluster != held:
                flips += 1
                refitted += fits != fits_then
                returns += key in before and before[key] == cluster
                before[key] = held
        last[key] = (cluster, fits)
    looks["end"] = look(processor, store, owner, wall)
    return Replay(len(lines), seconds, looks, pairs, flips, refitted, returns)


def without_stay(definitions: Definitions) -> Definitions:
    """The same definitions with ``cluster_min_stay = "0s"``."""
    return replace(definitions, policies=replace(definitions.policies, cluster_min_stay_ms=0))


@contextmanager
def hysteresis(value: float) -> Iterator[None]:
    saved = clusters.HYSTERESIS
    clusters.HYSTERESIS = value
    try:
        yield
    finally:
        clusters.HYSTERESIS = saved


def _duration(ms: int) -> str:
    """``3_600_000`` -> ``"1h"``: the largest unit that divides it."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def tables(results: list[tuple[str, Replay, Replay]], stay: str) -> list[str]:
    names = [a.name for a in ARCHETYPES]
    out = ["Sizes (customers in each `cluster_*` segment, all partitions) and silhouettes "
           "(per partition: the online assignment, then scikit-learn's `KMeans` with the "
           "same k on the same vectors):", "",
           "| log | instant | customers | " + " | ".join(f"`{n}`" for n in names)
           + " | k per partition | online silhouette | KMeans silhouette | online / KMeans "
           "| like their name |",
           "|---|---|---|" + "---|" * len(names) + "---|---|---|---|---|"]
    for title, run, _ in results:
        for instant, looks in run.looks.items():
            sizes: Counter[str] = sum((lk.sizes for lk in looks), Counter())
            ratios = [lk.online / lk.batch for lk in looks
                      if lk.online is not None and lk.batch]
            out.append(
                f"| {title} | {instant} | {sum(lk.customers for lk in looks):,} | "
                + " | ".join(f"{sizes[n]:,}" if sizes[n] else "" for n in names)
                + f" | {', '.join(str(lk.k) for lk in looks)} "
                f"| {', '.join(_fmt(lk.online) for lk in looks)} "
                f"| {', '.join(_fmt(lk.batch) for lk in looks)} "
                f"| {', '.join(f'{r:.0%}' for r in ratios)} "
                f"| {', '.join(f'{lk.named[0]}/{lk.named[1]}' for lk in looks)} |")
    out += ["", "Flips: a customer's cluster differs from the one at their previous event; "
            "of those, how many had a fit of the partition in between, and how many went "
            f"back to the cluster held before. With the shipped hysteresis "
            f"({clusters.HYSTERESIS}) and `cluster_min_stay` "
            f"({stay}), then with neither:", "",
            "| log | consecutive events | flips | flip rate | across a fit | back again "
            "| flips, neither | flip rate, neither |",
            "|---|---|---|---|---|---|---|---|"]
    for title, run, bare in results:
        out.append(f"| {title} | {run.pairs:,} | {run.flips:,} "
                   f"| {run.flips / max(run.pairs, 1):.2%} | {run.refitted:,} "
                   f"| {run.returns:,} | {bare.flips:,} "
                   f"| {bare.flips / max(bare.pairs, 1):.2%} |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, help="put the tables into this Markdown file")
    args = parser.parse_args(argv)
    data = data_dir()
    missing = [str(data / path) for _, _, path in LOGS if not (data / path).is_file()]
    if missing:
        print(f"clusters report: {missing[0]} not found (set SEGSTREAM_DATA)", file=sys.stderr)
        return 2
    results = []
    seconds = 0.0
    logs = [(title, lambda fmt=fmt, path=path: load_events(data / path, fmt))
            for title, fmt, path in LOGS]
    definitions = load_default()
    stay = _duration(definitions.policies.cluster_min_stay_ms)
    for title, lines_of in [*logs, (SIMULATED, simulated)]:
        lines = lines_of()
        run = replay(lines, definitions)
        with hysteresis(0.0):
            bare = replay(lines, without_stay(definitions))
        seconds += run.seconds
        print(f"{title}: {len(lines):,} events, {run.seconds:.0f} s", file=sys.stderr)
        results.append((title, run, bare))
    text = "\n".join([*tables(results, stay), "",
                      f"Replays took {seconds:.0f} s (as shipped); {platform.machine()}, "
                      f"{os.cpu_count()} CPUs, Python {platform.python_version()}. Command: "
                      "`SEGSTREAM_DATA=../shared/data .venv/bin/python "
                      "bench/clusters_report.py`."])
    print(text)
    return write_block(args.write, START, END, text) if args.write else 0


if __name__ == "__main__":
    raise SystemExit(main())
