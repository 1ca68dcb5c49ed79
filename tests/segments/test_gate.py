"""Gate edge cases found by the schema work."""

from __future__ import annotations

from segments.events import Interaction
from segments.gate import Gate, Rejection

NOW = 1_795_342_600_000


def test_integral_float_timestamp_is_read_not_a_crash() -> None:
    raw = b'{"event_id":"e","customer_id":"c","type":"login","ts":1795342500250.0}'
    checked = Gate().check(raw, NOW)
    assert isinstance(checked, Interaction) and checked.ts == 1_795_342_500_250


def test_overlong_customer_id_is_not_copied_into_the_dead_letter() -> None:
    raw = b'{"event_id":"e","customer_id":"' + b"c" * 200 + b'","type":"login","ts":0}'
    checked = Gate().check(raw, NOW)
    assert isinstance(checked, Rejection) and checked.customer_id is None


def test_a_byte_order_mark_before_json_is_not_json_not_bad_utf8() -> None:
    """Found by tests/segments/test_hostile_volume.py: orjson's message names UTF-8, so
    the gate said ``not_utf8`` for bytes that are valid UTF-8."""
    raw = b'\xef\xbb\xbf{"event_id":"e","customer_id":"c","type":"login","ts":1795342500250}'
    checked = Gate().check(raw, NOW)
    assert isinstance(checked, Rejection) and checked.reason == "not_json"


def test_utf16_json_is_not_utf8() -> None:
    raw = '{"event_id":"e","customer_id":"c","type":"login","ts":0}'.encode("utf-16")
    checked = Gate().check(raw, NOW)
    assert isinstance(checked, Rejection) and checked.reason == "not_utf8"
