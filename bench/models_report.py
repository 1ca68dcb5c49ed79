"""Do the online models predict better than the rules they replace? Online Retail II.

    SEGSTREAM_DATA=../shared/data .venv/bin/python bench/models_report.py [--write docs/models.md]

Imports the Online Retail II log (``segstream import online-retail``), sorts it by
event time, and replays it through the worker's core (:class:`~segments.processor.
Processor`, 3 partitions as the worker's topic has, event clock, default definitions),
exactly as ``segstream replay --offline`` does. Every labelled example the models
resolve (see docs/models.md: a prediction captured at ``made_at``, labelled when the
outcome is known) is collected with:

- ``p``: the model's prediction at ``made_at``, made before it learnt that label
  (progressive validation: each example is scored, then learnt);
- ``recency``: the recency-only baseline, ``days_since_last_purchase`` at ``made_at``
  (more days: less likely to buy, more likely to churn);
- ``rfm``: the static RFM score ``rfm_r + rfm_f + rfm_m`` at ``made_at`` (the quintile
  scores of the segmentation the models replace; higher: more likely to buy).

ROC AUC is exact (Mann-Whitney, ties counted half) over the examples where all three
scores exist (the model warm, the partition's RFM scored, the customer a buyer), so
the three columns rank the very same examples. Log loss is the model's. With
``--write FILE`` the table replaces the block between ``<!-- models-report:start -->``
and ``<!-- models-report:end -->`` in FILE.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from scipy.stats import rankdata

from segments.definitions import load_default
from segments.engine import Engine
from segments.gate import Gate
from segments.processor import MemoryStore, Processor, Source
from streams.tools.importers import FORMATS, ImportReport
from streams.tools.offline import partition_of

START, END = "<!-- models-report:start -->", "<!-- models-report:end -->"
PARTITIONS = 3


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Exact ROC AUC: the probability a positive outranks a negative (ties half).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> roc_auc([0, 1], [0.5, 0.5])
    0.5
    """
    y = np.asarray(labels, dtype=bool)
    positives, negatives = int(y.sum()), int((~y).sum())
    if not positives or not negatives:
        return math.nan
    ranks = rankdata(np.asarray(scores, dtype=float))
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(labels: Sequence[int], probabilities: Sequence[float]) -> float:
    """Mean negative log likelihood, probabilities clipped to [1e-15, 1 - 1e-15].

    >>> round(log_loss([1, 0], [0.9, 0.2]), 4)
    0.1643
    """
    p = np.clip(np.asarray(probabilities, dtype=float), 1e-15, 1 - 1e-15)
    y = np.asarray(labels, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def load_events(source: Path) -> list[bytes]:
    report = ImportReport()
    events = list(FORMATS["online-retail"](source, report))
    events.sort(key=lambda e: (e["ts"], e["event_id"]))
    return [orjson.dumps(e) for e in events]


def collect(lines: list[bytes]) -> tuple[dict[str, list[tuple[Any, ...]]], float]:
    """Replay; every resolved example as (label, p, recency, rfm, made_at) per model."""
    examples: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

    def on_label(partition: int, model: str, made_at: int, label: int, p: float | None,
                 baselines: dict[str, Any]) -> None:
        examples[model].append((label, p, baselines.get("days_since_last_purchase"),
                                baselines.get("rfm_score"), made_at))

    processor = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False,
                          on_label=on_label)
    wall = time.time_ns() // 1_000_000
    started = time.perf_counter()
    for number, line in enumerate(lines):
        processor.process(line, Source("online-retail", partition_of(line, PARTITIONS),
                                       number), wall)
    return examples, time.perf_counter() - started


def second_year(examples: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    """The examples made a year or more after the first one: every model has seen
    whole label horizons by then, so early warm-up does not weigh on the figures."""
    first = min(e[4] for every in examples.values() for e in every)
    return {m: [e for e in every if e[4] >= first + 365 * 86_400_000]
            for m, every in examples.items()}


def table(examples: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    rows = ["| model | examples compared (positives) | model AUC | recency-only AUC "
            "| static RFM AUC | model log loss | all labelled examples |",
            "|---|---|---|---|---|---|---|"]
    # a higher score must mean the positive label: buying (propensity), churning (churn)
    signs = {"propensity": (-1.0, 1.0), "churn": (1.0, -1.0)}
    features = {"propensity": "purchase_propensity", "churn": "churn_risk"}
    for model in sorted(examples):
        every = examples[model]
        usable = [e for e in every if None not in e[:4]]
        if not usable:
            rows.append(f"| `{features.get(model, model)}` | 0 | | | | | {len(every):,} |")
            continue
        y = [e[0] for e in usable]
        recency_sign, rfm_sign = signs.get(model, (1.0, 1.0))
        rows.append(
            f"| `{features.get(model, model)}` | {len(usable):,} ({sum(y):,}) "
            f"| **{roc_auc(y, [e[1] for e in usable]):.3f}** "
            f"| {roc_auc(y, [recency_sign * e[2] for e in usable]):.3f} "
            f"| {roc_auc(y, [rfm_sign * e[3] for e in usable]):.3f} "
            f"| {log_loss(y, [e[1] for e in usable]):.3f} | {len(every):,} |")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, help="put the table into this Markdown file")
    args = parser.parse_args(argv)
    data = Path(os.environ.get("SEGSTREAM_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))
    source = data / "online-retail-ii" / "online_retail_ii.parquet"
    if not source.is_file():
        print(f"models report: {source} not found (set SEGSTREAM_DATA)", file=sys.stderr)
        return 2
    lines = load_events(source)
    examples, seconds = collect(lines)
    out = ["Whole log (every example scored by a warm model):", "", *table(examples), "",
           "Examples made in the log's second year:", "", *table(second_year(examples)), ""]
    out.append(f"{len(lines):,} events replayed in {seconds:.0f} s; "
               f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
               f"{platform.python_version()}. Command: `SEGSTREAM_DATA=../shared/data "
               f".venv/bin/python bench/models_report.py`.")
    text = "\n".join(out)
    print(text)
    if args.write:
        doc = args.write.read_text()
        if START not in doc or END not in doc:
            print(f"{args.write}: no {START} ... {END} block to replace", file=sys.stderr)
            return 2
        head, rest = doc.split(START, 1)
        _, tail = rest.split(END, 1)
        args.write.write_text(f"{head}{START}\n{text}\n{END}{tail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
