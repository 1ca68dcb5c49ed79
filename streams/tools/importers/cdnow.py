"""CDNOW (whitespace-separated text): one ``purchase`` per line.

Two layouts, told apart by the number of columns: the master file (header line, then
``customer_id date cds dollars``) and the 1/10 sample (no header, ``customer_id
customer_index date cds dollars``). The data has only the day of a purchase: the event
is put at 12:00 UTC of that day, moved :data:`YEAR_SHIFT` (28) years later, because the
contract's gate refuses instants before 2000-01-01 (28 years keep every weekday and leap
day: 1997-01-01, a Wednesday, becomes 2025-01-01, a Wednesday); ``properties.source_date``
keeps the real day. ``order_id`` is ``<customer>-<date>-<n>``, ``n`` the
purchase's rank among that customer's purchases of that day in the file, so a purchase
gets the same ids from the master file and from the sample.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.tools.importers import bounded_id, fail, rfc3339

if TYPE_CHECKING:
    from streams.tools.importers import ImportReport

__all__ = ["YEAR_SHIFT", "read_events"]

CURRENCY = "USD"
MAX_QUANTITY = 10_000
_DATE = re.compile(r"[0-9]{8}")
_LAYOUTS = {4: "master", 5: "sample"}
YEAR_SHIFT = 28  # 1997-1998 -> 2025-2026: the gate accepts no instant before 2000


def read_events(path: Path, report: ImportReport) -> Iterator[dict[str, Any]]:
    """The purchases of one CDNOW master or sample file."""
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise fail(path, f"not a CDNOW text file (non-ASCII byte at offset {exc.start})"
                   ) from exc
    rows = [(number, line.split()) for number, line in enumerate(text.splitlines(), 1)]
    rows = [(number, fields) for number, fields in rows if fields]
    if rows and not _is_data(rows[0][1]):  # the master file's header line
        rows = rows[1:]
    if not rows:
        raise fail(path, "no CDNOW purchases in the file")
    number, fields = rows[0]
    width = len(fields)
    if width not in _LAYOUTS or not _is_data(fields):
        raise fail(path, f"not a CDNOW file: line {number} has {width} column(s) "
                         "(expected customer_id date cds dollars, 4 columns, or the "
                         "sample's customer_id index date cds dollars, 5 columns)")
    seen: Counter[tuple[str, str]] = Counter()
    day_ms: dict[str, int | None] = {}
    for _, fields in rows:
        report.read += 1
        if len(fields) != width or not _is_data(fields):
            report.skipped["malformed_line"] += 1
            continue
        customer, date, cds_text, dollars_text = (
            fields if width == 4 else [fields[0], *fields[2:]])
        ms = day_ms.get(date, -1)
        if ms == -1:
            ms = day_ms[date] = _noon_utc_ms(date)
        if ms is None:
            report.skipped["bad_date"] += 1
            continue
        cds, dollars = int(cds_text), float(dollars_text)
        if dollars < 0 or cds < 0:
            report.skipped["negative_value"] += 1
            continue
        seen[customer, date] += 1
        order = f"{customer}-{date}-{seen[customer, date]}"
        properties: dict[str, Any] = {
            "order_id": bounded_id(order), "revenue": round(dollars, 2), "currency": CURRENCY,
            "source_date": f"{date[:4]}-{date[4:6]}-{date[6:]}"}
        if 1 <= cds <= MAX_QUANTITY:
            properties["items"] = [{"product_id": "cd", "quantity": cds}]
        yield {"event_id": bounded_id(f"cdnow-{order}"), "customer_id": customer,
               "type": "purchase", "ts": rfc3339(ms), "properties": properties}


def _is_data(fields: list[str]) -> bool:
    """Whether the fields look like a CDNOW purchase line (of either layout)."""
    if len(fields) not in _LAYOUTS:
        return False
    customer, date, cds, dollars = fields if len(fields) == 4 else [fields[0], *fields[2:]]
    try:
        int(cds)
        if not math.isfinite(float(dollars)):
            return False
    except ValueError:
        return False
    return customer.isalnum() and bool(_DATE.fullmatch(date)) and (
        len(fields) == 4 or fields[1].isdigit())


def _noon_utc_ms(date: str) -> int | None:
    """12:00 UTC of ``YYYYMMDD`` moved :data:`YEAR_SHIFT` years on, in epoch ms.

    >>> from streams.tools.importers import rfc3339
    >>> rfc3339(_noon_utc_ms("19970101"))
    '2025-01-01T12:00:00Z'
    """
    try:
        day = datetime.strptime(date, "%Y%m%d")
        day = day.replace(year=day.year + YEAR_SHIFT, hour=12, tzinfo=UTC)
    except ValueError:
        return None
    return int(day.timestamp()) * 1000
