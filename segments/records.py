"""Output records, shaped exactly as the public contract (``schemas/``) says.

Ids are digests of what caused the record, so replaying the same log yields the same
ids and a consumer can drop duplicates.

>>> change = segment_change("c-1", "lapsed", True, 7_776_000_000, Cause("time"),
...                         {"days_since_last_purchase": 90.0}, ["lapsed"], "0" * 16)
>>> change["change"], change["at"], change["cause"]
('entered', '1970-04-01T00:00:00.000Z', {'kind': 'time'})
>>> change["change_id"] == segment_change("c-1", "lapsed", True, 7_776_000_000,
...     Cause("time"), {}, [], "0" * 16)["change_id"]
True
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from segments.timefmt import format_ts

__all__ = [
    "DEAD_LETTERS",
    "INTERACTIONS",
    "MICRO_MOMENTS",
    "MICRO_MOMENTS_SUPPRESSED",
    "OUTPUT_TOPICS",
    "SEGMENT_CHANGES",
    "Cause",
    "Output",
    "dead_letter",
    "micro_moment",
    "segment_change",
]

# The contract's logical topic names, the one place they are written; every deployed
# name is the deployment's ``--topic-prefix`` followed by one of these.
INTERACTIONS = "interactions"  # the input
SEGMENT_CHANGES = "segment-changes"
MICRO_MOMENTS = "micro-moments"
MICRO_MOMENTS_SUPPRESSED = "micro-moments-suppressed"
DEAD_LETTERS = "interactions-dlq"
OUTPUT_TOPICS = (SEGMENT_CHANGES, MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, DEAD_LETTERS)


class Output(NamedTuple):
    """One record to produce: logical topic, key, JSON-ready value."""

    topic: str
    key: str | None
    value: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a record exists: an event, the clock, an erasure or new definitions."""

    kind: str
    event_id: str | None = None
    due: int | None = None  # for a delayed or held trigger: the instant it fell due

    def as_dict(self) -> dict[str, str]:
        cause = {"kind": self.kind}
        if self.event_id is not None:
            cause["event_id"] = self.event_id
        if self.due is not None:
            cause["due"] = format_ts(self.due)
        return cause


def _digest(*parts: object) -> str:
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def segment_change(customer_id: str, segment: str, entered: bool, at: int, cause: Cause,
                   reason: Mapping[str, Any], segments: list[str],
                   definitions_version: str, model_version: str | None = None
                   ) -> dict[str, Any]:
    """``model_version`` (segments.models.version_string) is set when the rule reads a
    model feature."""
    change = "entered" if entered else "exited"
    record = {
        "schema": "segment-change/1-0-0",
        "change_id": _digest(customer_id, segment, change, at, cause.kind, cause.event_id),
        "customer_id": customer_id,
        "segment": segment,
        "change": change,
        "at": format_ts(at),
        "cause": cause.as_dict(),
        "reason": dict(reason),
        "segments": segments,
        "definitions_version": definitions_version,
    }
    if model_version is not None:
        record["model_version"] = model_version
    return record


def micro_moment(customer_id: str, moment: str, score: float, at: int, ttl_ms: int,
                 cause: Cause, context: Mapping[str, Any], items: list[dict[str, Any]],
                 segments: list[str], definitions_version: str,
                 suppressed: str | None = None,
                 held_until: int | None = None,
                 model_version: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "schema": "micro-moment/1-0-0",
        "trigger_id": _digest(customer_id, moment, at, cause.kind, cause.event_id),
        "customer_id": customer_id,
        "moment": moment,
        "score": round(min(1.0, max(0.0, score)), 4),
        "at": format_ts(at),
        "expires_at": format_ts(at + ttl_ms),
        "cause": cause.as_dict(),
        "context": dict(context),
        "items": items,
        "segments": segments,
        "definitions_version": definitions_version,
    }
    if suppressed is not None:
        record["suppressed"] = suppressed
    if held_until is not None:
        record["held_until"] = format_ts(held_until)
    if model_version is not None:
        record["model_version"] = model_version
    return record


def dead_letter(reason: str, detail: str, path: str | None, *, topic: str, partition: int,
                offset: int, key: bytes | None, timestamp: int | None, raw: bytes,
                customer_id: str | None, processed_at: int) -> dict[str, Any]:
    return {
        "schema": "dead-letter/1-0-0",
        "reason": reason,
        "detail": detail[:1024],
        "path": path,
        "source": {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "key": None if key is None else key.decode("utf-8", "replace"),
            "timestamp": timestamp,
        },
        "raw": base64.b64encode(raw).decode("ascii"),
        "at": format_ts(processed_at),
        "customer_id": customer_id,
    }
