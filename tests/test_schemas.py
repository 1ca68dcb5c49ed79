"""The schemas are the contract: valid under the metaschema, and both fastjsonschema
(what the worker runs) and jsonschema (the reference) agree on every example."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
from jsonschema import Draft202012Validator, FormatChecker

import schemas

ALL = schemas.names()


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _validators(name: str, version: str) -> tuple[Any, Draft202012Validator]:
    schema = schemas.load(name, version)
    return fastjsonschema.compile(schema), Draft202012Validator(schema,
                                                                format_checker=FormatChecker())


def _fast_ok(fast: Any, doc: Any) -> bool:
    try:
        fast(doc)
        return True
    except fastjsonschema.JsonSchemaValueException:
        return False


def test_every_contract_schema_is_shipped() -> None:
    assert {n for n, _ in ALL} == {"interaction", "segment-change", "micro-moment",
                                   "dead-letter"}


@pytest.mark.parametrize(("name", "version"), ALL)
def test_schema_is_valid_and_self_describing(name: str, version: str) -> None:
    schema = schemas.load(name, version)
    Draft202012Validator.check_schema(schema)
    assert schema["self"] == {"vendor": "io.segstream", "name": name, "format": "jsonschema",
                              "version": version}


@pytest.mark.parametrize(("name", "version"), ALL)
def test_examples_pass_and_fail_in_both_validators(name: str, version: str) -> None:
    fast, reference = _validators(name, version)
    valid, invalid = schemas.examples(name, version)
    assert len(valid) >= 1 and len(invalid) >= 3
    for path in valid:
        doc = _load(path)
        assert _fast_ok(fast, doc), path.name
        assert reference.is_valid(doc), path.name
    for path in invalid:
        doc = _load(path)
        assert not _fast_ok(fast, doc), path.name
        assert not reference.is_valid(doc), path.name


def test_one_valid_example_per_interaction_type() -> None:
    schema = schemas.load("interaction", "1-0-0")
    valid, _ = schemas.examples("interaction", "1-0-0")
    assert {_load(p)["type"] for p in valid} == set(schema["properties"]["type"]["enum"])


def _mutations(doc: Any, rng: random.Random) -> Any:
    doc = copy.deepcopy(doc)
    junk = [None, -1, 0, 1.5, "", "x" * 200, [], {}, True, "2026-13-40T99:00:00Z"]
    target = doc
    path = []
    while isinstance(target, dict) and target and rng.random() < 0.6:
        key = rng.choice(sorted(target))
        path.append(key)
        if not isinstance(target[key], dict):
            break
        target = target[key]
    if isinstance(target, dict) and target:
        key = rng.choice(sorted(target))
        if rng.random() < 0.3:
            del target[key]
        else:
            target[key] = rng.choice(junk)
    return doc


@pytest.mark.parametrize(("name", "version"), ALL)
def test_validators_agree_on_mutated_documents(name: str, version: str) -> None:
    fast, reference = _validators(name, version)
    valid, invalid = schemas.examples(name, version)
    rng = random.Random(7)
    seeds = [_load(p) for p in valid + invalid]
    for _ in range(300):
        doc = _mutations(rng.choice(seeds), rng)
        assert _fast_ok(fast, doc) == reference.is_valid(doc), json.dumps(doc)[:300]


def test_gate_accepts_exactly_what_the_reference_validator_accepts() -> None:
    """The gate's per-type validators are cut from the file; they must not drift from it."""
    from segments.gate import Gate, Rejection

    gate = Gate()
    _, reference = _validators("interaction", "1-0-0")
    valid, invalid = schemas.examples("interaction", "1-0-0")
    rng = random.Random(11)
    seeds = [_load(p) for p in valid + invalid]
    docs = seeds + [_mutations(rng.choice(seeds), rng) for _ in range(600)]
    now = 1_795_342_500_250
    for doc in docs:
        checked = gate.check(json.dumps(doc).encode(), now)
        schema_ok = not (isinstance(checked, Rejection) and checked.reason in (
            "schema_violation", "unknown_type", "not_an_object"))
        assert schema_ok == reference.is_valid(doc), json.dumps(doc)[:300]
