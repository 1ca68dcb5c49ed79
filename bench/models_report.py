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
  scores of the segmentation the models replace; higher: more likely to buy);
- ``x``: the feature vector the model scored.

ROC AUC is exact (Mann-Whitney, ties counted half) over the examples where all three
scores exist (the model warm, the partition's RFM scored, the customer a buyer), so
the three columns rank the very same examples. Log loss is the model's.

Whether a score of 0.7 means 70 %: the Brier score, the expected calibration error
(ECE: the gap between mean score and observed rate per tenth of the score range,
weighted by the examples in it) and a 10-bin reliability table of the second year;
then what four online recalibrators (isotonic or Platt, per partition, on two windows
of the labels known at each score's instant) would have served instead.

An honest upper bound: scikit-learn's ``HistGradientBoostingClassifier`` trained with
hindsight, in batch, on the first year's examples (the same vectors ``x`` and labels)
and tested on the second year's, the very examples the online model is compared on.
With
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
FEATURE_NAMES = {"propensity": "purchase_propensity", "churn": "churn_risk"}


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


def data_dir() -> Path:
    """Where the data sets are: ``SEGSTREAM_DATA``, default ``../shared/data``."""
    return Path(os.environ.get("SEGSTREAM_DATA",
                               Path(__file__).resolve().parents[2] / "shared" / "data"))


def load_events(source: Path, fmt: str = "online-retail") -> list[bytes]:
    """A public log imported (``segstream import FORMAT``), as JSON lines in time order."""
    return sorted_lines(list(FORMATS[fmt](source, ImportReport())))


def sorted_lines(events: list[dict[str, Any]]) -> list[bytes]:
    events.sort(key=lambda e: (e["ts"], e["event_id"]))
    return [orjson.dumps(e) for e in events]


def write_block(path: Path, start: str, end: str, text: str) -> int:
    """Put ``text`` between the ``start`` and ``end`` markers of the Markdown file."""
    doc = path.read_text()
    if start not in doc or end not in doc:
        print(f"{path}: no {start} ... {end} block to replace", file=sys.stderr)
        return 2
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{text}\n{end}{tail}")
    return 0


def collect(lines: list[bytes]) -> tuple[dict[str, list[tuple[Any, ...]]], float]:
    """Replay; every resolved example as (label, p, recency, rfm, made_at, x,
    resolved_at, partition) per model, in the order they were learnt."""
    examples: dict[str, list[tuple[Any, ...]]] = defaultdict(list)

    def on_label(partition: int, model: str, made_at: int, label: int, p: float | None,
                 captured: dict[str, Any]) -> None:
        examples[model].append((label, p, captured.get("days_since_last_purchase"),
                                captured.get("rfm_score"), made_at, captured["x"],
                                captured["resolved_at"], partition))

    processor = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False,
                          on_label=on_label)
    wall = time.time_ns() // 1_000_000
    started = time.perf_counter()
    for number, line in enumerate(lines):
        processor.process(line, Source("online-retail", partition_of(line, PARTITIONS),
                                       number), wall)
    return examples, time.perf_counter() - started


def brier(labels: Sequence[int], probabilities: Sequence[float]) -> float:
    """Mean squared gap between probability and outcome (0 is perfect).

    >>> brier([1, 0], [0.9, 0.2])
    0.025
    """
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=float)
    return round(float(np.mean((p - y) ** 2)), 12)


def reliability(labels: Sequence[int], probabilities: Sequence[float],
                bins: int = 10) -> list[tuple[float, float, int, float, float]]:
    """Per tenth of [0, 1]: (low, high, examples, mean score, observed rate); bins
    without examples are left out.

    >>> reliability([0, 1, 1], [0.05, 0.95, 0.91])
    [(0.0, 0.1, 1, 0.05, 0.0), (0.9, 1.0, 2, 0.93, 1.0)]
    """
    p, y = np.asarray(probabilities, dtype=float), np.asarray(labels, dtype=float)
    index = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        inside = index == b
        if inside.any():
            rows.append((b / bins, (b + 1) / bins, int(inside.sum()),
                         round(float(p[inside].mean()), 12), float(y[inside].mean())))
    return rows


def expected_calibration_error(labels: Sequence[int], probabilities: Sequence[float],
                               bins: int = 10) -> float:
    """The reliability table's |mean score - observed rate|, weighted by examples.

    >>> round(expected_calibration_error([0, 1, 1, 0], [0.05, 0.95, 0.91, 0.93]), 3)
    0.21
    """
    rows = reliability(labels, probabilities, bins)
    total = sum(r[2] for r in rows)
    return round(sum(r[2] * abs(r[3] - r[4]) for r in rows) / total, 12)


YEAR_MS = 365 * 86_400_000


def split_years(examples: dict[str, list[tuple[Any, ...]]]
                ) -> tuple[dict[str, list[tuple[Any, ...]]], dict[str, list[tuple[Any, ...]]]]:
    """The examples made in the log's first year, and those made a year or more after
    the first one: every model has seen whole label horizons by then, so early warm-up
    does not weigh on the second year's figures."""
    first = min(e[4] for every in examples.values() for e in every)
    return ({m: [e for e in every if e[4] < first + YEAR_MS] for m, every in examples.items()},
            {m: [e for e in every if e[4] >= first + YEAR_MS] for m, every in examples.items()})


def second_year(examples: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return split_years(examples)[1]


def table(examples: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    rows = ["| model | examples compared (positives) | model AUC | recency-only AUC "
            "| static RFM AUC | model log loss | all labelled examples |",
            "|---|---|---|---|---|---|---|"]
    # a higher score must mean the positive label: buying (propensity), churning (churn)
    signs = {"propensity": (-1.0, 1.0), "churn": (1.0, -1.0)}
    features = FEATURE_NAMES
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


def calibration(examples: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """Brier, ECE and the reliability table of each model's scored examples."""
    out = ["| model | scored examples | Brier | ECE (10 bins) |", "|---|---|---|---|"]
    tables = []
    for model in sorted(examples):
        scored = [e for e in examples[model] if e[1] is not None]
        if not scored:
            continue
        y, p = [e[0] for e in scored], [e[1] for e in scored]
        name = FEATURE_NAMES.get(model, model)
        out.append(f"| `{name}` | {len(scored):,} | {brier(y, p):.4f} "
                   f"| {expected_calibration_error(y, p):.3f} |")
        tables += ["", f"Reliability of `{name}`:", "",
                   "| score | examples | mean score | observed rate |", "|---|---|---|---|",
                   *(f"| {lo:.1f}–{hi:.1f} | {n:,} | {mean:.3f} | {rate:.3f} |"
                     for lo, hi, n, mean, rate in reliability(y, p))]
    return out + tables


def upper_bound(first: dict[str, list[tuple[Any, ...]]],
                second: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """A batch gradient-boosted model with hindsight against the online model, both
    scored on the second year's examples the online model scored."""
    out = ["| model | train (first year) | test (second year) | batch GBM AUC | online AUC "
           "| gap | batch GBM Brier | online Brier |", "|---|---|---|---|---|---|---|---|"]
    for model in sorted(second):
        train = first.get(model, [])
        test = [e for e in second[model] if e[1] is not None]
        if not train or not test or len({e[0] for e in train}) < 2:
            continue
        gbm = _gbm(np.array([e[5] for e in train]), np.array([e[0] for e in train]))
        batch = gbm.predict_proba(np.array([e[5] for e in test]))[:, 1]
        y, online = [e[0] for e in test], [e[1] for e in test]
        batch_auc, online_auc = roc_auc(y, batch), roc_auc(y, online)
        out.append(f"| `{FEATURE_NAMES.get(model, model)}` | {len(train):,} | {len(test):,} "
                   f"| {batch_auc:.3f} | {online_auc:.3f} | {online_auc - batch_auc:+.3f} "
                   f"| {brier(y, batch):.4f} | {brier(y, online):.4f} |")
    return out


MONTH_MS = 30 * 86_400_000


def monthly_refits(examples: list[tuple[Any, ...]], first_test: int, horizon_ms: int,
                   fit: Any) -> tuple[list[int], list[float], list[float]]:
    """A batch model refitted before each 30 days from ``first_test`` on, on every
    example whose label was known by then (made a horizon or more before), and
    scoring the examples made in those 30 days: (labels, batch scores, online scores),
    over the examples the online model scored. No label from the future leaks in:
    an example decided early is still counted known only at its horizon."""
    y: list[int] = []
    batch: list[float] = []
    online: list[float] = []
    last = max(e[4] for e in examples)
    start = first_test
    while start <= last:
        known = [e for e in examples if e[4] + horizon_ms <= start]
        test = [e for e in examples if start <= e[4] < start + MONTH_MS and e[1] is not None]
        if test and len({e[0] for e in known}) == 2:
            model = fit(np.array([e[5] for e in known]), np.array([e[0] for e in known]))
            batch += list(model.predict_proba(np.array([e[5] for e in test]))[:, 1])
            y += [e[0] for e in test]
            online += [e[1] for e in test]
        start += MONTH_MS
    return y, batch, online


def _gbm(x: Any, y: Any) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(random_state=0).fit(x, y)


def refitted_bound(examples: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """The batch model refitted monthly through the second year (see monthly_refits)."""
    policies = load_default().policies
    horizons = {"propensity": policies.propensity_horizon_ms,
                "churn": policies.churn_horizon_ms}
    first = min(e[4] for every in examples.values() for e in every)
    out = ["| model | test examples | batch GBM AUC | online AUC | gap | batch GBM Brier "
           "| online Brier |", "|---|---|---|---|---|---|---|"]
    for model in sorted(examples):
        y, batch, online = monthly_refits(examples[model], first + YEAR_MS,
                                          horizons[model], _gbm)
        if not y:
            continue
        batch_auc, online_auc = roc_auc(y, batch), roc_auc(y, online)
        out.append(f"| `{FEATURE_NAMES.get(model, model)}` | {len(y):,} | {batch_auc:.3f} "
                   f"| {online_auc:.3f} | {online_auc - batch_auc:+.3f} "
                   f"| {brier(y, batch):.4f} | {brier(y, online):.4f} |")
    return out


class Recalibrator:
    """A recalibration map fitted on resolved (score, label) pairs: isotonic
    (scikit-learn's ``IsotonicRegression``) or Platt (a logistic regression on the
    score's logit), the two ways to recalibrate a classifier after the fact."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fitted: Any = None

    def fit(self, scores: Sequence[float], labels: Sequence[int]) -> None:
        if len(set(labels)) < 2:
            return
        if self.kind == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.fitted = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                np.asarray(scores), np.asarray(labels))
        else:
            from sklearn.linear_model import LogisticRegression

            self.fitted = LogisticRegression(C=1e6).fit(_logit(scores), np.asarray(labels))

    def apply(self, scores: Sequence[float]) -> list[float]:
        if self.fitted is None:
            return list(scores)
        if self.kind == "isotonic":
            return [float(v) for v in self.fitted.predict(np.asarray(scores))]
        return [float(v) for v in self.fitted.predict_proba(_logit(scores))[:, 1]]


def _logit(scores: Sequence[float]) -> Any:
    p = np.clip(np.asarray(scores, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p)).reshape(-1, 1)


def recalibrated(examples: list[tuple[Any, ...]], kind: str, window: str,
                 horizon_ms: int) -> list[tuple[int, int, float, float]]:
    """What an online recalibrator per partition would have served: each scored
    example as (made_at, label, score, recalibrated score), the map being the one
    fitted on what was known at ``made_at``. ``window`` is ``"last 5000"`` (the last
    5,000 labels learnt, refitted every 500: recent, but a churn label 1 arrives a
    whole horizon after its 0s, so the mix is skewed) or ``"complete 120d"`` (every
    example made in the 120 days that ended a horizon ago, all resolved by then,
    refitted weekly: unskewed, but a horizon late)."""
    out: list[tuple[int, int, float, float]] = []
    for partition in sorted({e[7] for e in examples}):
        mine = [e for e in examples if e[7] == partition and e[1] is not None]
        out += _served(mine, kind, window, horizon_ms)
    return out


def _served(mine: list[tuple[Any, ...]], kind: str, window: str,
            horizon_ms: int) -> list[tuple[int, int, float, float]]:
    """recalibrated() for one partition's scored examples."""
    out: list[tuple[int, int, float, float]] = []
    queries = sorted(mine, key=lambda e: e[4])
    learnt = sorted(mine, key=lambda e: e[6])  # stable: the order they were learnt
    calibrator = Recalibrator(kind)
    batch: list[tuple[Any, ...]] = []  # the examples scored by the current map

    def refit(scores: list[float], labels: list[int]) -> None:
        served = calibrator.apply([e[1] for e in batch]) if batch else []
        out.extend((e[4], e[0], e[1], q) for e, q in zip(batch, served, strict=True))
        batch.clear()
        calibrator.fit(scores, labels)

    fitted_for: int | None = None
    n = since = 0
    for e in queries:
        made_at = e[4]
        if window == "last 5000":
            while n < len(learnt) and learnt[n][6] <= made_at:
                n += 1
                since += 1
            if since >= 500 and n >= 1000:
                recent = learnt[max(0, n - 5000):n]
                refit([r[1] for r in recent], [r[0] for r in recent])
                since = 0
        else:
            week = made_at // (7 * 86_400_000)
            if week != fitted_for:
                fitted_for = week
                high = week * 7 * 86_400_000 - horizon_ms
                known = [r for r in mine if high - 120 * 86_400_000 <= r[4] < high]
                if len(known) >= 1000:
                    refit([r[1] for r in known], [r[0] for r in known])
        batch.append(e)
    refit([], [])
    return out


def recalibration(examples: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    """The served scores against four online recalibrators, on the second year."""
    policies = load_default().policies
    horizons = {"propensity": policies.propensity_horizon_ms,
                "churn": policies.churn_horizon_ms}
    first = min(e[4] for every in examples.values() for e in every)
    models = sorted(examples)
    out = ["| scores | " + " | ".join(f"`{FEATURE_NAMES.get(m, m)}` ECE | Brier | AUC"
                                      for m in models) + " |",
           "|---|" + "---|---|---|" * len(models)]
    variants = [("served (no recalibration)", None, "")] + [
        (f"{kind}, {window}", kind, window)
        for kind in ("isotonic", "platt") for window in ("last 5000", "complete 120d")]
    for title, kind, window in variants:
        cells = []
        for model in models:
            if kind is None:
                rows = [(e[4], e[0], e[1], e[1]) for e in examples[model] if e[1] is not None]
            else:
                rows = recalibrated(examples[model], kind, window, horizons[model])
            second = [r for r in rows if r[0] >= first + YEAR_MS]
            y, q = [r[1] for r in second], [r[3] for r in second]
            cells.append(f"{expected_calibration_error(y, q):.3f} | {brier(y, q):.4f} "
                         f"| {roc_auc(y, q):.3f}")
        out.append(f"| {title} | " + " | ".join(cells) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", type=Path, help="put the table into this Markdown file")
    args = parser.parse_args(argv)
    source = data_dir() / "online-retail-ii" / "online_retail_ii.parquet"
    if not source.is_file():
        print(f"models report: {source} not found (set SEGSTREAM_DATA)", file=sys.stderr)
        return 2
    lines = load_events(source)
    examples, seconds = collect(lines)
    first, second = split_years(examples)
    out = ["Whole log (every example scored by a warm model):", "", *table(examples), "",
           "Examples made in the log's second year:", "", *table(second), "",
           "Calibration, second year (does a score of 0.7 mean 70 %?):", "",
           *calibration(second), "",
           "Recalibrated online, per partition, from the labels known at each score's "
           "instant (scikit-learn's `IsotonicRegression`, or Platt: a logistic "
           "regression on the score's logit), against the scores served; second year:",
           "", *recalibration(examples), "",
           "Upper bound: a batch gradient-boosted model (scikit-learn "
           "`HistGradientBoostingClassifier`, default settings) fitted with hindsight on "
           "the first year's examples, tested on the second year's that the online model "
           "scored:", "", *upper_bound(first, second), "",
           "The same batch model refitted every 30 days of the second year on all the "
           "labels known by then (an example counts as known a horizon after it was "
           "made), scoring the next 30 days' examples:", "", *refitted_bound(examples), ""]
    out.append(f"{len(lines):,} events replayed in {seconds:.0f} s; "
               f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
               f"{platform.python_version()}. Command: `SEGSTREAM_DATA=../shared/data "
               f".venv/bin/python bench/models_report.py`.")
    text = "\n".join(out)
    print(text)
    return write_block(args.write, START, END, text) if args.write else 0


if __name__ == "__main__":
    raise SystemExit(main())
