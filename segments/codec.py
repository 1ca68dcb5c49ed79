"""A customer's state as bytes: what the changelog holds and a restore reads back.

One compact JSON document per customer. Pending triggers and open model examples are
named tuples in memory and plain arrays on the wire, so the bytes stay what they
were before those types existed, and an old changelog restores.

>>> from segments.state import CustomerState
>>> s = CustomerState("c-1", purchases_total=2)
>>> s.moments["pending"] = [PendingTrigger(5, "cart_abandoned", "delay", "e1", 0.8, 9, [])]
>>> encode_state(s)[:39]
b'{"customer_id":"c-1","first_seen":null,'
>>> decode_state(encode_state(s)) == s
True
"""

from __future__ import annotations

from typing import Any

import orjson

from segments.models.examples import CLASSIFIERS, OpenExample
from segments.moments import PendingTrigger
from segments.state import CustomerState

__all__ = ["decode_state", "encode_state"]


def _as_array(value: Any) -> Any:
    if isinstance(value, tuple):  # a NamedTuple: orjson writes only plain tuples
        return list(value)
    raise TypeError(f"{type(value).__name__} is not part of a customer's state")


def encode_state(state: CustomerState) -> bytes:
    """The changelog value of ``state``."""
    return orjson.dumps(state.to_dict(), default=_as_array)


def decode_state(data: bytes | str) -> CustomerState:
    """The state :func:`encode_state` wrote."""
    state = CustomerState.from_dict(orjson.loads(data))
    pending = state.moments.get("pending")
    if pending:
        state.moments["pending"] = [PendingTrigger(*entry) for entry in pending]
    models = state.models
    for name in CLASSIFIERS:
        entry = models.get(name)
        if entry is not None:
            models[name] = OpenExample(*entry)
    return state
