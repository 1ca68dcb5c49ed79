"""Faust codecs: orjson for JSON values, UTF-8 keys, and customer state."""

from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

from segments.codec import decode_state, encode_state

__all__ = ["encode_state", "register"]


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
        return decode_state(s)


def register() -> None:
    codecs.register("orjson", OrjsonCodec())
    codecs.register("utf8", Utf8Codec())
    codecs.register("customer-state", StateCodec())
