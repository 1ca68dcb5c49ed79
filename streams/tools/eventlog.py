"""Reading JSON-lines event logs: the one reader of every tool, gzip or not.

A log is a file of JSON lines, gzip-compressed or not: told apart by the file's first
two bytes (gzip's magic number), never by its name. Blank lines are passed over; a
read error or a truncated gzip is a one-line :class:`UserError` naming the file.

- :func:`open_lines`: each line's number and exact bytes (the replays).
- :func:`read_jsonl`: each line as a JSON object (the lift report).
- :func:`merged_records`: several logs, each sorted by event time, merged into one
  stream in time order (``heapq.merge``, stable: on equal times the earlier file,
  then the earlier line, comes first), each line with its time and customer id.

>>> import gzip, tempfile
>>> from pathlib import Path
>>> tmp = tempfile.TemporaryDirectory()
>>> folder = Path(tmp.name)
>>> _ = (folder / "a.jsonl").write_bytes(b'{"customer_id": "c-1", "ts": 20}\\n\\n[1]\\n')
>>> _ = (folder / "b").write_bytes(gzip.compress(b'{"customer_id": "c-2", "ts": 10}\\n'))
>>> list(open_lines(folder / "a.jsonl"))
[(1, b'{"customer_id": "c-1", "ts": 20}'), (3, b'[1]')]
>>> [(r.ts, r.key, r.file.name, r.line) for r in merged_records([folder / "a.jsonl",
...                                                             folder / "b"])]
[(10, b'c-2', 'b', 1), (20, b'c-1', 'a.jsonl', 1), (20, None, 'a.jsonl', 3)]
>>> tmp.cleanup()
"""

from __future__ import annotations

import gzip
import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from segments.timefmt import TimestampError, parse_ts
from streams.errors import UserError

__all__ = ["Record", "file_records", "is_gzip", "merged_records", "open_lines",
           "parse_line", "read_jsonl"]

GZIP_MAGIC = b"\x1f\x8b"


def is_gzip(path: Path) -> bool:
    """Whether the file starts with gzip's magic number."""
    with path.open("rb") as probe:
        return probe.read(2) == GZIP_MAGIC


def open_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes without the newline) of each line that is not blank."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        with (gzip.open(path, "rb") if is_gzip(path) else path.open("rb")) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip(b"\r\n")
                if line.strip():
                    yield number, line
    except (OSError, EOFError) as exc:  # a truncated or corrupt gzip, a read error
        raise UserError(f"{path}: {exc or type(exc).__name__}") from exc


def read_jsonl(path: Path, skipped: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """The JSON objects of a log.

    With ``skipped`` (a one-item counter), lines that are not JSON objects are counted
    there and passed over, as the worker dead-letters them; otherwise they stop the run.
    """
    for number, line in open_lines(path):
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            if skipped is None:
                raise UserError(f"{path}:{number}: not a JSON object")
            skipped[0] += 1
            continue
        yield document


class Record(NamedTuple):
    """One line of a log, with what a producer keyed by customer needs of it."""

    ts: int | None        # event time (ms); an unreadable line inherits its file's last
    key: bytes | None     # customer id, UTF-8; None when unreadable
    value: bytes          # the line, byte for byte, without its newline
    file: Path
    line: int             # 1-based line number in ``file``
    parsed: bool = True   # False: not a JSON object with a readable ts


def parse_line(value: bytes, previous_ts: int | None) -> tuple[int | None, bytes | None, bool]:
    """(ts, key, parsed) of one line; an unreadable line keeps ``previous_ts``."""
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return previous_ts, None, False
    if not isinstance(document, dict):
        return previous_ts, None, False
    try:
        ts = parse_ts(document["ts"])
    except (KeyError, TimestampError):
        return previous_ts, None, False
    customer = document.get("customer_id")
    return ts, (customer.encode() if isinstance(customer, str) and customer else None), True


def file_records(path: Path) -> Iterator[Record]:
    """The records of one file, in file order."""
    previous: int | None = None
    for number, value in open_lines(path):
        ts, key, parsed = parse_line(value, previous)
        previous = ts
        yield Record(ts, key, value, path, number, parsed)


def _merge_key(record: Record) -> int:
    return -1 if record.ts is None else record.ts


def merged_records(paths: list[Path]) -> Iterator[Record]:
    """All files' records in time order (each file is assumed sorted by time)."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{missing[0]}: no such file")
    if len(paths) == 1:
        return file_records(paths[0])
    return heapq.merge(*(file_records(p) for p in paths), key=_merge_key)
