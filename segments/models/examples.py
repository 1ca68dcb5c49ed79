"""Delayed labels: the open training example a customer holds per classifier.

An example is captured at an instant (the features as they were then, and the
prediction made on them) and labelled later: by an event that decides it (a purchase
for propensity, any activity for churn) or, with the other outcome, at its horizon,
which the due index wakes the customer for. Examples live in ``state.models`` under
the classifier's name, so they survive restarts with the customer.

>>> e = OpenExample(made_at=0, horizon=10, x=[0.5], p=None, baselines=[None, None],
...                 decided=0)
>>> e._replace(decided=1).decided
1
"""

from __future__ import annotations

from typing import Any, NamedTuple

from segments.state import CustomerState

__all__ = ["CLASSIFIERS", "NOT_ACTIVITY", "OpenExample", "examples_due", "models_due"]

CLASSIFIERS = ("propensity", "churn")

NOT_ACTIVITY = frozenset({"consent_update", "profile_update", "erase_request",
                          "email_unsubscribe"})
"""Event types that are not "activity" for the churn label: bookkeeping and opting out."""


class OpenExample(NamedTuple):
    """One classifier's example awaiting its label."""

    made_at: int             # the capture instant
    horizon: int             # labelled by then at the latest
    x: list[float]           # the vector (rounded to 4 decimals: state is JSON)
    p: float | None          # the prediction made at capture (None: model not warm)
    baselines: list[Any]     # [days since last purchase, RFM score] at capture
    decided: int             # 1: an event decided it early; labelled at the horizon


def examples_due(state: CustomerState) -> int | None:
    """The earliest horizon of the customer's open examples."""
    models = state.models
    dues = [entry.horizon for name in CLASSIFIERS if (entry := models.get(name))]
    return min(dues) if dues else None


def models_due(state: CustomerState) -> int | None:
    """When the customer's models next need the clock: an example's horizon, or the end
    of a cluster stay that holds a move back (``state.models["cluster"]``: cluster,
    top category, entered at, stay's end or 0)."""
    due = examples_due(state)
    entry = state.models.get("cluster")
    if entry and len(entry) > 3 and entry[3] and (due is None or entry[3] < due):
        return int(entry[3])
    return due
