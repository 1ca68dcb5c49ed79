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
        self._fast: _Mirror | None = None  # the pipeline's parameters, learning in place

    def __getstate__(self) -> dict[str, Any]:
        self.sync()  # snapshots hold the River pipeline, current
        state = dict(self.__dict__)
        state.pop("_params", None)  # derived
        state.pop("_fast", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._params = None
        self._fast = None

    @property
    def warm(self) -> bool:
        return min(self.positives, self.labels - self.positives) >= self.warm_after

    def predict(self, x: list[float]) -> float:
        """P(label 1) for the vector ``x`` (segments.models.vector order)."""
        fast = self._fast
        if fast is not None:
            return fast.predict(x)
        if fast_path_agrees():
            fast = self._fast = _Mirror(self.model)
            return fast.predict(x)
        params = self._params
        if params is None:
            if not fast_prediction_agrees():
                return self.predict_with_river(x)
            params = self._params = _Params(self.model)
        return params.predict(x)

    def predict_with_river(self, x: list[float]) -> float:
        self.sync()
        proba = self.model.predict_proba_one(dict(enumerate(x)))
        return float(proba.get(True, 0.0))

    def learn(self, x: list[float], label: int, p: float | None) -> None:
        """Score the capture-time prediction ``p`` (if any) first, then learn."""
        if p is not None:
            self.auc.update(bool(label), p)  # type: ignore[no-untyped-call]
            self.log_loss.update(bool(label), p)
            self.scored += 1
        fast = self._fast
        if fast is None and fast_path_agrees():
            fast = self._fast = _Mirror(self.model)
        if fast is not None:
            fast.learn(x, label)
        else:
            self.model.learn_one(dict(enumerate(x)), bool(label))
            self._params = None
        self.labels += 1
        self.positives += label

    def sync(self) -> None:
        """Write what the mirror learnt into the River pipeline (before it is read)."""
        if self._fast is not None:
            self._fast.write(self.model)

    def metrics(self) -> dict[str, Any]:
        return {"labels": self.labels, "positives": self.positives, "scored": self.scored,
                "warm": self.warm,
                "roc_auc": round(self.auc.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None,
                "log_loss": round(self.log_loss.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None}



def _sigmoid(z: float) -> float:
    """River's clamped sigmoid (``river.utils.math.sigmoid``)."""
    if z < -30:
        return 0.0
    if z > 30:
        return 1.0
    return 1 / (1 + math.exp(-z))


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
        return _sigmoid(dot + self.intercept)


class _Mirror:
    """The pipeline's parameters in plain lists, learning and predicting in place:
    River's ``StandardScaler.learn_one`` (Welford), ``transform_one``, then
    ``LogisticRegression.learn_one`` (log loss gradient, the intercept's constant step,
    SGD's step), operation for operation. River's objects stay the record of the
    model: :meth:`write` puts the parameters back before a snapshot or a River call."""

    __slots__ = ("counts", "intercept", "intercept_lr", "iterations", "lr", "means",
                 "roots", "vars", "weights")

    def __init__(self, model: Any) -> None:
        scaler, regression = model.steps.values()
        size = max([*scaler.counts, *regression._weights.to_dict(), -1]) + 1
        self.counts = [scaler.counts.get(i, 0) for i in range(size)]
        self.means = [scaler.means.get(i, 0.0) for i in range(size)]
        self.vars = [scaler.vars.get(i, 0.0) for i in range(size)]
        self.roots = [v**0.5 if v else 0.0 for v in self.vars]
        weights = regression._weights.to_dict()
        self.weights = [weights.get(i, 0.0) for i in range(size)]
        self.intercept = regression.intercept
        self.iterations = regression.optimizer.n_iterations
        self.lr = regression.optimizer.lr.get(0)
        self.intercept_lr = regression.intercept_lr.get(0)

    def predict(self, x: list[float]) -> float:
        dot = 0.0
        for xi, weight, mean, root in zip(x, self.weights, self.means, self.roots,
                                          strict=False):
            dot += weight * ((xi - mean) / root if root else 0.0)
        return _sigmoid(dot + self.intercept)

    def learn(self, x: list[float], label: int) -> None:
        size = len(x)
        if len(self.counts) < size:  # the first learn: River creates every key
            grow = size - len(self.counts)
            for values in (self.counts, self.means, self.vars, self.roots, self.weights):
                values.extend([0] * grow if values is self.counts else [0.0] * grow)
        counts, means, vars_, roots = self.counts, self.means, self.vars, self.roots
        scaled = []
        for i, xi in enumerate(x):
            count = counts[i] = counts[i] + 1
            old = means[i]
            mean = means[i] = old + (xi - old) / count
            var = vars_[i] = vars_[i] + ((xi - old) * (xi - mean) - vars_[i]) / count
            root = roots[i] = var**0.5 if var else 0.0
            scaled.append((xi - mean) / root if var else 0.0)
        weights = self.weights
        dot = 0.0
        for weight, xs in zip(weights, scaled, strict=False):
            dot += weight * xs
        y = 1 if label else -1
        z = (dot + self.intercept) * y
        if z > 18.0:
            gradient = 1.0 * math.exp(-z) * -y
        elif z < -18.0:
            gradient = 1.0 * -y
        else:
            gradient = 1.0 * -y / (math.exp(z) + 1.0)
        gradient = float(max(min(gradient * 1.0, 1e12), -1e12))
        self.intercept -= self.intercept_lr * gradient
        lr = self.lr
        for i, xs in enumerate(scaled):
            weights[i] -= lr * (xs * gradient)
        self.iterations += 1

    def write(self, model: Any) -> None:
        from river import utils

        scaler, regression = model.steps.values()
        if any(self.counts):
            for i, count in enumerate(self.counts):
                scaler.counts[i] = count
                scaler.means[i] = self.means[i]
                scaler.vars[i] = self.vars[i]
            regression._weights = utils.VectorDict(dict(enumerate(self.weights)))
        regression.intercept = self.intercept
        regression.optimizer.n_iterations = self.iterations


@functools.cache
def fast_path_agrees() -> bool:
    """Train a River probe pipeline and a :class:`_Mirror` side by side, and compare
    every parameter and prediction, bit for bit; run once, at the first prediction or
    label (not at import: it loads River)."""
    import random

    rng = random.Random(20261204)
    probe = OnlineClassifier("probe", 0)
    mirror = _Mirror(probe.model)
    for n in range(400):
        x = [round(rng.uniform(-1, 8), 4) if rng.random() > 0.1 else 0.0 for _ in range(21)]
        if n % 50 == 7:
            x = [0.0] * 21  # zero variance and exact zeros
        label = int(sum(x) > 60 or n % 7 == 0)
        probe.model.learn_one(dict(enumerate(x)), bool(label))
        mirror.learn(x, label)
        if n % 37 == 0:
            y = [round(rng.uniform(-2, 9), 4) for _ in range(21)]
            if mirror.predict(y) != probe.predict_with_river(y):
                return _differs()
    copy = OnlineClassifier("copy", 0)
    mirror.write(copy.model)
    scaler, regression = probe.model.steps.values()
    scaler2, regression2 = copy.model.steps.values()
    if (dict(scaler.means) != dict(scaler2.means) or dict(scaler.vars) != dict(scaler2.vars)
            or dict(scaler.counts) != dict(scaler2.counts)
            or regression._weights.to_dict() != regression2._weights.to_dict()
            or regression.intercept != regression2.intercept
            or regression.optimizer.n_iterations != regression2.optimizer.n_iterations):
        return _differs()
    return fast_prediction_agrees()


def _differs() -> bool:
    log.warning("the classifiers' fast path differs from River's; using River's (slower)")
    return False


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
        probe.model.learn_one(dict(enumerate(x)), bool(sum(x) > 60 or n % 7 == 0))
    params = _Params(probe.model)
    for _ in range(200):
        x = [round(rng.uniform(-2, 9), 4) for _ in range(21)]
        if params.predict(x) != probe.predict_with_river(x):
            log.warning("the classifiers' fast prediction differs from River's; using "
                        "River's (slower)")
            return False
    return True

