"""One event end to end: producer -> real broker -> `segstream worker` -> output topics."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.kafka_tools import assert_valid_outputs, consume, produce, running_worker, values

DEFINITIONS = """
[policies]
holdout = 0.0  # c-42 falls in the default 5% control group

[segments.first_time_buyer]
description = "Bought exactly once"
when = "purchases_total == 1"

[segments.big_cart]
when = "cart_value >= 100"

[moments.i_want_to_buy]
when = "event.type in ('add_to_cart', 'checkout_start')"
cooldown = "2h"
ttl = "15m"
"""


def event(event_id: str, customer: str, kind: str, ts: str, **props: object) -> bytes:
    doc = {"event_id": event_id, "customer_id": customer, "type": kind, "ts": ts,
           "context": {"device": "mobile", "channel": "app",
                       "geo": {"country": "DE", "city": "Berlin"}, "tz": "Europe/Berlin"}}
    if props:
        doc["properties"] = props
    return orjson.dumps(doc)


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


# these rules read no model feature: the same records with the models off
@pytest.mark.parametrize("flags", [(), ("--no-models",)], ids=["models", "no-models"])
def test_purchase_and_cart_flow_through_the_worker(bootstrap: str, prefix: str,
                                                  tmp_path: Path,
                                                  flags: tuple[str, ...]) -> None:
    definitions = tmp_path / "definitions.toml"
    definitions.write_text(DEFINITIONS)
    log = [
        # triggers need marketing consent (the default policy)
        ("c-42", event("e-0", "c-42", "consent_update", "2026-11-22T09:00:00.000Z",
                       marketing=True)),
        ("c-42", event("e-1", "c-42", "purchase", "2026-11-22T10:00:00.000Z",
                       order_id="o-1", revenue=59.0)),
        ("c-42", event("e-2", "c-42", "add_to_cart", "2026-11-22T10:15:00.250Z",
                       product_id="p-9", quantity=2, price=59.0, category="shoes")),
    ]
    with running_worker(bootstrap, prefix, tmp_path, "--definitions", str(definitions),
                        "--clock", "event", *flags) as worker:
        produce(bootstrap, f"{prefix}interactions", log)
        records = consume(bootstrap, [f"{prefix}segment-changes", f"{prefix}micro-moments"],
                          count=3, timeout=90, settle=2.0)
        stats = worker.get("/stats")
        metrics = worker.get_text("/metrics")
        models = worker.get("/models")
        assert worker.process is not None
        refit_processes = children(worker.process.pid)

    if flags:  # no models: nothing learnt, and no refit process loading SciPy
        assert models["partitions"] == {} and refit_processes == []
    else:
        assert sorted(models["partitions"]) == ["0", "1", "2"] and len(refit_processes) >= 1

    assert all(key == "c-42" for _, key, _ in records)
    assert_valid_outputs(records)
    changes = values(records, f"{prefix}segment-changes")
    triggers = values(records, f"{prefix}micro-moments")
    assert [(c["segment"], c["change"], c["at"], c["cause"]) for c in changes] == [
        ("first_time_buyer", "entered", "2026-11-22T10:00:00.000Z",
         {"kind": "event", "event_id": "e-1"}),
        ("big_cart", "entered", "2026-11-22T10:15:00.250Z",
         {"kind": "event", "event_id": "e-2"}),
    ]
    assert changes[0]["reason"] == {"purchases_total": 1}
    assert changes[0]["segments"] == ["first_time_buyer"]
    assert changes[1]["reason"] == {"cart_value": 118.0}
    assert changes[1]["segments"] == ["big_cart", "first_time_buyer"]
    assert len(triggers) == 1
    trigger = triggers[0]
    assert trigger["moment"] == "i_want_to_buy"
    assert trigger["at"] == "2026-11-22T10:15:00.250Z"
    assert trigger["expires_at"] == "2026-11-22T10:30:00.250Z"
    assert trigger["cause"] == {"kind": "event", "event_id": "e-2"}
    assert trigger["items"] == [{"product_id": "p-9", "category": "shoes"}]
    assert trigger["context"] == {"device": "mobile", "channel": "app", "city": "Berlin",
                                  "country": "DE", "tz": "Europe/Berlin", "local_time": "11:15"}
    assert trigger["segments"] == ["big_cart", "first_time_buyer"]
    assert stats["totals"] == {"consumed": 3, "applied": 3, "duplicates": 0,
                               "dead_lettered": 0}
    # Prometheus: the same accounting, and what came out
    lines = metrics.splitlines()
    consumed = [line for line in lines if line.startswith("segstream_events_consumed_total{")]
    assert sum(float(line.split()[-1]) for line in consumed) == 3
    assert 'segstream_triggers_total{moment="i_want_to_buy",outcome="sent"} 1.0' in lines
    assert 'segstream_segment_members{segment="big_cart"} 1.0' in lines
    assert ('segstream_segment_changes_total{change="entered",segment="first_time_buyer"} 1.0'
            in lines)
    assert "segstream_processing_seconds_count 3.0" in lines
    assert any(line.startswith("segstream_consumer_lag{") for line in lines)
