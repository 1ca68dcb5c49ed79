"""Online models in the stream: their scores are features rules can read.

One :class:`PartitionModels` per partition, in the partition's
:class:`~segments.partition.Partition`. The partition's processing is the only
writer, so for the same input order training is deterministic and the offline replay
equals the worker. Four models (docs/models.md has the tables), one module each:

- ``propensity`` (feature ``purchase_propensity``): P(a purchase within
  ``propensity_horizon``, 30 days), and ``churn`` (``churn_risk``): P(no activity
  within ``churn_horizon``, 90 days). River pipelines (standard scaler + logistic
  regression, :mod:`~segments.models.classifier`) over :mod:`~segments.models.vector`,
  trained with **delayed labels** (:mod:`~segments.models.examples`): per customer at
  most one open example per model, resolved by an event or by its horizon through the
  due index, then learned (progressive validation: the metrics see the prediction made
  when the example was captured, before the model learns its label).
- ``cluster`` (``cluster``, :mod:`~segments.models.clusters`): k-means refitted on a
  reservoir sample in a fixed scaled space, k chosen by silhouette; the Hungarian
  algorithm gives each centre the id of the archetype (and previous centre) it matches,
  so ids keep their names across fits and partitions.
- ``btyd`` (``p_alive``, ``expected_clv_365d``): BG/NBD + Gamma-Gamma
  (:mod:`segments.btyd`), population parameters refitted every ``btyd_refit``
  (:mod:`~segments.models.refits`), per-customer values in closed form.

:mod:`~segments.models.versions` names them in each record's ``model_version``.

A model feature is null until its model is warm: for the classifiers,
``model_warm_after`` learned labels of each outcome (labels arrive late, one outcome
first: churn learns "still active" for a whole horizon before its first "went
quiet"); for BG/NBD, the first successful fit; the clusterer is warm from the start
(its archetypes are the centres until the first fit).

The modules that fit and score BG/NBD (and so load SciPy, seconds of start-up) are
imported with the first model, not with every command that reads the rules.

>>> len(VECTOR), len(CLUSTER_SPACE), len(ARCHETYPES)
(21, 9, 8)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from segments.models.classifier import LEARNING_RATE, OnlineClassifier
from segments.models.clusters import (
    ARCHETYPES,
    CLUSTER_SPACE,
    Archetype,
    Clusterer,
    ClusterFeature,
    cluster_values,
    scale,
    unscale,
)
from segments.models.examples import (
    CLASSIFIERS,
    NOT_ACTIVITY,
    OpenExample,
    examples_due,
    models_due,
)
from segments.models.vector import VECTOR, Base, VectorFeature, base_values, build_vector
from segments.models.versions import (
    FEATURE_MODELS,
    MODELS,
    parse_model_version,
    version_string,
)

if TYPE_CHECKING:
    from segments.models.partition import (
        SNAPSHOT_FORMAT,
        OnLabel,
        PartitionModels,
        RefitInFlight,
    )
    from segments.models.refits import BtydFit, Submit, fit_btyd

__all__ = [
    "ARCHETYPES",
    "CLASSIFIERS",
    "CLUSTER_SPACE",
    "FEATURE_MODELS",
    "LEARNING_RATE",
    "MODELS",
    "NOT_ACTIVITY",
    "SNAPSHOT_FORMAT",
    "VECTOR",
    "Archetype",
    "Base",
    "BtydFit",
    "ClusterFeature",
    "Clusterer",
    "OnLabel",
    "OnlineClassifier",
    "OpenExample",
    "PartitionModels",
    "RefitInFlight",
    "Submit",
    "VectorFeature",
    "base_values",
    "build_vector",
    "cluster_values",
    "examples_due",
    "fit_btyd",
    "models_due",
    "parse_model_version",
    "scale",
    "unscale",
    "version_string",
]

_LAZY = {"SNAPSHOT_FORMAT": "partition", "OnLabel": "partition",
         "PartitionModels": "partition", "RefitInFlight": "partition",
         "BtydFit": "refits", "Submit": "refits", "fit_btyd": "refits"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'segments.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"segments.models.{module}"), name)
