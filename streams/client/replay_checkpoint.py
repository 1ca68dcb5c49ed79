"""The broker replay's checkpoint file: how far a replay got, so the next run resumes.

A small JSON document (``version``, ``position``, the absolute paths of the files
replayed, the ``topic`` and when it was ``updated``), rewritten atomically (a temporary
file, then ``os.replace``). ``position`` counts the records of the merged stream that
were produced and acknowledged, or filtered out; a checkpoint of other files is
refused rather than applied.

>>> import tempfile
>>> from pathlib import Path
>>> tmp = tempfile.TemporaryDirectory()
>>> folder = Path(tmp.name)
>>> logs = [folder / "a.jsonl"]
>>> read_checkpoint(folder / "cp.json", logs)  # none yet: from the start
0
>>> write_checkpoint(folder / "cp.json", logs, 42, "interactions")
>>> read_checkpoint(folder / "cp.json", logs)
42
>>> tmp.cleanup()
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from streams.errors import UserError

__all__ = ["CHECKPOINT_VERSION", "read_checkpoint", "write_checkpoint"]

CHECKPOINT_VERSION = 1


def _files_id(paths: Iterable[Path]) -> list[str]:
    return [str(p.resolve()) for p in paths]


def read_checkpoint(path: Path | None, paths: list[Path]) -> int:
    """The position recorded in ``path`` (0 if there is none yet)."""
    if path is None or not path.exists():
        return 0
    try:
        document = json.loads(path.read_text())
        position = int(document["position"])
        files = document.get("files")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a replay checkpoint ({type(exc).__name__})") from exc
    if position < 0:
        raise UserError(f"{path}: not a replay checkpoint (negative position)")
    if files is not None and files != _files_id(paths):
        raise UserError(f"{path}: checkpoint of other files ({', '.join(files)}); "
                        "delete it to start over")
    return position


def write_checkpoint(path: Path, paths: list[Path], position: int, topic: str) -> None:
    """Atomically record that the first ``position`` records are done."""
    document = {"version": CHECKPOINT_VERSION, "position": position,
                "files": _files_id(paths), "topic": topic,
                "updated": datetime.now(UTC).isoformat(timespec="seconds")}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    os.replace(tmp, path)
