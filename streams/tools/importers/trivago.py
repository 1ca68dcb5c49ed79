"""trivago RecSys Challenge 2019 sessions (Parquet): one event per session step.

Searches and refinements of the result list become ``search`` (the query is the
``reference``: a destination, a point of interest, a filter or a sort order), every
act on one accommodation becomes ``product_view`` of that item (a clickout also carries
the item's displayed price). ``properties.action`` keeps the original ``action_type``
and ``properties.destination`` the session's ``city``: the city *searched for*, not where
the user is, so it is not put in ``context.geo.city``. ``platform`` (the trivago country
site) gives ``context.geo.country`` (``UK`` -> ``GB``; ``AA``, no country, is omitted and
noted), ``device`` gives ``context.device`` and ``session_id`` ``context.session_id``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from streams.tools.importers import bounded_id, fail, first_sighting, require_columns, rfc3339

if TYPE_CHECKING:
    from streams.tools.importers import ImportReport

__all__ = ["ACTIONS", "read_events"]

NAME = "trivago"
COLUMNS = ("user_id", "session_id", "timestamp", "step", "action_type", "reference",
           "platform", "city", "device")
OPTIONAL = ("impressions", "prices")
# action_type -> interaction type
ACTIONS = {
    "search for destination": "search",
    "search for poi": "search",
    "filter selection": "search",
    "change of sort order": "search",
    "search for item": "product_view",
    "clickout item": "product_view",
    "interaction item image": "product_view",
    "interaction item info": "product_view",
    "interaction item rating": "product_view",
    "interaction item deals": "product_view",
}
PLATFORMS = {"UK": "GB", "AA": None}  # trivago site codes that are not ISO 3166 codes
DEVICES = frozenset({"desktop", "mobile", "tablet", "tv"})
MIN_SECONDS = 946_684_800  # 2000-01-01, the contract's earliest instant


def read_events(path: Path, report: ImportReport) -> Iterator[dict[str, Any]]:
    """The events of one trivago sessions Parquet file (train.csv's columns)."""
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as exc:
        raise fail(path, f"not a Parquet file ({exc})") from exc
    require_columns(path, NAME, names, COLUMNS)
    wanted = [*COLUMNS, *(name for name in OPTIONAL if name in names)]
    try:
        table = pq.read_table(path, columns=wanted)
        columns = {name: _column(table[name], name) for name in wanted}
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise fail(path, f"unreadable {NAME} data ({exc})") from exc
    count = table.num_rows
    impressions = columns.get("impressions", [None] * count)
    prices = columns.get("prices", [None] * count)
    seen: set[str] = set()
    for user, session, seconds, step, action, reference, platform, city, device, shown, \
            price_list in zip(*(columns[name] for name in COLUMNS), impressions, prices,
                              strict=True):
        report.read += 1
        kind = ACTIONS.get(action)
        if kind is None:
            report.skipped["unknown_action"] += 1
            continue
        if not user or not session:
            report.skipped["no_customer" if not user else "no_session"] += 1
            continue
        if not reference or reference == "unknown":
            report.skipped["unknown_reference"] += 1
            continue
        if seconds is None or seconds < MIN_SECONDS:
            report.skipped["bad_time"] += 1
            continue
        event_id = bounded_id(f"trv-{session}-{step}-{seconds}")
        if not first_sighting(event_id, seen, report):
            continue
        properties: dict[str, Any]
        if kind == "search":
            properties = {"query": reference[:512], "action": action}
        else:
            properties = {"product_id": bounded_id(reference), "action": action}
            if action == "clickout item":
                price = _price(reference, shown, price_list)
                if price is not None:
                    properties["price"] = price
        if city:
            properties["destination"] = city
        context: dict[str, Any] = {"session_id": bounded_id(session),
                                   "device": device if device in DEVICES else "other"}
        country = PLATFORMS.get(platform, platform) if platform else None
        if country and len(country) == 2 and country.isascii() and country.isupper():
            context["geo"] = {"country": country}
        else:
            report.notes["unknown_country"] += 1
        yield {"event_id": event_id, "customer_id": bounded_id(user), "type": kind,
               "ts": rfc3339(seconds * 1000), "properties": properties, "context": context}


def _column(column: pa.ChunkedArray, name: str) -> list[Any]:
    if name in ("timestamp", "step"):
        return pc.cast(column, pa.int64()).to_pylist()
    return pc.cast(column, pa.string()).to_pylist()


def _price(reference: str, shown: str | None, price_list: str | None) -> float | None:
    """The price displayed for the clicked item, from the aligned impressions/prices."""
    if not shown or not price_list:
        return None
    items, values = shown.split("|"), price_list.split("|")
    if len(items) != len(values) or reference not in items:
        return None
    try:
        value = float(values[items.index(reference)])
    except ValueError:
        return None
    return value if 0 <= value <= 1e9 else None
