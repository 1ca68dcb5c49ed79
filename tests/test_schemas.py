"""The schemas are the contract: valid under the 2020-12 metaschema, compiled by
fastjsonschema (what the worker runs), and judged the same by jsonschema (the reference),
with or without format assertion, on every example and on generated documents."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from jsonschema import Draft202012Validator, FormatChecker

import schemas
from tests.strategies import NUMBERS, SPECIAL_STRINGS, mutated

ALL = schemas.names()
INTERACTION = ("interaction", "1-0-0")

# Keywords that fastjsonschema 2.x and jsonschema 4.x both implement for draft 2020-12.
# fastjsonschema silently ignores the rest (dependentSchemas, prefixItems,
# unevaluatedProperties, ...), so one of them would make the two validators disagree.
PORTABLE = {
    "$schema", "$id", "$ref", "$defs", "$comment", "title", "description", "self",
    "type", "enum", "const", "properties", "required", "additionalProperties",
    "propertyNames", "maxProperties", "items", "maxItems", "uniqueItems", "minLength",
    "maxLength", "pattern", "format", "minimum", "maximum", "allOf", "anyOf", "if", "then",
    "else",
}
SUBSCHEMA_MAPS = {"properties", "$defs"}
SUBSCHEMA_LISTS = {"allOf", "anyOf"}
SUBSCHEMAS = {"additionalProperties", "propertyNames", "items", "if", "then", "else"}


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _validators(name: str, version: str) -> tuple[Any, Draft202012Validator,
                                                  Draft202012Validator, Any]:
    """fastjsonschema, jsonschema asserting formats, jsonschema treating them as notes,
    and jsonschema-rs asserting formats (the gate's fast path for valid events)."""
    schema = schemas.load(name, version)
    return (fastjsonschema.compile(schema),
            Draft202012Validator(schema, format_checker=FormatChecker()),
            Draft202012Validator(schema),
            jsonschema_rs.validator_for(schema, validate_formats=True))


def _fast_ok(fast: Any, doc: Any) -> bool:
    try:
        fast(doc)
        return True
    except fastjsonschema.JsonSchemaValueException:
        return False


def _verdicts(validators: tuple[Any, Draft202012Validator, Draft202012Validator, Any],
              doc: Any) -> tuple[bool, bool, bool, bool]:
    fast, with_formats, without_formats, rust = validators
    return (_fast_ok(fast, doc), with_formats.is_valid(doc), without_formats.is_valid(doc),
            rust.is_valid(doc))


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema object inside ``schema`` (not the data-valued keywords' contents)."""
    if not isinstance(schema, dict):
        return
    yield schema
    for key, value in schema.items():
        if key in SUBSCHEMA_MAPS:
            for sub in value.values():
                yield from _subschemas(sub)
        elif key in SUBSCHEMA_LISTS:
            for sub in value:
                yield from _subschemas(sub)
        elif key in SUBSCHEMAS:
            yield from _subschemas(value)


# --- the schema files themselves ------------------------------------------------------

def test_every_contract_schema_is_shipped() -> None:
    assert {n for n, _ in ALL} == {"interaction", "segment-change", "micro-moment",
                                   "dead-letter"}


@pytest.mark.parametrize(("name", "version"), ALL)
def test_schema_is_valid_and_self_describing(name: str, version: str) -> None:
    schema = schemas.load(name, version)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://segstream.io/schemas/{name}/{version}.json"
    assert schema["title"] and schema["description"]
    assert schema["self"] == {"vendor": "io.segstream", "name": name, "format": "jsonschema",
                              "version": version}
    assert re.fullmatch(r"[0-9]+-[0-9]+-[0-9]+", version)


@pytest.mark.parametrize(("name", "version"), ALL)
def test_fastjsonschema_compiles_it(name: str, version: str) -> None:
    assert callable(fastjsonschema.compile(schemas.load(name, version)))


@pytest.mark.parametrize(("name", "version"), ALL)
def test_only_keywords_both_validators_implement(name: str, version: str) -> None:
    for sub in _subschemas(schemas.load(name, version)):
        assert set(sub) <= PORTABLE, set(sub) - PORTABLE


@pytest.mark.parametrize(("name", "version"), ALL)
def test_every_string_and_array_is_bounded(name: str, version: str) -> None:
    """Iglu style; the base64 `raw` and the Kafka `key` of a dead letter are copies of
    bytes the broker already accepted, and documented as unbounded."""
    for sub in _subschemas(schemas.load(name, version)):
        types = sub.get("type", [])
        types = [types] if isinstance(types, str) else types
        if "string" in types and not {"maxLength", "enum", "const"} & set(sub):
            assert "unbounded" in sub.get("description", "").lower(), sub
        if "array" in types:
            assert "maxItems" in sub, sub


@pytest.mark.parametrize(("name", "version"), ALL)
def test_patterns_mean_the_same_in_python_and_ecma(name: str, version: str) -> None:
    """Python's ``$`` also matches before a final newline and ``\\d`` matches any Unicode
    digit; fastjsonschema rewrites ``$`` to ``\\Z`` but jsonschema does not. So patterns
    use ``[0-9]`` and end in ``$(?!\\n)``, which means plain ``$`` in ECMA-262 too."""
    schema = schemas.load(name, version)
    patterns = [s["pattern"] for s in _subschemas(schema) if "pattern" in s]
    assert patterns
    for pattern in patterns:
        assert pattern.startswith("^") and pattern.endswith("$(?!\\n)"), pattern
        assert pattern.count("$") == 1 and "\\d" not in pattern, pattern
        re.compile(pattern)


@pytest.mark.parametrize(("name", "version"), [n for n in ALL if n != INTERACTION])
def test_outputs_are_closed_shapes(name: str, version: str) -> None:
    for sub in _subschemas(schemas.load(name, version)):
        if "properties" in sub and sub.get("type") == "object":
            assert sub.get("additionalProperties") is False, sub.get("description", sub)


def test_interaction_per_type_blocks_have_the_shape_the_gate_reads() -> None:
    """segments/gate.py cuts one validator per type out of ``allOf``: every entry must be
    ``if {type: const T} then {...}``, at most one per type, and a type with a required
    property must require ``properties``."""
    schema = schemas.load(*INTERACTION)
    types = schema["properties"]["type"]["enum"]
    seen = []
    for block in schema["allOf"]:
        assert set(block) == {"if", "then"}
        assert block["if"] == {"properties": {"type": {"const": block["if"]["properties"][
            "type"]["const"]}}, "required": ["type"]}
        kind = block["if"]["properties"]["type"]["const"]
        assert kind in types
        seen.append(kind)
        target = block["then"]["properties"]["properties"]["$ref"]
        definition = schema["$defs"][target.removeprefix("#/$defs/")]
        needs = bool(definition.get("required")) or "anyOf" in definition
        assert (block["then"].get("required") == ["properties"]) == needs, kind
    assert len(seen) == len(set(seen))
    assert set(types) - set(seen) == {"login", "app_open", "email_unsubscribe", "erase_request"}


def test_interaction_type_list_is_the_contracts() -> None:
    assert schemas.load(*INTERACTION)["properties"]["type"]["enum"] == [
        "page_view", "product_view", "search", "add_to_cart", "remove_from_cart",
        "checkout_start", "purchase", "refund", "login", "app_open", "feature_use",
        "content_view", "store_locator", "email_open", "email_click", "email_unsubscribe",
        "push_open", "consent_update", "profile_update", "erase_request"]


# --- examples --------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "version"), ALL)
def test_examples_pass_and_fail_in_both_validators(name: str, version: str) -> None:
    validators = _validators(name, version)
    valid, invalid = schemas.examples(name, version)
    assert len(valid) >= 1 and len(invalid) >= 3
    for path in valid:
        assert _verdicts(validators, _load(path)) == (True, True, True, True), path.name
    for path in invalid:
        assert _verdicts(validators, _load(path)) == (False, False, False, False), path.name


@pytest.mark.parametrize(("name", "version"), ALL)
def test_examples_are_named_for_what_they_show(name: str, version: str) -> None:
    valid, invalid = schemas.examples(name, version)
    for path in valid + invalid:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.json", path.name), path.name
        if isinstance(doc := _load(path), dict):
            assert "_why" not in doc and "$comment" not in doc, path.name


def test_one_valid_example_per_interaction_type() -> None:
    schema = schemas.load(*INTERACTION)
    valid, _ = schemas.examples(*INTERACTION)
    kinds = [_load(p)["type"] for p in valid]
    assert set(kinds) == set(schema["properties"]["type"]["enum"])
    for kind in schema["properties"]["type"]["enum"]:
        assert f"{kind.replace('_', '-')}.json" in {p.name for p in valid}, kind


def test_invalid_interaction_examples_cover_the_usual_mistakes() -> None:
    _, invalid = schemas.examples(*INTERACTION)
    names = {p.stem for p in invalid}
    assert len(names) >= 12
    assert names >= {
        "missing-event-id", "empty-customer-id", "customer-id-too-long", "unknown-type",
        "ts-without-offset", "ts-as-float", "ts-negative-integer", "purchase-missing-order-id",
        "revenue-is-string", "negative-price-item", "quantity-zero", "bad-currency",
        "consent-update-without-flags", "content-view-bad-kind", "items-not-an-array"}


# --- the two validators agree on documents nobody wrote by hand --------------------------
# (the generated documents come from tests/strategies.py, shared with the hostile-input tests)


def _agreement_test(name: str, version: str) -> Any:
    validators = _validators(name, version)
    valid, invalid = schemas.examples(name, version)
    seeds = [_load(p) for p in valid + invalid]

    @settings(max_examples=400, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(mutated(seeds))
    def agree(doc: Any) -> None:
        verdicts = _verdicts(validators, doc)
        assert len(set(verdicts)) == 1, (verdicts, json.dumps(doc)[:400])

    return agree


@pytest.mark.parametrize(("name", "version"), ALL)
def test_validators_agree_on_generated_documents(name: str, version: str) -> None:
    _agreement_test(name, version)()


@pytest.mark.parametrize("value", SPECIAL_STRINGS + NUMBERS + [True, None, [], {}])
@pytest.mark.parametrize("field", ["ts", "customer_id", "type"])
def test_validators_agree_on_every_special_value(field: str, value: Any) -> None:
    validators = _validators(*INTERACTION)
    doc = _load(schemas.examples(*INTERACTION)[0][0])
    doc[field] = value
    assert len(set(_verdicts(validators, doc))) == 1, (field, value)


def test_validators_agree_on_seeded_random_mutations() -> None:
    """A second, dumber generator that needs no hypothesis: a fixed seed, 300 per schema."""
    rng = random.Random(7)
    junk = [None, -1, 0, 1.5, "", "x" * 200, [], {}, True, *SPECIAL_STRINGS[:20]]
    for name, version in ALL:
        validators = _validators(name, version)
        valid, invalid = schemas.examples(name, version)
        seeds = [_load(p) for p in valid + invalid]
        for _ in range(300):
            doc = copy.deepcopy(rng.choice(seeds))
            target = doc
            while isinstance(target, dict) and target and rng.random() < 0.6:
                key = rng.choice(sorted(target))
                if not isinstance(target[key], dict):
                    break
                target = target[key]
            if isinstance(target, dict) and target:
                key = rng.choice(sorted(target))
                if rng.random() < 0.3:
                    del target[key]
                else:
                    target[key] = rng.choice(junk)
            assert len(set(_verdicts(validators, doc))) == 1, json.dumps(doc)[:300]


# --- the code that reads and writes these documents --------------------------------------

def test_gate_accepts_exactly_what_the_reference_validator_accepts() -> None:
    """The gate's per-type validators are cut from the file; they must not drift from it."""
    from segments.gate import Gate, Rejection

    gate = Gate()
    _, reference, _, _ = _validators(*INTERACTION)
    valid, invalid = schemas.examples(*INTERACTION)
    rng = random.Random(11)
    seeds = [_load(p) for p in valid + invalid]
    docs = list(seeds)
    for _ in range(600):
        doc = copy.deepcopy(rng.choice(seeds))
        if isinstance(doc, dict) and doc:
            target = doc.get("properties") if isinstance(doc.get("properties"), dict) and \
                rng.random() < 0.5 else doc
            if target:
                key = rng.choice(sorted(target))
                target[key] = rng.choice([None, -1, 0, 1.5, "", "x" * 200, [], {}, True,
                                          "2026-13-40T99:00:00Z"])
        docs.append(doc)
    now = 1_795_342_500_250
    for doc in docs:
        checked = gate.check(json.dumps(doc).encode(), now)
        schema_ok = not (isinstance(checked, Rejection) and checked.reason in (
            "schema_violation", "unknown_type", "not_an_object"))
        assert schema_ok == reference.is_valid(doc), json.dumps(doc)[:300]


def test_gate_survives_an_integral_float_timestamp() -> None:
    from segments.gate import Gate

    raw = b'{"event_id":"e1","customer_id":"c1","type":"login","ts":1795342500250.0}'
    assert _verdicts(_validators(*INTERACTION), json.loads(raw)) == (True, True, True, True)
    event = Gate().check(raw, 1_795_342_600_000)
    assert getattr(event, "ts", None) == 1_795_342_500_250


def test_records_the_worker_writes_match_their_schemas() -> None:
    from segments.records import Cause, dead_letter, micro_moment, segment_change

    at = 1_795_342_500_250
    records = {
        "segment-change": [
            segment_change("c-42", "high_value", True, at, Cause("event", "e-1"),
                           {"purchases_90d": 3, "revenue_365d": 612.5, "p_alive": None},
                           ["first_time_buyer", "high_value"], "e73b71dab183285e"),
            segment_change("c-42", "lapsed", False, at, Cause("time"), {}, [],
                           "e73b71dab183285e"),
        ],
        "micro-moment": [
            micro_moment("c-42", "i_want_to_buy", 0.91, at, 900_000, Cause("event", "e-1"),
                         {"device": "mobile", "channel": "app", "city": "Berlin",
                          "country": "DE", "tz": "Europe/Berlin", "local_time": "11:15"},
                         [{"product_id": "p-9", "category": None}], ["high_value"],
                         "e73b71dab183285e", suppressed="holdout"),
        ],
        "dead-letter": [
            dead_letter("schema_violation", "x" * 5000, "/properties", topic="interactions",
                        partition=0, offset=17, key=b"c-42", timestamp=at, raw=b"{}",
                        customer_id="c-42", processed_at=at),
            dead_letter("not_utf8", "bad bytes", None, topic="p.interactions", partition=3,
                        offset=0, key=None, timestamp=None, raw=b"\xff\xfe",
                        customer_id=None, processed_at=at),
        ],
    }
    for name, docs in records.items():
        validators = _validators(name, "1-0-0")
        for doc in docs:
            assert _verdicts(validators, doc) == (True, True, True, True), doc
