"""The propensity and churn classifiers: River pipelines with progressive validation.

River learns; predictions, made far more often than labels arrive (every evaluation of
a rule that reads a score), are computed here from the pipeline's own parameters with
River's own arithmetic, operation for operation, so they are the same floats without
River's per-call overhead (a dict per vector, the pipeline's dispatch). A start-up
check compares the two on probe vectors and falls back to River's path if they ever
differ (a River release that changes its arithmetic).

>>> clf = OnlineClassifier("propensity", warm_after=1)
>>> clf.learn([1.0, 0.0], 1, None); clf.learn([0.0, 1.0], 0, None)
>>> clf.warm, 0.0 < clf.predict([1.0, 0.0]) < 1.0
(True, True)
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

__all__ = ["LEARNING_RATE", "OnlineClassifier"]

log = logging.getLogger(__name__)

LEARNING_RATE = 0.003  # the classifiers' SGD step (see OnlineClassifier)


class OnlineClassifier:
    """A River pipeline (standard scaler + logistic regression) with progressive
    validation: rolling ROC AUC (last 2,000 scored labels) and log loss (all).

    Warm once it has learnt ``warm_after`` labels of each outcome: before that its
    sample is one-sided (delayed labels) and its scores rank poorly. SGD's step is
    :data:`LEARNING_RATE`, smaller than River's 0.01 default: the labels of one
    customer are correlated, and a smaller step ranked better on Online Retail II
    (docs/models.md has the comparison)."""

    def __init__(self, name: str, warm_after: int) -> None:
        # River loads with the first model, not with every command: through
        # river.linear_model it imports scipy.stats, seconds of start-up
        from river import compose, linear_model, metrics, optim, preprocessing

        self.name = name
        self.warm_after = warm_after
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(),
            linear_model.LogisticRegression(optimizer=optim.SGD(LEARNING_RATE)))
        self.labels = 0
        self.positives = 0
        self.scored = 0
        self.auc = metrics.RollingROCAUC(window_size=2000)  # type: ignore[no-untyped-call]
        self.log_loss = metrics.LogLoss()  # type: ignore[no-untyped-call]
        self._params: _Params | None = None  # the pipeline's parameters, since the last learn

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_params", None)  # derived: snapshots hold the pipeline only
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._params = None

    @property
    def warm(self) -> bool:
        return min(self.positives, self.labels - self.positives) >= self.warm_after

    def predict(self, x: list[float]) -> float:
        """P(label 1) for the vector ``x`` (segments.models.vector order)."""
        params = self._params
        if params is None:
            if not fast_prediction_agrees():
                return self.predict_with_river(x)
            params = self._params = _Params(self.model)
        return params.predict(x)

    def predict_with_river(self, x: list[float]) -> float:
        proba = self.model.predict_proba_one(dict(enumerate(x)))
        return float(proba.get(True, 0.0))

    def learn(self, x: list[float], label: int, p: float | None) -> None:
        """Score the capture-time prediction ``p`` (if any) first, then learn."""
        if p is not None:
            self.auc.update(bool(label), p)  # type: ignore[no-untyped-call]
            self.log_loss.update(bool(label), p)
            self.scored += 1
        self.model.learn_one(dict(enumerate(x)), bool(label))
        self._params = None
        self.labels += 1
        self.positives += label

    def metrics(self) -> dict[str, Any]:
        return {"labels": self.labels, "positives": self.positives, "scored": self.scored,
                "warm": self.warm,
                "roc_auc": round(self.auc.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None,
                "log_loss": round(self.log_loss.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None}



class _Params:
    """A snapshot of a fitted ``StandardScaler | LogisticRegression`` pipeline, and its
    prediction: River's ``transform_one`` (``(x - mean) / var ** 0.5``, 0 where the
    variance is 0), ``LogisticRegression``'s dot product in the order of its weights plus
    the intercept, and River's clamped sigmoid."""

    __slots__ = ("intercept", "terms")

    def __init__(self, model: Any) -> None:
        scaler, regression = model.steps.values()
        weights = regression.weights  # a copy, in River's order
        means, variances = scaler.means, scaler.vars
        # the root is the one River takes per call, taken once (the same float)
        self.terms = [(i, w, means.get(i, 0.0), v**0.5 if (v := variances.get(i, 0.0)) else 0.0)
                      for i, w in weights.items()]
        self.intercept = regression.intercept

    def predict(self, x: list[float]) -> float:
        dot = 0.0
        for i, weight, mean, root in self.terms:
            dot += weight * ((x[i] - mean) / root if root else 0.0)
        z = dot + self.intercept
        if z < -30:
            return 0.0
        if z > 30:
            return 1.0
        return 1 / (1 + math.exp(-z))


@functools.cache
def fast_prediction_agrees() -> bool:
    """Train a probe pipeline and compare the two predictions on probe vectors; run
    once, at the first prediction (not at import: it loads River, seconds of start-up
    for commands that never score)."""
    import random

    rng = random.Random(20261201)
    probe = OnlineClassifier("probe", 0)
    for n in range(300):
        x = [round(rng.uniform(-1, 8), 4) if rng.random() > 0.1 else 0.0 for _ in range(21)]
        probe.learn(x, int(sum(x) > 60 or n % 7 == 0), None)
    params = _Params(probe.model)
    for _ in range(200):
        x = [round(rng.uniform(-2, 9), 4) for _ in range(21)]
        if params.predict(x) != probe.predict_with_river(x):
            log.warning("the classifiers' fast prediction differs from River's; using "
                        "River's (slower)")
            return False
    return True

