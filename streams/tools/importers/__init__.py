"""Importers: turn public event logs into interaction events (JSON lines).

Each format is a function ``(path, report) -> iterator of event dicts``; it counts what
it reads, skips (by reason) and notes in the :class:`ImportReport`. :func:`run_import`
sorts the events by time (ties by ``event_id``) and writes one ``orjson`` line each.
Event ids are functions of the source row, so importing the same file twice gives
byte-identical output. The mappings are documented in README.md, "Importing real logs".
"""

from __future__ import annotations

import hashlib
import importlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import orjson

from segments.timefmt import parse_ts
from streams.errors import UserError

if TYPE_CHECKING:
    from streams.tools.progress import Shown

__all__ = ["FORMATS", "ImportReport", "run_import"]


@dataclass
class ImportReport:
    """What one import did: source rows read, events written, rows skipped and notes."""

    read: int = 0
    written: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)  # kept events with a caveat
    format: str = ""

    def summary(self) -> str:
        """One human line: ``online-retail: 1,044,847 lines read, ... ; skipped: ...``."""
        types = ", ".join(f"{name} {count:,}" for name, count in _ranked(self.by_type))
        line = (f"{self.format or 'import'}: {self.read:,} lines read, "
                f"{self.written:,} events written")
        if types:
            line += f" ({types})"
        if self.skipped:
            line += "; skipped: " + ", ".join(
                f"{count:,} {reason}" for reason, count in _ranked(self.skipped))
        if self.notes:
            line += "; notes: " + ", ".join(
                f"{count:,} {note}" for note, count in _ranked(self.notes))
        return line


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def run_import(fmt: str, path: Path, out: IO[bytes],
               report: ImportReport | None = None,
               progress: Callable[[str, int], Shown] | None = None) -> ImportReport:
    """Import ``path`` as ``fmt`` and write the events to ``out`` in time order.

    ``progress(label, total)`` makes a progress display (:mod:`streams.tools.progress`)
    for each phase: reading (total unknown: 0) and writing (total: the events).

    Raises :class:`UserError` (one line, starting with the path) for an unknown format,
    a missing or unreadable file, or a file that is not in the format.
    """
    path = Path(path)
    report = report if report is not None else ImportReport()
    report.format = report.format or fmt
    importer = FORMATS.get(fmt)
    if importer is None:
        raise UserError(f"{path}: unknown import format {fmt!r} "
                        f"(known: {', '.join(sorted(FORMATS))})")
    check_file(path)
    if progress is None:
        events = sorted(importer(path, report), key=_order)
        for event in events:
            _write(out, event, report)
        return report
    reading = progress(f"reading {path.name}", 0)
    try:
        events = sorted(_shown(importer(path, report), reading), key=_order)
    finally:
        reading.close()
    writing = progress("writing", len(events))
    try:
        for n, event in enumerate(events, 1):
            _write(out, event, report)
            if not n & 1023:
                writing.show(time.monotonic(), n, n)
        writing.show(time.monotonic(), len(events), len(events), final=True)
    finally:
        writing.close()
    return report


def _write(out: IO[bytes], event: dict[str, Any], report: ImportReport) -> None:
    out.write(orjson.dumps(event) + b"\n")
    report.written += 1
    report.by_type[event["type"]] += 1


def _shown(events: Iterable[dict[str, Any]], shown: Shown) -> Iterator[dict[str, Any]]:
    """``events``, counted on ``shown`` as they are read."""
    n = 0
    for n, event in enumerate(events, 1):
        if not n & 1023:
            shown.show(time.monotonic(), n, n)
        yield event
    shown.show(time.monotonic(), n, n, final=True)


def _order(event: dict[str, Any]) -> tuple[int, str]:
    return parse_ts(event["ts"]), event["event_id"]


# Helpers shared by the importers.

def check_file(path: Path) -> None:
    """A one-line :class:`UserError` unless ``path`` is a readable regular file."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a regular file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def fail(path: Path, message: str) -> UserError:
    """A :class:`UserError` ``"<path>: <message>"`` squeezed onto one line."""
    return UserError(f"{path}: {' '.join(str(message).split())}")


def read_csv_rows(path: Path) -> list[list[str]]:
    """Every row of a UTF-8 CSV file; a file that is not one stops with one line."""
    import csv

    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.reader(handle))
    except UnicodeDecodeError as exc:
        raise fail(path, f"not a UTF-8 CSV file (bad byte at offset {exc.start})") from exc
    except csv.Error as exc:
        raise fail(path, f"not a CSV file ({exc})") from exc


def require_columns(path: Path, fmt: str, present: Iterable[str],
                    needed: Iterable[str]) -> None:
    """Fail naming the first missing column, and the columns the format needs."""
    have = set(present)
    needed = list(needed)
    missing = [name for name in needed if name not in have]
    if missing:
        raise fail(path, f"missing column {missing[0]!r} ({fmt} needs "
                         f"{', '.join(needed)})")


def first_sighting(event_id: str, seen: set[str], report: ImportReport) -> bool:
    """Whether ``event_id`` is new; a repeat is counted as ``duplicate_row``."""
    if event_id in seen:
        report.skipped["duplicate_row"] += 1
        return False
    seen.add(event_id)
    return True


def rfc3339(ms: int) -> str:
    """Epoch milliseconds as RFC 3339 UTC text, e.g. ``2010-06-01T08:00:00Z``."""
    seconds, millis = divmod(ms, 1000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z" if millis else f"{stamp}Z"


def bounded_id(text: str, limit: int = 128) -> str:
    """``text`` itself when it fits the contract's 128 characters, else a stable digest."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:24]
    return f"{text[:limit - 26]}~{digest}"


Reader = Callable[[Path, ImportReport], Iterator[dict[str, Any]]]


def _reader(module: str) -> Reader:
    """A format's ``read_events``, its module imported at the first read: the Online
    Retail reader loads pyarrow and numpy, a second of start-up for every command."""
    def read_events(path: Path, report: ImportReport) -> Iterator[dict[str, Any]]:
        found: Reader = importlib.import_module(f"{__name__}.{module}").read_events
        return found(path, report)

    return read_events


FORMATS: dict[str, Reader] = {
    "online-retail": _reader("online_retail"),
    "cdnow": _reader("cdnow"),
    "rees46": _reader("rees46"),
    "taobao": _reader("taobao"),
    "trivago": _reader("trivago"),
}
