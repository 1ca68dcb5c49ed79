"""The validated interaction event the core works on.

>>> Interaction("e1", "c1", "login", 0).properties
{}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Interaction"]


@dataclass(slots=True)
class Interaction:
    """A validated interaction, its time already in epoch milliseconds."""

    event_id: str
    customer_id: str
    type: str
    ts: int
    properties: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_document(cls, doc: dict[str, Any], ts: int) -> Interaction:
        return cls(
            event_id=doc["event_id"],
            customer_id=doc["customer_id"],
            type=doc["type"],
            ts=ts,
            properties=doc.get("properties") or {},
            context=doc.get("context") or {},
        )
