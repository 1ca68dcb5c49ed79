"""The JSON Schemas of every event segstream reads or writes: the public contract.

One file per schema version (``<name>/<MODEL-REVISION-ADDITION>.json``), never edited
in place, with example documents beside it. The worker compiles these files; no
other copy of the rules exists.

>>> load("interaction", "1-0-0")["self"]["version"]
'1-0-0'
>>> ("dead-letter", "1-0-0") in names()
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_DIR", "examples", "load", "names", "path"]

SCHEMA_DIR = Path(__file__).resolve().parent


def path(name: str, version: str) -> Path:
    return SCHEMA_DIR / name / f"{version}.json"


def load(name: str, version: str) -> dict[str, Any]:
    with path(name, version).open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def names() -> list[tuple[str, str]]:
    """Every (name, version) shipped, sorted."""
    return sorted((p.parent.name, p.stem) for p in SCHEMA_DIR.glob("*/*.json"))


def examples(name: str, version: str) -> tuple[list[Path], list[Path]]:
    """The valid and the invalid example documents of one schema version."""
    base = SCHEMA_DIR / name / "examples" / version
    return sorted((base / "valid").glob("*.json")), sorted((base / "invalid").glob("*.json"))
