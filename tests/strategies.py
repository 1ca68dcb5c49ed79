"""Hypothesis strategies the tests share, all derived from the schemas in ``schemas/``.

The mutated documents (any schema's examples with values replaced, deleted or added)
are what tests/test_schemas.py holds the validators to agree on. The hostile records
(valid interaction events among random bytes, invalid UTF-8, truncated and deeply
nested JSON, huge numbers, NaN, wrong types, unknown fields, oversized strings,
unicode edge cases, timestamps far out of range, repeated event ids) are what
tests/segments/test_hostile_volume.py throws at the gate and the engine, and
tests/integration/test_hostile_input.py at a real worker through the broker. Each
hostile record says which outcomes it allows, so a test can check every one of
thousands without knowing them in advance.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import schemas

SPECIAL_STRINGS = [
    "", " ", "x" * 65, "x" * 129, "x" * 513, "\n", "DE", "DE\n", "de", "D", "EUR", "EUR\n",
    "eur", "mobile", "smartphone", "Europe/Berlin", "Etc/GMT+5", "../etc", "12:30", "24:00",
    "12:30\n", "high_value", "High_value", "high_value\n", "0123456789abcdef",
    "0123456789abcdef\n", "0123456789abcdef" * 2, "0123456789ABCDEF" * 2, "eyJ=", "eyJ",
    "eyJ9\n", "/properties/0", "/a~2", "properties", "interaction/1-0-0",
    "segment-change/1-0-0", "micro-moment/1-0-0", "dead-letter/1-0-0", "entered", "event",
    "time", "holdout", "schema_violation", "purchase", "login", "how_to",
    "2026-11-22T10:15:00.250Z", "2026-11-22T10:15:00.250Z\n", "2026-11-22T10:15:00Z",
    "2026-11-22T10:15:00", "2026-11-22t10:15:00z", "2026-11-22 10:15:00Z",
    "2026-11-22T11:15:00.123456789+01:00", "2026-11-22T10:15:00+0100",
    "2026-02-29T10:15:00.000Z", "2028-02-29T10:15:00.000Z", "2100-02-29T10:15:00.000Z",
    "2000-02-29T10:15:00.000Z", "2026-04-31T10:15:00.000Z", "2016-12-31T23:59:60.000Z",
    "2026-11-22T24:00:00.000Z", "\u0662\u0660\u0662\u0666-11-22T10:15:00.000Z",
    "2026-11-22T10:15:00.0000000001Z",
]
NUMBERS = [0, -0.0, 1, -1, 1.0, 1.5, 10000, 10001, 1e9, 1e9 + 1, 90, 90.5, -180, 2**63,
           1795342500250, 1795342500250.0, 1e300, -1e-9]
JUNK = st.recursive(
    st.one_of(st.none(), st.booleans(), st.sampled_from(SPECIAL_STRINGS),
              st.sampled_from(NUMBERS), st.integers(), st.floats(allow_nan=False,
                                                                 allow_infinity=False),
              st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.sampled_from(["a", "product_id", "eu"]), inner,
                                            max_size=2)),
    max_leaves=4)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A seed document with one to three values replaced, deleted or added."""
    doc = copy.deepcopy(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 3))):
        target = doc
        while isinstance(target, (dict, list)) and target and draw(st.integers(0, 9)) < 6:
            key = draw(st.sampled_from(sorted(target) if isinstance(target, dict)
                                       else range(len(target))))
            if not isinstance(target[key], (dict, list)) or not target[key]:
                break
            target = target[key]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if isinstance(target, dict):
            if action == "add" or not target:
                target[draw(st.sampled_from(["extra", "ip", "marketing", "quantity", "due",
                                             "held_until", "model_version", "attributes"]))] \
                    = draw(JUNK)
            else:
                key = draw(st.sampled_from(sorted(target)))
                if action == "delete":
                    del target[key]
                else:
                    target[key] = draw(JUNK)
        elif isinstance(target, list):
            if action == "add" or not target:
                target.append(draw(JUNK))
            elif action == "delete":
                target.pop(draw(st.integers(0, len(target) - 1)))
            else:
                target[draw(st.integers(0, len(target) - 1))] = draw(JUNK)
    return doc


def example_documents(name: str, version: str) -> tuple[list[Any], list[Any]]:
    """The valid and the invalid example documents of a schema, parsed."""
    valid, invalid = schemas.examples(name, version)
    return ([json.loads(p.read_text(encoding="utf-8")) for p in valid],
            [json.loads(p.read_text(encoding="utf-8")) for p in invalid])


# --- hostile records for the gate and the engine ------------------------------------------

INTERACTION = ("interaction", "1-0-0")
VALID_SEEDS, INVALID_SEEDS = example_documents(*INTERACTION)
_SCHEMA = schemas.load(*INTERACTION)
KNOWN_TYPES = frozenset(_SCHEMA["properties"]["type"]["enum"])
DECLARED = frozenset(_SCHEMA["properties"])
# every reason a dead letter may give (the dead-letter schema's list)
REASONS = frozenset(schemas.load("dead-letter", "1-0-0")["properties"]["reason"]["enum"])
ACCEPTED = "accepted"  # an allowed outcome: the gate lets the record through
ANY = REASONS | {ACCEPTED}
MAX_EVENT_BYTES = 64 * 1024  # the gate's default limit (README, --max-event-bytes)

# The instant every generated timestamp is measured from. A valid event happened in
# the 90 days before it, a "far" one before 2000 or after 2090: with a wall clock
# anywhere between NOW and 2089, the gate's verdict does not depend on when a test runs.
NOW = 1_795_342_600_000  # 2026-11-22T10:16:40Z
VALID_FROM = NOW - 90 * 86_400_000
FAR_TIMESTAMPS: list[Any] = [
    0, 1, -1, 946_684_799_999, 4_102_444_800_000, 10**13, 10**15, 2**53, 2**63 - 1,
    2**63, 2**64 - 1, 10**20, 1e300, 1e15, "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00", "0000-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z",
    "1999-12-31T23:59:59.999999999Z", "2000-01-01T00:00:00+00:01", "2090-01-01T00:00:00Z",
    "2099-12-31T23:59:59Z", "9999-12-31T23:59:59.999999999-23:59", "9999-12-31T23:59:59Z",
    "10000-01-01T00:00:00Z", "+2026-11-22T10:00:00Z", "-2026-11-22T10:00:00Z",
]
# the gate must refuse each of these as not JSON wherever it stands
NOT_JSON_LITERALS = ["NaN", "-NaN", "Infinity", "-Infinity", "+Infinity", "nan", "inf",
                     "+1", "01", "1.", ".5", "-", "0x10", "1e", "1e+", "--1", "1_000",
                     "undefined", "None", "True", "'text'", '"\\ud800"', '"a\\udfffb"',
                     '"\\ude00\\ud83d"', '"\\ud800\\u0041"', '"\\ud83d"', '"\x00"', '"\x1f"',
                     '"a\nb"', '"\\x41"', '"\\u12"', "[1,]", "{,}", '"unterminated']
HUGE_NUMBERS = ["1e400", "1E+400", "-1e400", "1e-400", "-0", "-0.0", "0." + "0" * 400 + "1",
                "1" + "0" * 5000, "18446744073709551616", "18446744073709551615",
                "9223372036854775808", "-9223372036854775809", "123456789.123456789e300",
                "4.9e-324", "2.2250738585072014e-308", "1.7976931348623157e308",
                "1.7976931348623159e308", "99999999999999999999999999999999999999.5"]
INVALID_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
                b"\xed\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xc3",
                b"\xe2\x82", b"\xf0\x9f\x98"]
# text a valid event may carry in any free string: control characters, bidi marks,
# emoji, combining marks (not NFC), non-characters, a BOM inside a string
EDGE_TEXT = ["\x00", "a\x00b", "\u200f\u202eevil\u202c", "\u2066x\u2069", "😀", "👩‍👩‍👧‍👦",
             "e\u0301", "é", "\ufeff", "\uffff", "\U0010ffff", "𝔘𝔫𝔦", "x" * 128, " ", "\n\t",
             "ǅ", "İ", "ß", "\u0085", "\u2028", "\u00ad", "\\", '"', "</script>"]
# time zone names the schema's pattern accepts: real ones, unknown ones, and names of
# the zone database's folders and files that are no zone
TIME_ZONES = ["Europe/Berlin", "Asia/Kolkata", "Pacific/Chatham", "America/St_Johns",
              "Etc/GMT-14", "Etc/GMT+12", "UTC", "EST5EDT", "Factory", "Nowhere/Land",
              "A/B/C", "America", "Etc", "Europe", "right/UTC", "posix/Europe/Berlin",
              "posixrules", "localtime", "zone1970", "leapseconds", "iso3166", "tzdata"]
CUSTOMERS = [f"c-{n}" for n in range(12)] + EDGE_TEXT[:8]
EVENT_IDS = [f"e-{n}" for n in range(2000)] + EDGE_TEXT  # some repeat
UNKNOWN_NAMES = ["x_extra", "ip", "", "\x00", "😀", "e\u0301", "k" * 300, "$ref", "__proto__",
                 "constructor", "a.b", "/", "~1"]
KEYS = [None, b"", b"k-1", b"\xff\xfe", "😀".encode(), b"\x00"]
_LITERAL = "\x1bliteral\x1b"  # where a literal is spliced into the serialized text


@dataclass(frozen=True, slots=True, repr=False)
class Generated:
    """One generated record: its value, its Kafka key, the outcomes it allows
    (dead-letter reasons, :data:`ACCEPTED`), and which kind of hostility it is. Over
    :data:`MAX_EVENT_BYTES` a record is ``too_large`` whatever it allows."""

    raw: bytes
    key: bytes | None
    expect: frozenset[str]
    kind: str

    def __repr__(self) -> str:  # a falsifying batch holds megabytes: show their start
        raw = repr(self.raw[:120]) + (f"...({len(self.raw):,} bytes)" if len(self.raw) > 120
                                      else "")
        return f"Generated({self.kind}, {raw}, key={self.key!r}, expect={sorted(self.expect)})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints a dataclass field by field otherwise


def _ts_text(ms: int, offset_minutes: int) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(ms / 1000, UTC).astimezone(zone).isoformat(
        timespec="milliseconds")


# Hypothesis costs some 50-100 µs a draw here: a record's incidental choices (which
# example, ids, time, an extra field, the JSON style, the key) come from one seeded
# random.Random drawn per record, and Hypothesis draws what makes it hostile.
_RANDOM = st.integers(0, 2**64 - 1).map(random.Random)
# epoch milliseconds (None) or RFC 3339 text at one of these UTC offsets, in minutes
_OFFSETS = [None, 0, 60, 330, -300, -720, 840]
_EXTRA_PLACES = [None, None, None, "top", "properties", "context"]
_EXTRA_VALUES: list[Any] = [*EDGE_TEXT, *SPECIAL_STRINGS, *NUMBERS, None, True, [], {},
                            {"a": [1, {"b": None}]}, -(2**63), 2**64 - 1, "x" * 5000]
_STYLES = [(ascii, separators) for ascii in (False, True)
           for separators in ((",", ":"), (", ", ": "))]
_CONTEXT_DECLARED = frozenset({"device", "channel", "session_id", "geo", "tz", "user_agent"})


def _serialized(rnd: random.Random, doc: Any, literal: str | None = None) -> bytes:
    """``doc`` as JSON text, compact or spaced, escaped to ASCII or not; a string
    :data:`_LITERAL` in it replaced by ``literal`` (text no encoder would write)."""
    ascii, separators = rnd.choice(_STYLES)
    text = json.dumps(doc, ensure_ascii=ascii, separators=separators)
    if literal is not None:
        text = text.replace(json.dumps(_LITERAL), literal)
    return text.encode("utf-8")


def _key_of(doc: Any) -> bytes | None:
    """A producer keys by customer id (so a customer's events stay in order on one
    partition); every record that may pass the gate is keyed so."""
    customer = doc.get("customer_id") if isinstance(doc, dict) else None
    return customer.encode("utf-8") if isinstance(customer, str) else None


_MONEY = [0, 0.0, 5e-324, 0.005, 1e9, 999_999_999.99]
# the bounds of declared values: one document in four takes its numbers from here
_EXTREMES: dict[str, list[Any]] = {
    "revenue": _MONEY, "price": _MONEY, "amount": _MONEY, "cart_value": _MONEY,
    "discount": _MONEY, "quantity": [1, 10_000, 10_000.0], "results": [0, 2**63 - 1, 2**64 - 1],
    "lat": [-90, 90, -0.0], "lon": [-180, 180, 179.999999]}
_ATTRIBUTE_VALUES: list[Any] = [1e308, -1e308, 2**64 - 1, -(2**63), 5e-324, True, "v" * 128,
                                ["w" * 64] * 50, []]


def _extreme(rnd: random.Random, value: Any) -> None:
    """Push a valid document's declared numbers to their bounds, its arrays to their
    longest, and a profile to 64 attributes."""
    if isinstance(value, list):
        for item in value:
            _extreme(rnd, item)
        return
    if not isinstance(value, dict):
        return
    for key in list(value):
        if key in _EXTREMES:
            value[key] = rnd.choice(_EXTREMES[key])
        elif key == "items" and isinstance(value[key], list) and value[key]:
            count = rnd.choice([50, 500, 1000])  # the most the schema allows (and 64 KiB)
            value[key] = [copy.deepcopy(rnd.choice(value[key])) for _ in range(count)]
        elif key == "attributes" and isinstance(value[key], dict):
            value[key].update({f"a{n}": rnd.choice(_ATTRIBUTE_VALUES)
                               for n in range(64 - len(value[key]))})
        _extreme(rnd, value[key])


def document(rnd: random.Random) -> dict[str, Any]:
    """A valid example of some type, its ids, time and extra fields varied: unknown
    fields are allowed everywhere, and ids may hold any text up to 128 characters."""
    doc: dict[str, Any] = copy.deepcopy(rnd.choice(VALID_SEEDS))
    doc["event_id"] = rnd.choice(EVENT_IDS)
    doc["customer_id"] = rnd.choice(CUSTOMERS)
    ts, offset = rnd.randint(VALID_FROM, NOW), rnd.choice(_OFFSETS)
    doc["ts"] = ts if offset is None else _ts_text(ts, offset)
    if isinstance(doc.get("context"), dict) and rnd.randrange(4) == 0:
        doc["context"]["tz"] = rnd.choice(TIME_ZONES)
    if rnd.randrange(4) == 0:
        _extreme(rnd, doc)
    where = rnd.choice(_EXTRA_PLACES)  # an unknown field, one time in two
    target = doc if where == "top" else doc.get(where) if where else None
    avoid = DECLARED if where == "top" else _CONTEXT_DECLARED if where == "context" else set()
    name = rnd.choice(UNKNOWN_NAMES)
    if isinstance(target, dict) and name not in avoid and name not in target:
        target[name] = rnd.choice(_EXTRA_VALUES)
    return doc


VALID_DOCUMENT = _RANDOM.map(document)


@st.composite
def _valid(draw: st.DrawFn) -> Generated:
    rnd = draw(_RANDOM)
    doc = document(rnd)
    return Generated(_serialized(rnd, doc), _key_of(doc), frozenset({ACCEPTED}), "valid")


VALID = _valid()
_PLACES = ["ts", "event_id", "unknown", "properties", "geo"]


@st.composite
def _spliced(draw: st.DrawFn, literals: st.SearchStrategy[str], kind: str,
             expect: Callable[[str], frozenset[str]]) -> Generated:
    """A valid document with one value (``ts``, a declared field, an unknown one)
    written as a literal of ``literals``; ``expect(place)`` the outcomes it allows."""
    rnd = draw(_RANDOM)
    doc = document(rnd)
    place = rnd.choice(_PLACES)
    if place == "unknown":
        doc["x_literal"] = _LITERAL
    elif place == "properties":
        doc["properties"] = {**(doc.get("properties") or {}), "x_literal": _LITERAL}
    elif place == "geo":
        doc["context"] = {**(doc.get("context") or {}), "geo": {"lat": _LITERAL}}
    else:
        doc[place] = _LITERAL
    raw = _serialized(rnd, doc, draw(literals))
    return Generated(raw, _key_of(doc), expect(place), kind)


def _huge_expect(place: str) -> frozenset[str]:
    if place in ("unknown", "properties"):  # ignored fields: read, or a number JSON
        return frozenset({ACCEPTED, "not_json"})  # cannot hold in a double
    return frozenset({ACCEPTED, "not_json", "schema_violation", "bad_timestamp"})


@st.composite
def _invalid_utf8(draw: st.DrawFn) -> Generated:
    rnd = draw(_RANDOM)
    doc = document(rnd)
    marker = "@@bad@@"
    doc[rnd.choice(["customer_id", "event_id", "x_extra"])] = "a" + marker + "b"
    raw = _serialized(rnd, doc).replace(marker.encode(), rnd.choice(INVALID_UTF8))
    return Generated(raw, rnd.choice(KEYS), frozenset({"not_utf8"}), "invalid_utf8")


@st.composite
def _encoded_otherwise(draw: st.DrawFn) -> Generated:
    """A valid document in UTF-16 or UTF-32, or UTF-8 behind a byte order mark."""
    rnd = draw(_RANDOM)
    text = json.dumps(document(rnd), ensure_ascii=False)
    encoding = rnd.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "bom"])
    raw = b"\xef\xbb\xbf" + text.encode() if encoding == "bom" else text.encode(encoding)
    return Generated(raw, rnd.choice(KEYS), frozenset({"not_utf8", "not_json"}), "encoding")


@st.composite
def _truncated(draw: st.DrawFn) -> Generated:
    generated = draw(VALID)
    cut = draw(st.integers(0, len(generated.raw) - 1))
    return Generated(generated.raw[:cut], generated.key, frozenset({"not_json", "not_utf8"}),
                     "truncated")


_DEPTHS = st.one_of(st.sampled_from([2, 254, 255, 1000, 1023, 1024, 1025, 10_000, 40_000]),
                    st.integers(1, 12_000))


@st.composite
def _nested(draw: st.DrawFn) -> Generated:
    """Arrays or objects nested up to 40,000 deep, alone, unclosed or inside an event."""
    depth = draw(_DEPTHS)
    rnd = draw(_RANDOM)
    shape = rnd.choice(["array", "object", "unclosed", "in_event", "in_field"])
    key = rnd.choice(KEYS)
    if shape == "array":
        raw = b"[" * depth + b"]" * depth
        expect = {"not_json", "not_an_object", "too_large"}
    elif shape == "object":
        raw = b'{"a":' * depth + b"1" + b"}" * depth
        expect = {"not_json", "schema_violation", "too_large"}
    elif shape == "unclosed":
        raw = b"[{" * depth
        expect = {"not_json", "too_large"}
    else:
        nest = "[" * depth + "]" * depth
        doc = document(rnd)
        if shape == "in_event":  # an unknown field: ignored, if it can be read
            doc["x_deep"] = _LITERAL
            expect = {ACCEPTED, "not_json", "too_large"}
        else:  # a declared one: wrong at any depth
            doc["properties"] = _LITERAL
            expect = {"schema_violation", "not_json", "too_large"}
        raw = _serialized(rnd, doc, nest)
        key = _key_of(doc)
    return Generated(raw, key, frozenset(expect), "nested")


_SMALL_LISTS = st.lists(JUNK, max_size=3)
_SMALL_DICTS = st.dictionaries(st.text(max_size=5), JUNK, max_size=2)
_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_WRONG = st.one_of(st.none(), st.booleans(), st.integers(), _SMALL_LISTS, _SMALL_DICTS, _FINITE)
# per declared top-level field, values its schema refuses
_WRONG_VALUES = {
    "event_id": st.one_of(_WRONG, st.sampled_from(["", "x" * 129, "é" * 129])),
    "customer_id": st.one_of(_WRONG, st.sampled_from(["", "x" * 129, "😀" * 129])),
    "type": _WRONG,
    "ts": st.one_of(st.none(), st.booleans(), _SMALL_LISTS, _SMALL_DICTS,
                    _FINITE.filter(lambda f: not f.is_integer()), st.integers(max_value=-1),
                    st.sampled_from(["yesterday", "", "2026-11-22", "2026-11-22T10:15:00",
                                     "2026-13-01T00:00:00Z", "2026-11-22t10:15:00z",
                                     "2026-11-22T10:15:00Z\n", "x" * 41])),
    "properties": st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                            _SMALL_LISTS),
    "schema": st.one_of(_WRONG, st.text(max_size=20)).filter(
        lambda v: v != "interaction/1-0-0"),
}
_WRONG_VALUES["context"] = _WRONG_VALUES["properties"]
_WRONG_FIELDS = sorted(_WRONG_VALUES)


@st.composite
def _wrong_type(draw: st.DrawFn) -> Generated:
    """A declared top-level field holding a value its schema refuses."""
    rnd = draw(_RANDOM)
    doc = document(rnd)
    field = rnd.choice(_WRONG_FIELDS)
    doc[field] = draw(_WRONG_VALUES[field])
    return Generated(_serialized(rnd, doc), _key_of(doc), frozenset({"schema_violation"}),
                     "wrong_type")


_UNKNOWN_TYPES = st.one_of(st.text(max_size=30), st.sampled_from(
    ["Purchase", "purchase ", "PURCHASE", "purchase\n", "page-view", "teleport", "x" * 1000]
)).filter(lambda t: t not in KNOWN_TYPES)


@st.composite
def _unknown_type(draw: st.DrawFn) -> Generated:
    rnd = draw(_RANDOM)
    doc = document(rnd)
    doc["type"] = draw(_UNKNOWN_TYPES)
    return Generated(_serialized(rnd, doc), _key_of(doc), frozenset({"unknown_type"}),
                     "unknown_type")


_FAR = st.one_of(st.sampled_from(FAR_TIMESTAMPS), st.integers(0, 946_684_799_999),
                 st.integers(4_102_444_800_000, 2**64))


@st.composite
def _far_timestamp(draw: st.DrawFn) -> Generated:
    rnd = draw(_RANDOM)
    doc = document(rnd)
    doc["ts"] = draw(_FAR)
    return Generated(_serialized(rnd, doc), _key_of(doc),
                     frozenset({"bad_timestamp", "schema_violation"}), "far_timestamp")


_NEAR_LIMIT = st.sampled_from([60_000, 65_000, 65_300, 65_400, 65_536, 70_000])


@st.composite
def _oversized(draw: st.DrawFn) -> Generated:
    """A valid event carrying a long string in an unknown field: up to the limit it
    is an event, past it ``too_large``; one in thirty is megabytes long."""
    rnd = draw(_RANDOM)
    doc = document(rnd)
    length = rnd.choice([1_048_576, 2_000_000]) if rnd.randrange(30) == 0 else draw(_NEAR_LIMIT)
    char = rnd.choice(["x", "é", "😀", "\x00", "\u202e"])
    # no more than `length` bytes, in UTF-8 or escaped to ASCII (\u0000 is six)
    doc["x_padding"] = char * (length // max(len(char.encode()), len(json.dumps(char)) - 2))
    raw = _serialized(rnd, doc)
    expect = {"too_large"} if len(raw) > MAX_EVENT_BYTES else {ACCEPTED}
    return Generated(raw, _key_of(doc), frozenset(expect), "oversized")


_MUTATED = mutated(VALID_SEEDS + INVALID_SEEDS)


@st.composite
def _mutated_document(draw: st.DrawFn) -> Generated:
    doc = draw(_MUTATED)
    return Generated(_serialized(draw(_RANDOM), doc), _key_of(doc), ANY, "mutated")


_NON_OBJECTS = st.one_of(JUNK.filter(lambda v: not isinstance(v, dict)),
                         st.lists(VALID_DOCUMENT, min_size=1, max_size=2))


@st.composite
def _not_an_object(draw: st.DrawFn) -> Generated:
    rnd = draw(_RANDOM)
    return Generated(_serialized(rnd, draw(_NON_OBJECTS)), rnd.choice(KEYS),
                     frozenset({"not_an_object"}), "not_an_object")


_BYTES = st.binary(max_size=300)
_ANY_KEY = st.one_of(st.sampled_from(KEYS), st.binary(max_size=8))


@st.composite
def _random_bytes(draw: st.DrawFn) -> Generated:
    return Generated(draw(_BYTES), draw(_ANY_KEY), ANY, "random_bytes")


_HOSTILE = st.one_of(
    _random_bytes(), _invalid_utf8(), _encoded_otherwise(), _truncated(), _nested(),
    _spliced(st.sampled_from(HUGE_NUMBERS) | st.integers(19, 400).map(
        lambda n: ("-" if n % 2 else "") + "9" * n), "huge_number", _huge_expect),
    _spliced(st.sampled_from(NOT_JSON_LITERALS), "not_json_literal",
             lambda _: frozenset({"not_json"})),
    _wrong_type(), _unknown_type(), _far_timestamp(), _oversized(), _mutated_document(),
    _not_an_object())
_PERCENT = st.integers(0, 99)


@st.composite
def hostile_record(draw: st.DrawFn) -> Generated:
    """A valid event three times in ten, else one kind of hostility."""
    return draw(VALID if draw(_PERCENT) < 30 else _HOSTILE)


HOSTILE_RECORD = hostile_record()


@st.composite
def hostile_batch(draw: st.DrawFn, size: int) -> list[Generated]:
    """``size`` records, then some of them again, byte for byte (redelivered or
    re-sent records: a valid one comes back as a duplicate)."""
    records = [draw(HOSTILE_RECORD) for _ in range(size)]
    for _ in range(draw(st.integers(0, size // 20))):
        records.append(records[draw(st.integers(0, len(records) - 1))])
    return records


def drawn_records(count: int, batch: int = 200) -> list[Generated]:
    """At least ``count`` records of :func:`hostile_batch`, the same ones on every run
    (derandomized): for a test that sends them all at once, through a real broker."""
    drawn: list[Generated] = []

    @settings(max_examples=-(-count // batch), deadline=None, derandomize=True,
              database=None, phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(hostile_batch(batch))
    def collect(records: list[Generated]) -> None:
        drawn.extend(records)

    collect()
    assert len(drawn) >= count, len(drawn)
    return drawn
