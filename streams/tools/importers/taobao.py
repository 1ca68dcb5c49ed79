"""Taobao UserBehavior (CSV, no header): ``user_id, item_id, category_id, behavior,
unix_timestamp``; one event per row.

``pv`` -> ``product_view``, ``cart`` -> ``add_to_cart``, ``fav`` -> ``product_view`` with
``properties.favorite = true`` (a favourite is made on the product page; the contract
has no favourite type), ``buy`` -> ``purchase`` with ``revenue`` 0 (the log has no
prices and the contract requires a revenue). ``context.tz`` is Asia/Shanghai (Taobao's
users are in China). Rows outside the data set's documented window, 2017-11-25 00:00 to
2017-12-03 24:00 China time, are skipped as ``outside_window``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.tools.importers import bounded_id, fail, first_sighting, read_csv_rows, rfc3339

if TYPE_CHECKING:
    from streams.tools.importers import ImportReport

__all__ = ["TYPES", "WINDOW", "read_events"]

TYPES = {"pv": "product_view", "cart": "add_to_cart", "fav": "product_view",
         "buy": "purchase"}
WINDOW = (1_511_539_200, 1_512_316_800)  # [2017-11-24T16:00Z, 2017-12-03T16:00Z)
CONTEXT = {"tz": "Asia/Shanghai"}


def read_events(path: Path, report: ImportReport) -> Iterator[dict[str, Any]]:
    """The events of one Taobao UserBehavior CSV file."""
    rows = read_csv_rows(path)
    rows = [row for row in rows if row]
    if not rows:
        raise fail(path, "empty file: not a Taobao UserBehavior CSV")
    if _parse(rows[0]) is None:
        raise fail(path, f"not a Taobao UserBehavior CSV: the first row {_clip(rows[0])} is "
                         "not user_id,item_id,category_id,pv|cart|fav|buy,unix_timestamp "
                         "(the file has no header)")
    seen: set[str] = set()
    start, end = WINDOW
    for row in rows:
        report.read += 1
        parsed = _parse(row)
        if parsed is None:
            known = len(row) == 5 and row[3].strip() in TYPES
            report.skipped["malformed_row" if known or len(row) != 5
                           else "unknown_behavior"] += 1
            continue
        user, item, category, behavior, seconds = parsed
        if not start <= seconds < end:
            report.skipped["outside_window"] += 1
            continue
        event_id = bounded_id(f"tb-{user}-{item}-{behavior}-{seconds}")
        if not first_sighting(event_id, seen, report):
            continue
        kind = TYPES[behavior]
        about = {"product_id": item, "category": category}
        if kind == "purchase":
            properties: dict[str, Any] = {
                "order_id": bounded_id(f"{user}-{item}-{seconds}"), "revenue": 0,
                "items": [about]}
        elif behavior == "fav":
            properties = {**about, "favorite": True}
        else:
            properties = about
        yield {"event_id": event_id, "customer_id": user, "type": kind,
               "ts": rfc3339(seconds * 1000), "properties": properties,
               "context": dict(CONTEXT)}


def _parse(row: list[str]) -> tuple[str, str, str, str, int] | None:
    if len(row) != 5:
        return None
    user, item, category, behavior, stamp = (field.strip() for field in row)
    if behavior not in TYPES or not (user and item and category):
        return None
    if len(user) > 128 or len(item) > 128 or len(category) > 128:
        return None
    try:
        seconds = int(stamp)
    except ValueError:
        return None
    return user, item, category, behavior, seconds


def _clip(row: list[str]) -> str:
    text = ",".join(row)
    return repr(text if len(text) <= 60 else text[:57] + "...")
