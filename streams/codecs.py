"""Faust codecs: orjson for JSON values, UTF-8 keys, and customer state."""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

from segments.state import CustomerState

__all__ = ["encode_state", "register"]


def encode_state(state: CustomerState) -> bytes:
    """The changelog value of a customer's state (what :class:`StateCodec` decodes)."""
    return orjson.dumps(state.to_dict())


class OrjsonCodec(codecs.Codec):
    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


class Utf8Codec(codecs.Codec):
    """Customer ids as text both ways, so recovered keys equal live ones."""

    def _dumps(self, obj: Any) -> bytes:
        return obj.encode() if isinstance(obj, str) else bytes(obj)

    def _loads(self, s: bytes) -> Any:
        return s.decode("utf-8", "replace")


class StateCodec(codecs.Codec):
    """A :class:`CustomerState` as one compact JSON document in the changelog."""

    def _dumps(self, obj: Any) -> bytes:
        return encode_state(obj)

    def _loads(self, s: bytes) -> Any:
        return CustomerState.from_dict(orjson.loads(s))


def register() -> None:
    codecs.register("orjson", OrjsonCodec())
    codecs.register("utf8", Utf8Codec())
    codecs.register("customer-state", StateCodec())
