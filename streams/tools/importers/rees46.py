"""REES46 multi-category store (CSV with a header): one event per row.

``view`` -> ``product_view``, ``cart`` -> ``add_to_cart``, ``remove_from_cart`` ->
``remove_from_cart``, ``purchase`` -> ``purchase`` (one item, ``revenue`` = its price).
``event_time`` is UTC (``2019-10-01 00:00:00 UTC``); ``user_session`` becomes
``context.session_id``. Exact repeats of a row (same time, type, product, user and
session) get the same ``event_id`` and are skipped as ``duplicate_row``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streams.tools.importers import (
    bounded_id,
    fail,
    first_sighting,
    read_csv_rows,
    require_columns,
    rfc3339,
)

if TYPE_CHECKING:
    from streams.tools.importers import ImportReport

__all__ = ["TYPES", "read_events"]

NAME = "rees46"
COLUMNS = ("event_time", "event_type", "product_id", "category_id", "category_code",
           "brand", "price", "user_id", "user_session")
TYPES = {"view": "product_view", "cart": "add_to_cart",
         "remove_from_cart": "remove_from_cart", "purchase": "purchase"}
_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[ T]([0-9]{2}:[0-9]{2}:[0-9]{2})"
                   r"(?: ?(?:UTC|Z|\+00:00))?")


def read_events(path: Path, report: ImportReport) -> Iterator[dict[str, Any]]:
    """The events of one REES46 CSV file (a month of the original, or a slice of one)."""
    rows = read_csv_rows(path)
    if not rows:
        raise fail(path, "empty file: not a rees46 CSV")
    header = [name.strip().lstrip("\ufeff") for name in rows[0]]
    require_columns(path, NAME, header, COLUMNS)
    at = {name: header.index(name) for name in COLUMNS}
    width = len(header)
    seen: set[str] = set()
    seconds: dict[str, int | None] = {}
    for row in rows[1:]:
        if not row:
            continue
        report.read += 1
        if len(row) != width:
            report.skipped["malformed_row"] += 1
            continue
        kind = TYPES.get(row[at["event_type"]])
        if kind is None:
            report.skipped["unknown_event_type"] += 1
            continue
        customer, product = row[at["user_id"]].strip(), row[at["product_id"]].strip()
        if not customer:
            report.skipped["no_customer"] += 1
            continue
        if not product:
            report.skipped["no_product"] += 1
            continue
        stamp = row[at["event_time"]]
        epoch = seconds.get(stamp, -1)
        if epoch == -1:
            epoch = seconds[stamp] = _epoch_seconds(stamp)
        if epoch is None:
            report.skipped["bad_time"] += 1
            continue
        price = _price(row[at["price"]])
        if price is False or (price is None and kind == "purchase"):
            report.skipped["bad_price"] += 1
            continue
        session = row[at["user_session"]].strip()
        key = f"{session or 'user-' + customer}-{product}-{epoch}"
        event_id = bounded_id(f"r46-{row[at['event_type']]}-{key}")
        if not first_sighting(event_id, seen, report):
            continue
        category = (row[at["category_code"]].strip() or row[at["category_id"]].strip())[:128]
        brand = row[at["brand"]].strip()[:128]
        about: dict[str, Any] = {"product_id": bounded_id(product)}
        if category:
            about["category"] = category
        if brand:
            about["brand"] = brand
        if kind == "purchase":
            properties: dict[str, Any] = {
                "order_id": bounded_id(key), "revenue": price,
                "items": [{**about, "quantity": 1, "price": price}]}
        else:
            properties = about if price is None else {**about, "price": price}
        event: dict[str, Any] = {"event_id": event_id, "customer_id": bounded_id(customer),
                                 "type": kind, "ts": rfc3339(epoch * 1000),
                                 "properties": properties}
        if session:
            event["context"] = {"session_id": bounded_id(session)}
        yield event


def _epoch_seconds(text: str) -> int | None:
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    try:
        moment = datetime.fromisoformat(f"{match[1]}T{match[2]}").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(moment.timestamp())


def _price(text: str) -> float | bool | None:
    """The price; ``None`` when empty, ``False`` when unusable (not a number, < 0)."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return False
    if not math.isfinite(value) or not 0 <= value <= 1e9:
        return False
    return value
