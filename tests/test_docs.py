"""The README shows what the code does: the feature table is the catalog's."""

from __future__ import annotations

from pathlib import Path

from segments.catalog import markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_feature_table_is_generated_from_the_catalog() -> None:
    assert markdown_table().strip() in README.read_text()
