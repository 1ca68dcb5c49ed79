"""The propensity and churn classifiers: River pipelines with progressive validation.

>>> clf = OnlineClassifier("propensity", warm_after=1)
>>> clf.learn([1.0, 0.0], 1, None); clf.learn([0.0, 1.0], 0, None)
>>> clf.warm, 0.0 < clf.predict([1.0, 0.0]) < 1.0
(True, True)
"""

from __future__ import annotations

from typing import Any

__all__ = ["LEARNING_RATE", "OnlineClassifier"]

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

    @property
    def warm(self) -> bool:
        return min(self.positives, self.labels - self.positives) >= self.warm_after

    def predict(self, x: list[float]) -> float:
        proba = self.model.predict_proba_one(dict(enumerate(x)))
        return float(proba.get(True, 0.0))

    def learn(self, x: list[float], label: int, p: float | None) -> None:
        """Score the capture-time prediction ``p`` (if any) first, then learn."""
        if p is not None:
            self.auc.update(bool(label), p)  # type: ignore[no-untyped-call]
            self.log_loss.update(bool(label), p)
            self.scored += 1
        self.model.learn_one(dict(enumerate(x)), bool(label))
        self.labels += 1
        self.positives += label

    def metrics(self) -> dict[str, Any]:
        return {"labels": self.labels, "positives": self.positives, "scored": self.scored,
                "warm": self.warm,
                "roc_auc": round(self.auc.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None,
                "log_loss": round(self.log_loss.get(), 6)  # type: ignore[no-untyped-call]
                if self.scored else None}

