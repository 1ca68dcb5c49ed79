"""UCI Online Retail II (Parquet): one ``purchase`` per invoice, one ``refund`` per
cancellation invoice (number starting with ``C``).

Lines are filtered with vectorised Arrow kernels (each skipped line counted under one
reason, in this order: ``no_customer``, ``no_invoice``, ``adjustment_invoice`` for ``A``
invoices, ``no_stock_code``, ``quantity_not_positive`` / ``cancel_quantity_not_negative``,
``negative_price``), then sorted by invoice and grouped with NumPy. ``InvoiceDate`` is UK
wall-clock time without a zone: read as Europe/London (GMT in winter, BST in summer; a
minute the clocks skip or repeat is read as BST) and written as UTC; an invoice whose
lines carry different minutes takes the earliest.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import schemas
from streams.tools.importers import bounded_id, fail, require_columns, rfc3339

if TYPE_CHECKING:
    from streams.tools.importers import ImportReport

__all__ = ["COUNTRIES", "MAX_ITEMS", "read_events"]

NAME = "online-retail"
LONDON = ZoneInfo("Europe/London")
CURRENCY = "GBP"
_PURCHASE = schemas.load("interaction", "1-0-0")["$defs"]["purchase"]["properties"]
MAX_ITEMS: int = _PURCHASE["items"]["maxItems"]
MAX_QUANTITY: int = _PURCHASE["items"]["items"]["properties"]["quantity"]["maximum"]

# column -> accepted names (the UCI release of 2019 spells three of them differently)
COLUMNS = {
    "InvoiceNo": ("InvoiceNo", "Invoice"),
    "StockCode": ("StockCode",),
    "Quantity": ("Quantity",),
    "InvoiceDate": ("InvoiceDate",),
    "UnitPrice": ("UnitPrice", "Price"),
    "CustomerID": ("CustomerID", "Customer ID"),
    "Country": ("Country",),
}

# Every country name of the data set -> ISO 3166-1 alpha-2. None: no single code
# (the event gets no geo; counted as the note ``unknown_country``).
COUNTRIES: dict[str, str | None] = {
    "Australia": "AU", "Austria": "AT", "Bahrain": "BH", "Belgium": "BE",
    "Bermuda": "BM", "Brazil": "BR", "Canada": "CA", "Channel Islands": None,
    "Cyprus": "CY", "Czech Republic": "CZ", "Denmark": "DK", "EIRE": "IE",
    "European Community": None, "Finland": "FI", "France": "FR", "Germany": "DE",
    "Greece": "GR", "Hong Kong": "HK", "Iceland": "IS", "Israel": "IL", "Italy": "IT",
    "Japan": "JP", "Korea": "KR", "Lebanon": "LB", "Lithuania": "LT", "Malta": "MT",
    "Netherlands": "NL", "Nigeria": "NG", "Norway": "NO", "Poland": "PL",
    "Portugal": "PT", "RSA": "ZA", "Saudi Arabia": "SA", "Singapore": "SG",
    "Spain": "ES", "Sweden": "SE", "Switzerland": "CH", "Thailand": "TH",
    "USA": "US", "United Arab Emirates": "AE", "United Kingdom": "GB",
    "Unspecified": None, "West Indies": None,
}


def read_events(path: Path, report: ImportReport) -> Iterator[dict[str, Any]]:
    """The purchases and refunds of one Online Retail II Parquet file."""
    table = _read(path)
    report.read += table.num_rows
    invoice, stock = table["InvoiceNo"], table["StockCode"]
    quantity, price, customer = table["Quantity"], table["UnitPrice"], table["CustomerID"]
    first = pc.utf8_slice_codeunits(invoice, 0, 1)
    cancel = pc.fill_null(pc.equal(first, "C"), False)

    # One reason per skipped line, the first that applies.
    has_customer = pc.is_valid(customer)
    missing = table.num_rows - (pc.sum(has_customer).as_py() or 0)
    if missing:
        report.skipped["no_customer"] += missing
    remaining = has_customer
    reasons = [
        ("no_invoice", pc.or_kleene(pc.is_null(invoice), pc.equal(invoice, ""))),
        ("adjustment_invoice", pc.equal(first, "A")),
        ("no_stock_code", pc.or_kleene(pc.is_null(stock), pc.equal(stock, ""))),
        ("quantity_not_positive", pc.and_(pc.invert(cancel), pc.less_equal(quantity, 0))),
        ("cancel_quantity_not_negative", pc.and_(cancel, pc.greater_equal(quantity, 0))),
        ("negative_price", pc.less(price, 0)),
    ]
    for reason, mask in reasons:
        hit = pc.and_(remaining, pc.fill_null(mask, True))
        count = pc.sum(hit).as_py() or 0
        if count:
            report.skipped[reason] += count
        remaining = pc.and_(remaining, pc.invert(hit))
    yield from _events(table.filter(remaining), report)


def _events(kept: pa.Table, report: ImportReport) -> Iterator[dict[str, Any]]:
    """Group the kept lines per invoice (sorted by invoice, file order within one)."""
    count = kept.num_rows
    if not count:
        return
    kept = kept.append_column("row", pa.array(np.arange(count)))
    kept = kept.take(pc.sort_indices(kept, [("InvoiceNo", "ascending"), ("row", "ascending")]))
    invoice = kept["InvoiceNo"].combine_chunks()
    change = pc.not_equal(invoice.slice(1), invoice.slice(0, count - 1))
    starts = np.concatenate([[0], np.flatnonzero(change.to_numpy(zero_copy_only=False)) + 1])
    quantity = kept["Quantity"].to_numpy()
    value = quantity * kept["UnitPrice"].to_numpy()
    totals = np.add.reduceat(value, starts).tolist()
    largest = np.maximum.reduceat(quantity, starts).tolist()
    earliest = np.minimum.reduceat(kept["InvoiceDate"].to_numpy(), starts).tolist()
    take = pa.array(starts)
    invoices = invoice.take(take).to_pylist()
    customers = kept["CustomerID"].take(take).to_pylist()
    countries = kept["Country"].take(take).to_pylist()
    offsets = pa.array(np.append(starts, count).astype(np.int32))
    items = pa.StructArray.from_arrays(
        [kept["StockCode"].combine_chunks(), kept["Quantity"].combine_chunks(),
         kept["UnitPrice"].combine_chunks()], names=["product_id", "quantity", "price"])
    lines = pa.ListArray.from_arrays(offsets, items).to_pylist()
    utc_ms: dict[int, int] = {}
    for index, inv in enumerate(invoices):
        micros = earliest[index]
        ms = utc_ms.get(micros)
        if ms is None:
            ms = utc_ms[micros] = london_to_utc_ms(micros)
        event: dict[str, Any] = {"event_id": bounded_id(f"or2-{inv}"),
                                 "customer_id": customers[index], "ts": rfc3339(ms)}
        if inv.startswith("C"):
            event["type"] = "refund"
            event["properties"] = {"order_id": inv, "amount": round(-totals[index], 2) + 0.0}
        else:
            event["type"] = "purchase"
            event["properties"] = {
                "order_id": inv, "revenue": round(totals[index], 2) + 0.0,
                "currency": CURRENCY,
                "items": _items(lines[index], largest[index], report)}
        code = COUNTRIES.get(countries[index])
        if code:
            event["context"] = {"geo": {"country": code}}
        else:
            report.notes["unknown_country"] += 1
        yield event


def _items(items: list[dict[str, Any]], largest: int,
           report: ImportReport) -> list[dict[str, Any]]:
    """At most ``MAX_ITEMS`` lines; a quantity over the contract's cap moves to ``units``."""
    if len(items) > MAX_ITEMS:
        report.notes["items_truncated"] += 1
        items = items[:MAX_ITEMS]
    if largest > MAX_QUANTITY:
        for item in items:
            if item["quantity"] > MAX_QUANTITY:
                report.notes["item_quantity_over_limit"] += 1
                item["units"] = item.pop("quantity")
    return items


def london_to_utc_ms(micros: int) -> int:
    """UK wall-clock time (naive epoch microseconds) as UTC epoch milliseconds.

    >>> london_to_utc_ms(1_262_340_000_000_000)  # 2010-01-01 10:00 GMT
    1262340000000
    >>> london_to_utc_ms(1_277_978_400_000_000)  # 2010-07-01 10:00 BST = 09:00 UTC
    1277974800000
    """
    wall = datetime(1970, 1, 1) + timedelta(microseconds=micros)
    offset = wall.replace(tzinfo=LONDON).utcoffset() or timedelta(0)
    return (micros // 1000) - int(offset.total_seconds()) * 1000


def _read(path: Path) -> pa.Table:
    """The seven columns under their canonical names and types, or a one-line error."""
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise fail(path, f"not a Parquet file ({exc})") from exc
    names = {}
    for canonical, accepted in COLUMNS.items():
        found = next((name for name in accepted if name in schema.names), None)
        if found is None:
            require_columns(path, NAME, schema.names, COLUMNS)
        names[canonical] = found
    try:
        table = pq.read_table(path, columns=list(names.values()))
        return pa.table({
            "InvoiceNo": pc.cast(table[names["InvoiceNo"]], pa.string()),
            "StockCode": pc.cast(table[names["StockCode"]], pa.string()),
            "Quantity": pc.cast(table[names["Quantity"]], pa.int64()),
            "InvoiceDate": _micros(table[names["InvoiceDate"]]),
            "UnitPrice": pc.cast(table[names["UnitPrice"]], pa.float64()),
            "CustomerID": _customer(table[names["CustomerID"]]),
            "Country": pc.cast(table[names["Country"]], pa.string()),
        })
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise fail(path, f"unreadable {NAME} data ({exc})") from exc


def _micros(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Naive wall-clock timestamps (or their text) as int64 microseconds."""
    if pa.types.is_timestamp(column.type):
        if column.type.tz is not None:
            raise ValueError(f"InvoiceDate has a time zone ({column.type.tz}), expected "
                             "naive UK wall-clock time")
        column = pc.cast(column, pa.timestamp("us"))
    else:
        column = pc.cast(pc.cast(column, pa.string()), pa.timestamp("us"))
    if column.null_count:
        raise ValueError(f"{column.null_count} lines have no InvoiceDate")
    return pc.cast(column, pa.int64())


def _customer(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Customer ids as text without a trailing ``.0`` (the file stores them as floats)."""
    if pa.types.is_floating(column.type):
        column = pc.cast(column, pa.int64())  # raises on a fractional id
    text = pc.utf8_trim_whitespace(pc.cast(column, pa.string()))
    text = pc.replace_substring_regex(text, r"\.0+$", "")
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
