"""The door every interaction passes: decode, validate, read the timestamp.

The rules come from ``schemas/interaction/1-0-0.json``, compiled once. A valid event
passes ``jsonschema-rs`` (compiled Rust, a twentieth of the time); an event it refuses
is checked again by ``fastjsonschema``, whose verdict and message (what the dead
letter says) are the reference. Both read the same file, and tests/test_schemas.py
holds them to the same verdict on generated documents. This module adds only what a
schema cannot say (size, the instant a timestamp names, its sane range). A record that
fails gets a :class:`Rejection` with a typed reason; it is never dropped here.

>>> gate = Gate()
>>> now = 1795342500250
>>> event = gate.check(b'{"event_id":"e1","customer_id":"c1","type":"login",'
...                    b'"ts":"2026-11-22T10:15:00Z"}', now)
>>> event.customer_id, event.type, event.ts
('c1', 'login', 1795342500000)
>>> gate.check(b'{"event_id":', now).reason
'not_json'
>>> gate.check(b'{"event_id":"e1","customer_id":"c1","type":"teleport","ts":0}', now).reason
'unknown_type'
>>> gate.check(b'{"event_id":"e1","customer_id":"c1","type":"login","ts":5}', now).reason
'bad_timestamp'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import fastjsonschema
import jsonschema_rs
import orjson

import schemas
from segments.events import Interaction
from segments.timefmt import DAY_MS, TimestampError, parse_ts

__all__ = ["INTERACTION_SCHEMA", "Gate", "GateConfig", "Interaction", "Rejection"]

INTERACTION_SCHEMA = ("interaction", "1-0-0")


@dataclass(frozen=True, kw_only=True, slots=True)
class GateConfig:
    """Limits beyond the schema; all of them configurable per worker."""

    max_bytes: int = 64 * 1024
    min_ts: int = 946_684_800_000  # 2000-01-01T00:00:00Z
    max_future_ms: int = DAY_MS


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was refused, in the dead-letter contract's terms."""

    reason: str
    detail: str
    path: str | None = None
    customer_id: str | None = None


class Gate:
    """Turns raw bytes into an :class:`Interaction` or a :class:`Rejection`."""

    def __init__(self, config: GateConfig | None = None) -> None:
        self.config = config or GateConfig()
        schema = schemas.load(*INTERACTION_SCHEMA)
        self.known_types: frozenset[str] = frozenset(schema["properties"]["type"]["enum"])
        self._schema = schema
        # fastjsonschema explains a refusal; compiled per event type when first needed
        self._explainers: dict[str | None, Callable[[Any], Any]] = {}
        self._is_valid = jsonschema_rs.validator_for(schema, validate_formats=True).is_valid

    def check(self, raw: bytes, now: int) -> Interaction | Rejection:
        """Decide on one record; ``now`` (epoch ms, wall clock) bounds future timestamps."""
        config = self.config
        if len(raw) > config.max_bytes:
            return Rejection("too_large", f"{len(raw)} bytes, limit {config.max_bytes}")
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Rejection(_undecodable(raw), str(exc))
        if not isinstance(doc, dict):
            return Rejection("not_an_object", f"a JSON {_json_kind(doc)}, not an object")
        customer = doc.get("customer_id")
        customer_id = customer if isinstance(customer, str) and 0 < len(customer) <= 128 else None
        kind = doc.get("type")
        if isinstance(kind, str) and kind not in self.known_types:
            return Rejection("unknown_type", f"unknown event type {kind[:64]!r}", "/type",
                             customer_id)
        if not self._is_valid(doc):
            try:
                self._explainer(kind if isinstance(kind, str) else None)(doc)
            except fastjsonschema.JsonSchemaValueException as exc:
                return Rejection("schema_violation", _readable(exc.message),
                                 _pointer(exc.path), customer_id)
        try:
            ts = parse_ts(doc["ts"])
        except TimestampError as exc:
            return Rejection("bad_timestamp", str(exc), "/ts", customer_id)
        if ts < config.min_ts or ts > now + config.max_future_ms:
            return Rejection("bad_timestamp", f"timestamp {doc['ts']!r} is out of range",
                             "/ts", customer_id)
        return Interaction.from_document(doc, ts)


    def _explainer(self, kind: str | None) -> Callable[[Any], Any]:
        """fastjsonschema's validator for events of type ``kind`` (None: any type).

        The file states per-type rules as ``allOf: [{if: type == T, then: ...}]``,
        clear to readers but slow to run (every ``if`` is tried). For type ``T`` the
        validator is the schema without ``allOf`` plus the ``then`` blocks whose ``if``
        names ``T``: the same rules, and the same first error."""
        explainer = self._explainers.get(kind)
        if explainer is None:
            schema = self._schema
            if kind in self.known_types:
                base = {key: value for key, value in schema.items() if key != "allOf"}
                rules = [block["then"] for block in schema.get("allOf", ())
                         if block["if"]["properties"]["type"]["const"] == kind]
                schema = {**base, "allOf": rules} if rules else base
            explainer = self._explainers[kind] = fastjsonschema.compile(schema)
        return explainer


def _undecodable(raw: bytes) -> str:
    """``not_utf8`` when the bytes are not UTF-8, else ``not_json``. orjson's message is
    no guide: it names UTF-8 for a byte order mark before JSON too, and those bytes
    are valid UTF-8 (just not a JSON text)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    return "not_json"


def _pointer(path: Sequence[str | int] | None) -> str:
    """fastjsonschema's ``['data', 'properties', 0]`` as the JSON pointer ``/properties/0``."""
    parts = list(path or [])[1:]
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _readable(message: str) -> str:
    return message[5:] if message.startswith("data.") else message.replace("data ", "", 1)


def _json_kind(value: object) -> str:
    return {list: "array", str: "string", int: "number", float: "number",
            bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)
