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
