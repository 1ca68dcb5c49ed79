"""A customer's state as bytes: what the changelog holds and a restore reads back.

Version 3 (what :func:`encode_state` writes): the byte ``0x03``, then one zstd frame
of a JSON array holding the fields in :data:`FIELDS_V3` order, compressed against
:data:`DICTIONARY_V2`. Version 2 is the same with the ``0x02`` byte and the fields
of :data:`FIELDS_V2` (no ``applied_offset``). Most of a state is structure that
every customer repeats (field names, counter names, model names, timestamps sharing
their leading digits); the array drops the names and the dictionary lets a frame of a
few hundred bytes refer to the rest. About 4.3x smaller than version 1 on the benchmark's customers
(bench/run.py), 3.4x on Online Retail II's.

Version 1 (a JSON object, its first byte ``{``) is what changelogs written before
hold; :func:`decode_state` reads all three, so an old changelog restores. Every
version is frozen: a new field, a new order or a new dictionary is a version 4,
decoded beside these (the tests pin the dictionary's digest and the field lists).

Pending triggers and open model examples are named tuples in memory and plain arrays
on the wire in both versions.

>>> from segments.state import CustomerState
>>> s = CustomerState("c-1", purchases_total=2)
>>> s.moments["pending"] = [PendingTrigger(5, "cart_abandoned", "delay", "e1", 0.8, 9, [])]
>>> data = encode_state(s)
>>> data[:1], decode_state(data) == s
(b'\\x03', True)
>>> decode_state(b'{"customer_id":"c-1","purchases_total":2}').purchases_total
2
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import zstandard

from segments.models.examples import CLASSIFIERS, OpenExample
from segments.moments import PendingTrigger
from segments.state import CustomerState

__all__ = ["DICTIONARY_V2", "FIELDS_V2", "FIELDS_V3", "UnknownStateVersion",
           "decode_state", "encode_state"]

# CustomerState's fields as version 2 lays them out; frozen (see the module docstring)
FIELDS_V2 = (
    "customer_id", "first_seen", "last_seen", "orders", "purchases_total",
    "revenue_total", "first_purchase", "last_purchase", "purchase_days",
    "first_day_revenue", "counters", "session_last", "session", "features_used",
    "devices", "cart", "cart_updated", "categories", "context", "context_ts",
    "consent_marketing", "consent_personalization", "profile", "scores", "models",
    "segments", "seen", "due", "definitions", "moments",
)
# version 3: version 2's, then the offset of the latest record applied
FIELDS_V3 = (*FIELDS_V2, "applied_offset")
# the first byte of a record -> the field order of its array
_LAYOUTS = {2: FIELDS_V2, 3: FIELDS_V3}

# What zstd may refer back to: a made-up customer in the version 2 layout, with the
# names every state repeats (no real data). Frozen: editing it breaks every v2 record.
DICTIONARY_V2 = (
    b'["c-0",1790000000000,1790000000000,[[1790000000000,20.0,"0123456789abcdef",0],'
    b'[1790000000000,59.0,"fedcba9876543210",1]],1,0.0,null,null,0,0.0,'
    b'{"sessions":[[497222,1],[497223,1],[497225,2]],"product_views":[[497222,1]],'
    b'"cart_adds":[[497222,1]],"searches":[[497222,1]],"page_views":[[497222,1]],'
    b'"email_opens":[[497222,1]],"email_clicks":[[497222,1]],"app_opens":[[497222,1]],'
    b'"logins":[[497222,1]]},1790000000000,{"start":1790000000000,"events":1,"views":1,'
    b'"searches":1,"cart_adds":1,"content":1,"locator":1,"cats":{"shoes":1},'
    b'"products":{"p-0":1}},{"wishlist":1790000000000},{"mobile":1790000000000,'
    b'"desktop":1790000000000},{"p-1":[1,10.0,null]},null,{"shoes":1},'
    b'{"device":"mobile","channel":"web","tz":"Europe/London","country":"GB",'
    b'"city":"London"},null,true,false,{},{"purchase_propensity":null,"churn_risk":null,'
    b'"p_alive":null,"expected_clv_365d":null,"cluster":0,'
    b'"model_version":"p0:btyd=0,churn=0,clus=0,prop=0"},'
    b'{"propensity":[1790000000000,1792592000000,[0.0,6.5944,0.0,0.0,0.0,0.0,0.0,0.0,'
    b'0.0,0.0,0.6931,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.5,0.0],null,[null,null],0],'
    b'"churn":[1790000000000,1797956000000,[1.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,'
    b'0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.5,0.0],0.5,[90.0,12],1],"cluster":[0,null]},'
    b'["cart_abandoner","cluster_0","dormant","email_engaged","email_unengaged",'
    b'"first_time_buyer","repeat_buyer","high_value","high_propensity","at_risk",'
    b'"lapsed","loyal","window_shopper","power_user","multi_device","mobile_first"],'
    b'{"0123456789abcdef":1790000000000,"fedcba9876543210":1790000000000},'
    b'1790000000000,"0123456789abcdef",{"pending":[[1790000000000,"cart_abandoned",'
    b'"delay","e-1",0.8,1790000000000,[]]],"last":{"i_want_to_buy":1790000000000,'
    b'"cart_abandoned":1790000000000},"sent":1790000000000,"day":["2026-11-22",1,'
    b'{"i_want_to_know":1,"i_want_to_go":1,"i_want_to_do":1,"browse_abandoned":1}]}]'
)

_MAGIC_V1 = ord("{")
_local = threading.local()  # zstd contexts are not safe to share between threads


class UnknownStateVersion(ValueError):
    """Bytes that no version of this codec wrote (newer software, or not a state)."""


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    try:
        return _local.contexts  # type: ignore[no-any-return]
    except AttributeError:
        dictionary = zstandard.ZstdCompressionDict(
            DICTIONARY_V2, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        _local.contexts = (
            zstandard.ZstdCompressor(level=1, dict_data=dictionary, write_checksum=False,
                                     write_content_size=True, write_dict_id=False),
            zstandard.ZstdDecompressor(dict_data=dictionary))
        return _local.contexts  # type: ignore[no-any-return]


def _as_array(value: Any) -> Any:
    if isinstance(value, tuple):  # a NamedTuple: orjson writes only plain tuples
        return list(value)
    raise TypeError(f"{type(value).__name__} is not part of a customer's state")


def encode_state(state: CustomerState) -> bytes:
    """The changelog value of ``state`` (version 3)."""
    document = orjson.dumps([getattr(state, name) for name in FIELDS_V3], default=_as_array)
    return b"\x03" + _zstd()[0].compress(document)


def decode_state(data: bytes | str) -> CustomerState:
    """The state any version of :func:`encode_state` wrote."""
    if isinstance(data, str):
        data = data.encode()
    first = data[0] if data else None
    layout = _LAYOUTS.get(first) if first is not None else None
    if layout is not None:
        try:
            document = _zstd()[1].decompress(data[1:])
        except zstandard.ZstdError as exc:
            raise ValueError(f"a corrupt version {first} customer state: {exc}") from None
        values = orjson.loads(document)
        state = CustomerState(**dict(zip(layout, values, strict=True)))
    elif first == _MAGIC_V1:
        state = CustomerState.from_dict(orjson.loads(data))
    else:
        raise UnknownStateVersion(f"not a customer state this version can read "
                                  f"(first byte {first!r})")
    pending = state.moments.get("pending")
    if pending:
        state.moments["pending"] = [PendingTrigger(*entry) for entry in pending]
    models = state.models
    for name in CLASSIFIERS:
        entry = models.get(name)
        if entry is not None:
            models[name] = OpenExample(*entry)
    return state
