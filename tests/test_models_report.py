"""bench/models_report.py: its metrics are right, and on Online Retail II the models
beat both baselines (the claim docs/models.md makes)."""

from __future__ import annotations

import importlib.util
import itertools
import math
import random
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DAY_MS = 86_400_000


def _load() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "models_report.py"
    spec = importlib.util.spec_from_file_location("models_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = _load()


def test_roc_auc_equals_the_pairwise_definition() -> None:
    rng = random.Random(4)
    labels = [rng.random() < 0.3 for _ in range(300)]
    scores = [round(rng.random(), 1) for _ in range(300)]  # many ties
    wins = 0.0
    pairs = 0
    for (ya, sa), (yb, sb) in itertools.product(zip(labels, scores, strict=True), repeat=2):
        if ya and not yb:
            pairs += 1
            wins += 1.0 if sa > sb else 0.5 if sa == sb else 0.0
    assert report.roc_auc(labels, scores) == pytest.approx(wins / pairs, abs=1e-12)
    assert math.isnan(report.roc_auc([1, 1], [0.2, 0.3]))  # one class: undefined


def test_log_loss_by_hand() -> None:
    expected = -(math.log(0.8) + math.log(0.6) + math.log(0.3)) / 3
    assert report.log_loss([1, 0, 1], [0.8, 0.4, 0.3]) == pytest.approx(expected)


def test_second_year_keeps_examples_made_a_year_after_the_first() -> None:
    examples = {"churn": [(1, 0.5, 3.0, 9, 0), (0, 0.2, 1.0, 12, 365 * DAY_MS)],
                "propensity": [(0, 0.1, 8.0, 5, 364 * DAY_MS)]}
    assert report.second_year(examples) == {"churn": [(0, 0.2, 1.0, 12, 365 * DAY_MS)],
                                            "propensity": []}


def test_table_ranks_each_baseline_in_the_direction_of_the_label() -> None:
    # churn: more days since the last purchase and a lower RFM score mean churn (1)
    churn = [(1, 0.9, 200.0, 3, 0), (1, 0.7, 150.0, 4, 0), (0, 0.2, 5.0, 14, 0),
             (0, 0.4, 20.0, 12, 0)]
    rows = report.table({"churn": churn})
    assert rows[2].split("|")[3:6] == [" **1.000** ", " 1.000 ", " 1.000 "]


@pytest.mark.timeout(900)  # a whole replay of the log: minutes on a loaded 2-core machine
def test_online_retail_models_beat_recency_and_static_rfm(
        data_file: Callable[[str], Path]) -> None:
    source = data_file("online-retail-ii/online_retail_ii.parquet")
    examples, _ = report.collect(report.load_events(source))
    for view in (examples, report.second_year(examples)):
        for model, sign_recency, sign_rfm in (("propensity", -1.0, 1.0),
                                              ("churn", 1.0, -1.0)):
            usable = [e for e in view[model] if None not in e[:4]]
            assert len(usable) > 10_000
            y = [e[0] for e in usable]
            auc = report.roc_auc(y, [e[1] for e in usable])
            assert auc > report.roc_auc(y, [sign_recency * e[2] for e in usable])
            assert auc > report.roc_auc(y, [sign_rfm * e[3] for e in usable])


def test_brier_and_calibration_error_by_hand() -> None:
    labels, scores = [1, 0, 1, 1, 0], [0.9, 0.15, 0.65, 0.62, 0.68]
    assert report.brier(labels, scores) == pytest.approx(
        sum((s - y) ** 2 for y, s in zip(labels, scores, strict=True)) / 5)
    rows = report.reliability(labels, scores)
    assert [(lo, n) for lo, _, n, _, _ in rows] == [(0.1, 1), (0.6, 3), (0.9, 1)]
    assert rows[1][3:] == pytest.approx(((0.65 + 0.62 + 0.68) / 3, 2 / 3))
    expected = (abs(0.15 - 0) + 3 * abs((0.65 + 0.62 + 0.68) / 3 - 2 / 3) + abs(0.9 - 1)) / 5
    assert report.expected_calibration_error(labels, scores) == pytest.approx(expected)
    rng = random.Random(5)  # scores that are the true probabilities: small error
    p = [rng.random() for _ in range(20_000)]
    y = [int(rng.random() < q) for q in p]
    assert report.expected_calibration_error(y, p) < 0.02
    assert report.expected_calibration_error(y, [min(1.0, q + 0.2) for q in p]) > 0.15


class Recorder:
    """A stand-in batch learner that remembers what it was fitted on and predicts
    the share of positives it saw (the bench's fit function is pluggable)."""

    def __init__(self) -> None:
        self.fits: list[list[float]] = []

    def __call__(self, x: Any, y: Any) -> Recorder:
        self.fits.append([float(v[0]) for v in x])
        self.rate = float(y.mean())
        return self

    def predict_proba(self, x: Any) -> Any:
        import numpy as np

        return np.array([[1 - self.rate, self.rate]] * len(x))


def test_monthly_refits_train_only_on_labels_known_before_each_month() -> None:
    horizon = 10 * DAY_MS
    start = 400 * DAY_MS
    # (label, online p, recency, rfm, made_at, x): x[0] is made_at in days, to trace
    examples = [(n % 2, 0.5, 1.0, 3, day * DAY_MS, [float(day)])
                for n, day in enumerate([100, 200, 385, 395, 391, 405, 425, 440])]
    learner = Recorder()
    y, batch, online = report.monthly_refits(examples, start, horizon, learner)
    # month 1 (days 400-429): made by day 390 known; month 2 (430-459): by day 420
    assert learner.fits == [[100.0, 200.0, 385.0], [100.0, 200.0, 385.0, 395.0, 391.0, 405.0]]
    assert y == [1, 0, 1] and online == [0.5, 0.5, 0.5]  # days 405, 425; then 440
    assert batch == pytest.approx([1 / 3, 1 / 3, 0.5])


def _example(made_at: int, label: int, p: float, resolved_at: int,
             partition: int = 0) -> tuple[Any, ...]:
    return (label, p, None, None, made_at, None, resolved_at, partition)


@pytest.mark.parametrize("kind", ["isotonic", "platt"])
def test_a_recalibrator_learns_only_what_was_resolved_before_the_score(kind: str) -> None:
    """Over-confident scores (0.9, 0.8 for a 30 % and 20 % rate) are pulled to the
    rates once 1,000 labels are learnt; a score made before that is served as is."""
    rng = random.Random(9)
    examples = []
    for n in range(4000):
        p = 0.9 if n % 2 else 0.8
        label = int(rng.random() < (0.3 if n % 2 else 0.2))
        examples.append(_example(n * 1000, label, p, n * 1000 + 500))
    served = report.recalibrated(examples, kind, "last 5000", 10 * DAY_MS)
    assert len(served) == 4000
    early = [q for made, _, p, q in served if made < 999_000]
    assert early and all(q in (0.8, 0.9) for q in early)
    late = [q for made, _, p, q in served if made > 1_600_000 and p == 0.9]
    assert all(abs(q - 0.3) < 0.05 for q in late)


def test_the_complete_window_uses_examples_made_a_horizon_ago() -> None:
    """Examples are known only a horizon after they were made: with a 30-day horizon
    nothing of the first 30 days recalibrates a score, and the map later reflects
    the old rate (90 % positives), not the new one (10 %)."""
    examples = []
    for n in range(6000):
        made = n * 3_600_000  # hourly, 250 days
        old = made < 100 * DAY_MS
        label = int(n % 10 != 0) if old else int(n % 10 == 0)
        examples.append(_example(made, label, 0.5, made + DAY_MS))
    served = report.recalibrated(examples, "isotonic", "complete 120d", 30 * DAY_MS)
    by_made = {made: q for made, _, _, q in served}
    assert all(q == 0.5 for made, q in by_made.items() if made < 30 * DAY_MS)
    # 110 days in: the window (the 120 days before 80 days in) holds only the old rate
    assert abs(by_made[110 * 24 * 3_600_000] - 0.9) < 1e-9
