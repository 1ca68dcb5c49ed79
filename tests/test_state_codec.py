"""The changelog's state codec: version 3 round-trips every state the processor
makes, versions 1 and 2 (changelogs written before) still restore, and all stay
frozen."""

from __future__ import annotations

import dataclasses
import hashlib

import orjson
import pytest

from segments import Engine, Gate, MemoryStore, Processor, Source, load_default
from segments.codec import (
    DICTIONARY_V2,
    FIELDS_V2,
    FIELDS_V3,
    UnknownStateVersion,
    decode_state,
    encode_state,
)
from segments.models.examples import OpenExample
from segments.moments import PendingTrigger
from segments.state import CustomerState
from streams.tools.simulate import simulate

# written by the version 1 codec (main before 2026-12-02), trimmed by hand
V1_RECORD = (
    b'{"customer_id":"sim-3-000018","first_seen":1789937696051,"last_seen":1790861425639,'
    b'"orders":[[1790239481372,36.03,"fd3faf637441e4fb",0]],"purchases_total":1,'
    b'"revenue_total":36.03,"first_purchase":1790239481372,"last_purchase":1790239481372,'
    b'"purchase_days":1,"first_day_revenue":36.03,"counters":{"sessions":[[497204,1],'
    b'[497461,1]],"product_views":[[497455,16],[497461,6]],"cart_adds":[[497461,1]]},'
    b'"session_last":1790861425639,"session":{"start":1790861002073,"events":9,'
    b'"searches":1,"views":6,"cats":{"garden":7},"products":{"p-garden-01":2},'
    b'"cart_adds":1},"features_used":{"wishlist":1790498847825},'
    b'"devices":{"desktop":1789937696051,"mobile":1790861425639},'
    b'"cart":{"p-garden-01":[1,44.17,"garden"]},"cart_updated":1790861322125,'
    b'"categories":{"garden":45,"toys":6},"context":{"device":"mobile","channel":"app",'
    b'"tz":"Europe/Berlin","country":"DE","city":"Berlin"},"context_ts":1790861425639,'
    b'"consent_marketing":true,"consent_personalization":true,"profile":{},'
    b'"scores":{"purchase_propensity":null,"churn_risk":null,"p_alive":null,'
    b'"expected_clv_365d":null,"cluster":2,"model_version":"p0:btyd=0,churn=563,clus=825,'
    b'prop=62"},"models":{"propensity":[1790239481372,1792831481372,[1.0,0.0,0.6931],null,'
    b'[0.0,null],0],"churn":[1790839685857,1798615685857,[1.0,2.0728,0.6931],null,'
    b'[6.946811,4],1],"cluster":[2,"garden"]},"segments":["cluster_2","email_engaged",'
    b'"first_time_buyer"],"seen":{"d15076b3cf5d4dc0":1790787373864,'
    b'"13c57cf1222a7c55":1790861425639},"due":1790863122125,'
    b'"definitions":"6e3e66432a43f5b8","moments":{"pending":[[1790863122125,'
    b'"cart_abandoned","delay","sim-3-000018-00075",0.6965,1790870322125,'
    b'[{"product_id":"p-garden-01","category":"garden"}]]],"last":{"cart_abandoned":'
    b'1790841702577},"sent":1790841702577,"day":["2026-10-01",3,{"cart_abandoned":1}]}}'
)

# written by the version 2 codec (main on 2026-12-02, before applied_offset)
V2_RECORD = bytes.fromhex(
    "0228b52ffd20ba3d0200f05b22632d37222c355b7d322c392e352c22746f7973227b7d2c5b357b7d5d"
    "0f00416000ed15202ee1c480b2305583a204582897542867d091332713916d5e0706c7649697b111")


def simulated_states() -> list[CustomerState]:
    processor = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False)
    for i, event in enumerate(simulate(customers=200, days=10, seed=3,
                                       start=1_790_000_000_000)):
        processor.process(orjson.dumps(event), Source("t", 0, i), event["ts"])
    return list(processor.store.data.values())


def test_a_version_1_record_restores_with_its_typed_parts() -> None:
    state = decode_state(V1_RECORD)
    assert state.customer_id == "sim-3-000018"
    assert state.orders == [[1790239481372, 36.03, "fd3faf637441e4fb", 0]]
    assert state.counters["product_views"] == [[497455, 16], [497461, 6]]
    assert state.moments["pending"] == [PendingTrigger(
        1790863122125, "cart_abandoned", "delay", "sim-3-000018-00075", 0.6965,
        1790870322125, [{"product_id": "p-garden-01", "category": "garden"}])]
    assert isinstance(state.moments["pending"][0], PendingTrigger)
    churn = state.models["churn"]
    assert isinstance(churn, OpenExample) and churn.baselines == [6.946811, 4]
    assert state.models["cluster"] == [2, "garden"]  # not a classifier: stays a list
    # re-written as version 3, it reads back the same
    again = encode_state(state)
    assert again[0] == 3
    assert decode_state(again) == state


def test_a_version_2_record_restores_without_an_applied_offset() -> None:
    state = decode_state(V2_RECORD)
    assert (state.customer_id, state.last_seen, state.cart) == (
        "c-7", 1790000500000, {"p-1": [2, 9.5, "toys"]})
    assert state.seen == {"0123456789abcdef": 1790000500000}
    assert state.applied_offset is None
    state.applied_offset = 41
    assert decode_state(encode_state(state)).applied_offset == 41


def test_every_simulated_state_round_trips_and_shrinks() -> None:
    states = simulated_states()
    assert any(s.moments.get("pending") for s in states)
    assert any(s.models.get("churn") for s in states)
    v2 = v1 = 0
    for state in states:
        data = encode_state(state)
        assert decode_state(data) == state
        v2 += len(data)
        v1 += len(orjson.dumps(state.to_dict(), default=list))
    assert v2 * 3 < v1  # the dictionary and the array drop what every customer repeats


def test_the_field_list_is_the_states() -> None:
    names = tuple(f.name for f in dataclasses.fields(CustomerState))
    assert names == FIELDS_V3, ("CustomerState's fields changed: add a codec version 4 "
                                "(segments/codec.py) instead of editing version 3")
    assert FIELDS_V3[:len(FIELDS_V2)] == FIELDS_V2


def test_the_version_2_dictionary_is_frozen() -> None:
    # every version 2 record refers to these bytes: editing them corrupts old records
    assert hashlib.sha256(DICTIONARY_V2).hexdigest()[:16] == "4a7b0a688402affc"
    orjson.loads(DICTIONARY_V2)  # readable: it is a made-up state in the v2 layout


@pytest.mark.parametrize("data", [b"", b"\x04abc", b"[1,2]", b"\x02not zstd",
                                  b"\x03not zstd"])
def test_bytes_no_version_wrote_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError) as raised:  # what a restore reports, with the key
        decode_state(data)
    if data[:1] not in (b"\x02", b"\x03", b"{"):
        assert raised.type is UnknownStateVersion
