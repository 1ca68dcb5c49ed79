"""The JSON Schemas (draft 2020-12) of every event segstream reads or writes.

One file per schema version, ``<name>/<MODEL>-<REVISION>-<ADDITION>.json`` (SchemaVer),
never edited in place, with example documents beside it in
``<name>/examples/<version>/valid/`` and ``.../invalid/`` (each invalid one named for its
defect). The worker compiles these files; no other copy of the rules exists. What each
field means, and the rules beyond the schemas: ``schemas/README.md``.

>>> [name for name, version in names() if version == "1-0-0"]
['dead-letter', 'interaction', 'micro-moment', 'segment-change']
>>> schema = load("interaction", "1-0-0")
>>> schema["self"]
{'vendor': 'io.segstream', 'name': 'interaction', 'format': 'jsonschema', 'version': '1-0-0'}
>>> path("interaction", "1-0-0").relative_to(SCHEMA_DIR).as_posix()
'interaction/1-0-0.json'
>>> valid, invalid = examples("interaction", "1-0-0")
>>> [p.name for p in invalid if p.name.startswith("missing")]
['missing-event-id.json']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_DIR", "examples", "load", "names", "path"]

SCHEMA_DIR: Path = Path(__file__).resolve().parent


def path(name: str, version: str) -> Path:
    """Where the schema ``name`` at ``version`` lives (the file may not exist)."""
    return SCHEMA_DIR / name / f"{version}.json"


def load(name: str, version: str) -> dict[str, Any]:
    """The schema as a fresh dict (the caller may change it); ``FileNotFoundError`` if absent."""
    with path(name, version).open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def names() -> list[tuple[str, str]]:
    """Every ``(name, version)`` shipped, sorted."""
    return sorted((p.parent.name, p.stem) for p in SCHEMA_DIR.glob("*/*.json"))


def examples(name: str, version: str) -> tuple[list[Path], list[Path]]:
    """The valid and the invalid example documents of one schema version, each sorted."""
    base = SCHEMA_DIR / name / "examples" / version
    return sorted((base / "valid").glob("*.json")), sorted((base / "invalid").glob("*.json"))
