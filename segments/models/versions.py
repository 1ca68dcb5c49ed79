"""Which models there are, which features they compute, and the ``model_version``
string that names, in every output record, the models a decision depended on.

>>> parse_model_version("p1:btyd=3,prop=1532")
(1, {'btyd': 3, 'propensity': 1532})
>>> version_string(1, {"propensity": 1532, "btyd": 3}, ["propensity", "btyd"])
'p1:btyd=3,prop=1532'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["FEATURE_MODELS", "MODELS", "parse_model_version", "version_string"]

MODELS = ("propensity", "churn", "cluster", "btyd")
_SHORT = {"propensity": "prop", "churn": "churn", "cluster": "clus", "btyd": "btyd"}
_LONG = {v: k for k, v in _SHORT.items()}

FEATURE_MODELS: Mapping[str, tuple[str, ...]] = {
    # the classifiers read p_alive and expected purchases in their vector: BG/NBD too
    "purchase_propensity": ("propensity", "btyd"),
    "churn_risk": ("churn", "btyd"),
    "p_alive": ("btyd",),
    "expected_clv_365d": ("btyd",),
    "cluster": ("cluster",),
}
"""Which models a model feature's value depends on (what ``model_version`` names)."""


def version_string(partition: int, counts: Mapping[str, int], models: Iterable[str]) -> str:
    """A record's ``model_version``: ``p<partition>:<model>=<count>,...`` with short
    names (prop, churn, clus, btyd), sorted; at most 64 characters while each count is
    below 10**9 (the schema's bound)."""
    parts = sorted(f"{_SHORT[m]}={counts[m]}" for m in set(models))
    return f"p{partition}:" + ",".join(parts)


def parse_model_version(text: str) -> tuple[int, dict[str, int]]:
    """The partition and per-model counts of a record's ``model_version``."""
    head, _, body = text.partition(":")
    counts = {}
    for part in body.split(","):
        short, _, n = part.partition("=")
        counts[_LONG[short]] = int(n)
    return int(head[1:]), counts
