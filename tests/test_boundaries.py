"""The core stays free of Kafka and Faust: checked on the source, not by convention."""

from __future__ import annotations

import ast
from pathlib import Path

import segments

FORBIDDEN = {"faust", "aiokafka", "kafka", "mode"}


def test_segments_imports_no_kafka_or_faust() -> None:
    root = Path(segments.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}:{node.lineno} {n}" for n in names
                          if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
    assert len(list(root.rglob("*.py"))) >= 10  # the walk really saw the core
