"""Importers of real logs: tiny synthetic files with hand-checked events, the user
errors, and one pass over each real file (skipped when ../shared/data is absent; a
failure under CI=true)."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import schemas
from segments.gate import Gate, Interaction
from streams.errors import UserError
from streams.tools.importers import FORMATS, ImportReport, online_retail, rfc3339, run_import

DataFile = Callable[[str], Path]  # the data_file fixture

GATE = Gate()


def _import(fmt: str, path: Path) -> tuple[list[dict[str, Any]], ImportReport]:
    """Run the import twice: the output must be byte-identical and every event valid."""
    first, second = io.BytesIO(), io.BytesIO()
    report = run_import(fmt, path, first)
    run_import(fmt, path, second)
    assert first.getvalue() == second.getvalue()
    events = [orjson.loads(line) for line in first.getvalue().splitlines()]
    _assert_valid(events)
    assert report.written == len(events)
    assert report.by_type == Counter(event["type"] for event in events)
    return events, report


def _assert_valid(events: list[dict[str, Any]]) -> None:
    now = int(time.time() * 1000)
    rejected = []
    order = []
    for event in events:
        result = GATE.check(orjson.dumps(event), now)
        if isinstance(result, Interaction):
            order.append((result.ts, event["event_id"]))
        else:
            rejected.append((event["event_id"], result.reason, result.detail))
    assert rejected[:5] == []
    assert order == sorted(order)  # time order, ties by event_id
    assert len({event["event_id"] for event in events}) == len(events)


def _user_error(fmt: str, path: Path) -> str:
    with pytest.raises(UserError) as caught:
        run_import(fmt, path, io.BytesIO())
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


# Online Retail II

def _retail_rows() -> list[tuple[Any, ...]]:
    winter, summer = datetime(2010, 1, 15, 10, 0), datetime(2010, 7, 1, 9, 30)
    return [  # invoice, stock code, quantity, date, unit price, customer, country
        ("500001", "A1", 2, winter, 1.25, 12345.0, "United Kingdom"),
        ("500001", "B2", 3, winter, 0.85, 12345.0, "United Kingdom"),
        ("500002", "C3", 1, datetime(2010, 7, 1, 9, 31), 10.0, 12346.0, "EIRE"),
        ("500002", "D4", 4, summer, 0.5, 12346.0, "EIRE"),
        ("C500003", "A1", -1, datetime(2010, 7, 2, 12, 0), 1.25, 12345.0, "United Kingdom"),
        ("C500003", "B2", -2, datetime(2010, 7, 2, 12, 0), 0.85, 12345.0, "United Kingdom"),
        ("500004", "D4", 5, winter, 2.0, None, "United Kingdom"),
        ("500004", "E5", 1, winter, 2.0, None, "United Kingdom"),
        ("500005", "E5", -3, winter, 1.0, 12347.0, "France"),
        ("A500006", "B", 1, winter, -11062.06, 12347.0, "United Kingdom"),
        ("500007", "F6", 2, winter, -1.0, 12347.0, "France"),
        ("500008", "G7", 1, datetime(2011, 3, 27, 0, 59), 3.0, 12348.0, "Unspecified"),
        ("500008", "H8", 12000, datetime(2011, 3, 27, 0, 59), 0.01, 12348.0, "Unspecified"),
    ]


def _write_retail(path: Path, rows: list[tuple[Any, ...]], drop: str | None = None) -> Path:
    names = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID",
             "Country"]
    types = [pa.string(), pa.string(), pa.int64(), pa.timestamp("us"), pa.float64(),
             pa.float64(), pa.string()]
    columns = {name: pa.array([row[i] for row in rows], kind)
               for i, (name, kind) in enumerate(zip(names, types, strict=True))}
    columns["Description"] = pa.array(["THING"] * len(rows))
    if drop:
        del columns[drop]
    pq.write_table(pa.table(columns), path)
    return path


def test_online_retail_maps_invoices_to_purchases_and_refunds(tmp_path: Path) -> None:
    events, report = _import("online-retail", _write_retail(tmp_path / "r.parquet",
                                                            _retail_rows()))
    by_id = {event["event_id"]: event for event in events}
    assert [event["event_id"] for event in events] == [
        "or2-500001", "or2-500002", "or2-C500003", "or2-500008"]
    assert by_id["or2-500001"] == {
        "event_id": "or2-500001", "customer_id": "12345", "ts": "2010-01-15T10:00:00Z",
        "type": "purchase", "properties": {
            "order_id": "500001", "revenue": 5.05, "currency": "GBP",
            "items": [{"product_id": "A1", "quantity": 2, "price": 1.25},
                      {"product_id": "B2", "quantity": 3, "price": 0.85}]},
        "context": {"geo": {"country": "GB"}}}
    # BST: 09:30 in London is 08:30 UTC; the invoice takes its earliest minute
    assert by_id["or2-500002"]["ts"] == "2010-07-01T08:30:00Z"
    assert by_id["or2-500002"]["properties"]["revenue"] == 12.0
    assert by_id["or2-500002"]["context"] == {"geo": {"country": "IE"}}
    assert by_id["or2-C500003"] == {
        "event_id": "or2-C500003", "customer_id": "12345", "ts": "2010-07-02T11:00:00Z",
        "type": "refund", "properties": {"order_id": "C500003", "amount": 2.95},
        "context": {"geo": {"country": "GB"}}}
    # 00:59 on the morning the clocks go forward is still GMT; no ISO code: no context
    assert by_id["or2-500008"] == {
        "event_id": "or2-500008", "customer_id": "12348", "ts": "2011-03-27T00:59:00Z",
        "type": "purchase", "properties": {
            "order_id": "500008", "revenue": 123.0, "currency": "GBP",
            "items": [{"product_id": "G7", "quantity": 1, "price": 3.0},
                      {"product_id": "H8", "price": 0.01, "units": 12000}]}}
    assert report.read == 13
    assert report.skipped == {"no_customer": 2, "quantity_not_positive": 1,
                              "adjustment_invoice": 1, "negative_price": 1}
    assert report.notes == {"unknown_country": 1, "item_quantity_over_limit": 1}
    assert report.summary() == (
        "online-retail: 13 lines read, 4 events written (purchase 3, refund 1); skipped: "
        "2 no_customer, 1 adjustment_invoice, 1 negative_price, 1 quantity_not_positive; "
        "notes: 1 item_quantity_over_limit, 1 unknown_country")


def test_online_retail_keeps_the_first_items_and_the_full_revenue(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    maximum = schemas.load("interaction", "1-0-0")["$defs"]["purchase"]["properties"][
        "items"]["maxItems"]
    assert maximum == online_retail.MAX_ITEMS
    monkeypatch.setattr(online_retail, "MAX_ITEMS", 2)
    day = datetime(2010, 12, 1, 8, 0)
    rows = [("536365", code, 1, day, 1.5, 17850.0, "United Kingdom") for code in "XYZ"]
    events, report = _import("online-retail", _write_retail(tmp_path / "r.parquet", rows))
    (event,) = events
    assert [item["product_id"] for item in event["properties"]["items"]] == ["X", "Y"]
    assert event["properties"]["revenue"] == 4.5
    assert report.notes == {"items_truncated": 1}


def test_online_retail_user_errors(tmp_path: Path) -> None:
    assert _user_error("online-retail", tmp_path / "absent.parquet").endswith("no such file")
    text = tmp_path / "retail.csv"
    text.write_text("InvoiceNo,StockCode\n1,2\n")
    assert "not a Parquet file" in _user_error("online-retail", text)
    short = _write_retail(tmp_path / "short.parquet", _retail_rows(), drop="CustomerID")
    assert "missing column 'CustomerID'" in _user_error("online-retail", short)
    message = _user_error("tsv", short)
    assert "unknown import format 'tsv'" in message
    assert sorted(FORMATS) == ["cdnow", "online-retail", "rees46", "taobao", "trivago"]


def test_online_retail_converts_london_time() -> None:
    def utc(*wall: int) -> str:
        micros = (datetime(*wall) - datetime(1970, 1, 1)) // timedelta(microseconds=1)
        return rfc3339(online_retail.london_to_utc_ms(micros))

    assert utc(2010, 12, 1, 8, 26) == "2010-12-01T08:26:00Z"  # GMT
    assert utc(2011, 6, 1, 8, 26) == "2011-06-01T07:26:00Z"  # BST
    assert utc(2011, 3, 27, 2, 30) == "2011-03-27T01:30:00Z"  # no such minute: read as BST
    assert utc(2011, 10, 30, 1, 30) == "2011-10-30T00:30:00Z"  # twice: the first (BST)


# CDNOW

def test_cdnow_master_and_sample(tmp_path: Path) -> None:
    master = tmp_path / "CDNOW_master.txt"
    master.write_bytes(b" customer_id  date number_of_cds  dollar_value\r\n"
                       b" 00001 19970101  1   11.77\r\n"
                       b" 00002 19970112  1   12.00\r\n"
                       b" 00002 19970112  5   77.00\r\n"
                       b" 00003 19980630  2   20.76\r\n"
                       b" 00003 1998063x  2   20.76\r\n")
    events, report = _import("cdnow", master)
    assert events[0] == {
        "event_id": "cdnow-00001-19970101-1", "customer_id": "00001", "type": "purchase",
        "ts": "2025-01-01T12:00:00Z", "properties": {
            "order_id": "00001-19970101-1", "revenue": 11.77, "currency": "USD",
            "source_date": "1997-01-01", "items": [{"product_id": "cd", "quantity": 1}]}}
    assert [(e["event_id"], e["ts"], e["properties"]["revenue"]) for e in events[1:]] == [
        ("cdnow-00002-19970112-1", "2025-01-12T12:00:00Z", 12.0),
        ("cdnow-00002-19970112-2", "2025-01-12T12:00:00Z", 77.0),
        ("cdnow-00003-19980630-1", "2026-06-30T12:00:00Z", 20.76)]
    assert (report.read, report.written, report.skipped) == (5, 4, {"malformed_line": 1})

    sample = tmp_path / "CDNOW_sample.txt"
    sample.write_text(" 00002 0001 19970112  1   12.00\n 00002 0001 19970112  5   77.00\n")
    sampled, report = _import("cdnow", sample)
    assert sampled == events[1:3]  # the same purchase gets the same event in both layouts
    assert report.summary() == "cdnow: 2 lines read, 2 events written (purchase 2)"


def test_cdnow_user_errors(tmp_path: Path) -> None:
    assert _user_error("cdnow", tmp_path / "CDNOW.txt").endswith("no such file")
    csv = tmp_path / "cdnow.csv"
    csv.write_text("customer_id,date,cds,dollars\n1,19970101,1,11.77\n")
    assert "not a CDNOW file: line 2 has 1 column(s)" in _user_error("cdnow", csv)
    assert "not a CDNOW text file" in _user_error("cdnow", _write_retail(
        tmp_path / "r.parquet", _retail_rows()))


# REES46

REES46_HEADER = ("event_time,event_type,product_id,category_id,category_code,brand,price,"
                 "user_id,user_session\n")


def test_rees46_maps_each_event_type(tmp_path: Path) -> None:
    path = tmp_path / "2019-Oct.csv"
    path.write_text(REES46_HEADER + (
        "2019-10-01 00:00:05 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s1\n"
        "2019-10-01 00:00:01 UTC,view,3900821,2053013552326770905,appliances.water_heater,,"
        "33.20,554748717,s2\n"
        "2019-10-01 00:00:05 UTC,view,44600062,2103807459595387724,,shiseido,35.79,541312140,s1\n"
        "2019-10-01 00:01:00 UTC,cart,3900821,2053013552326770905,appliances.water_heater,aqua,"
        "33.20,554748717,s2\n"
        "2019-10-01 00:01:30 UTC,remove_from_cart,3900821,205,,aqua,33.20,554748717,s2\n"
        "2019-10-01 00:02:00 UTC,purchase,3900821,205,appliances.water_heater,aqua,33.20,"
        "554748717,s2\n"
        "2019-10-01 00:03:00 UTC,wishlist,1,2,,,1.00,554748717,s2\n"
        "2019-10-01 02:50:00 UTC,view,10900305,2053013555069845885,appliances.kitchen.mixer,"
        "elenberg,25.71,520403305\n"))
    events, report = _import("rees46", path)
    assert events == [
        {"event_id": "r46-view-s2-3900821-1569888001", "customer_id": "554748717",
         "type": "product_view", "ts": "2019-10-01T00:00:01Z",
         "properties": {"product_id": "3900821", "category": "appliances.water_heater",
                        "price": 33.2},
         "context": {"session_id": "s2"}},
        {"event_id": "r46-view-s1-44600062-1569888005", "customer_id": "541312140",
         "type": "product_view", "ts": "2019-10-01T00:00:05Z",
         "properties": {"product_id": "44600062", "category": "2103807459595387724",
                        "brand": "shiseido", "price": 35.79},
         "context": {"session_id": "s1"}},
        {"event_id": "r46-cart-s2-3900821-1569888060", "customer_id": "554748717",
         "type": "add_to_cart", "ts": "2019-10-01T00:01:00Z",
         "properties": {"product_id": "3900821", "category": "appliances.water_heater",
                        "brand": "aqua", "price": 33.2},
         "context": {"session_id": "s2"}},
        {"event_id": "r46-remove_from_cart-s2-3900821-1569888090", "customer_id": "554748717",
         "type": "remove_from_cart", "ts": "2019-10-01T00:01:30Z",
         "properties": {"product_id": "3900821", "category": "205", "brand": "aqua",
                        "price": 33.2},
         "context": {"session_id": "s2"}},
        {"event_id": "r46-purchase-s2-3900821-1569888120", "customer_id": "554748717",
         "type": "purchase", "ts": "2019-10-01T00:02:00Z",
         "properties": {"order_id": "s2-3900821-1569888120", "revenue": 33.2, "items": [
             {"product_id": "3900821", "category": "appliances.water_heater",
              "brand": "aqua", "quantity": 1, "price": 33.2}]},
         "context": {"session_id": "s2"}},
    ]
    assert report.read == 8
    assert report.skipped == {"duplicate_row": 1, "unknown_event_type": 1, "malformed_row": 1}


def test_rees46_user_errors(tmp_path: Path) -> None:
    assert _user_error("rees46", tmp_path / "absent.csv").endswith("no such file")
    path = tmp_path / "no-session.csv"
    path.write_text(REES46_HEADER.replace(",user_session", "") +
                    "2019-10-01 00:00:00 UTC,view,1,2,,,1.0,3\n")
    assert "missing column 'user_session'" in _user_error("rees46", path)
    retail = _write_retail(tmp_path / "r.parquet", _retail_rows())
    assert "not a UTF-8 CSV file" in _user_error("rees46", retail)


# Taobao

def test_taobao_maps_each_behavior(tmp_path: Path) -> None:
    path = tmp_path / "UserBehavior.csv"
    path.write_text("1,2268318,2520377,pv,1511544070\n"  # 2017-11-24 17:21:10Z: in
                    "1,2333346,2520771,buy,1511561733\n"
                    "1,2576651,149192,fav,1511572885\n"
                    "2,3830808,4181361,cart,1511593493\n"
                    "1,2576651,149192,pv,1511500000\n"  # before the window
                    "1,2576651,149192,clk,1511572885\n"
                    "1,2576651,pv,1511572885\n")
    events, report = _import("taobao", path)
    assert events == [
        {"event_id": "tb-1-2268318-pv-1511544070", "customer_id": "1", "type": "product_view",
         "ts": "2017-11-24T17:21:10Z",
         "properties": {"product_id": "2268318", "category": "2520377"},
         "context": {"tz": "Asia/Shanghai"}},
        {"event_id": "tb-1-2333346-buy-1511561733", "customer_id": "1", "type": "purchase",
         "ts": "2017-11-24T22:15:33Z",
         "properties": {"order_id": "1-2333346-1511561733", "revenue": 0,
                        "items": [{"product_id": "2333346", "category": "2520771"}]},
         "context": {"tz": "Asia/Shanghai"}},
        {"event_id": "tb-1-2576651-fav-1511572885", "customer_id": "1", "type": "product_view",
         "ts": "2017-11-25T01:21:25Z",
         "properties": {"product_id": "2576651", "category": "149192", "favorite": True},
         "context": {"tz": "Asia/Shanghai"}},
        {"event_id": "tb-2-3830808-cart-1511593493", "customer_id": "2", "type": "add_to_cart",
         "ts": "2017-11-25T07:04:53Z",
         "properties": {"product_id": "3830808", "category": "4181361"},
         "context": {"tz": "Asia/Shanghai"}},
    ]
    assert report.read == 7
    assert report.skipped == {"outside_window": 1, "unknown_behavior": 1, "malformed_row": 1}


def test_taobao_user_errors(tmp_path: Path) -> None:
    assert _user_error("taobao", tmp_path / "absent.csv").endswith("no such file")
    path = tmp_path / "header.csv"
    path.write_text("user_id,item_id,category_id,behavior,timestamp\n1,2,3,pv,1511544070\n")
    assert "not a Taobao UserBehavior CSV: the first row" in _user_error("taobao", path)


# trivago

def _write_trivago(path: Path, rows: list[tuple[Any, ...]], drop: str | None = None) -> Path:
    names = ["user_id", "session_id", "timestamp", "step", "action_type", "reference",
             "platform", "city", "device", "current_filters", "impressions", "prices"]
    columns = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    if drop:
        del columns[drop]
    pq.write_table(pa.table(columns), path)
    return path


TRIVAGO_ROWS = [
    ("U1", "s1", 1541599523, 1, "search for destination", "Marseille, France", "FR",
     "Marseille, France", "tablet", None, None, None),
    ("U1", "s1", 1541599538, 2, "interaction item image", "5967314", "FR",
     "Marseille, France", "tablet", None, None, None),
    ("U1", "s1", 1541599540, 3, "filter selection", "Sort by Price", "FR",
     "Marseille, France", "tablet", "Sort by Price", None, None),
    ("U1", "s1", 1541599553, 4, "clickout item", "5967314", "FR", "Marseille, France",
     "tablet", None, "100131|5967314", "71|119"),
    ("U2", "s2", 1541599600, 1, "search for poi", "Big Ben", "UK", "London, United Kingdom",
     "desktop", None, None, None),
    ("U2", "s2", 1541599610, 2, "interaction item info", "unknown", "UK",
     "London, United Kingdom", "desktop", None, None, None),
    ("U3", "s3", 1541599620, 1, "search for item", "103656", "AA", "Dubai, UAE",
     "smart fridge", None, None, None),
    ("U3", "s3", 1541599630, 2, "teleport", "103656", "AA", "Dubai, UAE", "mobile",
     None, None, None),
]


def test_trivago_maps_each_action(tmp_path: Path) -> None:
    events, report = _import("trivago", _write_trivago(tmp_path / "t.parquet", TRIVAGO_ROWS))
    marseille = {"session_id": "s1", "device": "tablet", "geo": {"country": "FR"}}
    assert events == [
        {"event_id": "trv-s1-1-1541599523", "customer_id": "U1", "type": "search",
         "ts": "2018-11-07T14:05:23Z",
         "properties": {"query": "Marseille, France", "action": "search for destination",
                        "destination": "Marseille, France"}, "context": marseille},
        {"event_id": "trv-s1-2-1541599538", "customer_id": "U1", "type": "product_view",
         "ts": "2018-11-07T14:05:38Z",
         "properties": {"product_id": "5967314", "action": "interaction item image",
                        "destination": "Marseille, France"}, "context": marseille},
        {"event_id": "trv-s1-3-1541599540", "customer_id": "U1", "type": "search",
         "ts": "2018-11-07T14:05:40Z",
         "properties": {"query": "Sort by Price", "action": "filter selection",
                        "destination": "Marseille, France"}, "context": marseille},
        {"event_id": "trv-s1-4-1541599553", "customer_id": "U1", "type": "product_view",
         "ts": "2018-11-07T14:05:53Z",
         "properties": {"product_id": "5967314", "action": "clickout item", "price": 119.0,
                        "destination": "Marseille, France"}, "context": marseille},
        {"event_id": "trv-s2-1-1541599600", "customer_id": "U2", "type": "search",
         "ts": "2018-11-07T14:06:40Z",
         "properties": {"query": "Big Ben", "action": "search for poi",
                        "destination": "London, United Kingdom"},
         "context": {"session_id": "s2", "device": "desktop", "geo": {"country": "GB"}}},
        {"event_id": "trv-s3-1-1541599620", "customer_id": "U3", "type": "product_view",
         "ts": "2018-11-07T14:07:00Z",
         "properties": {"product_id": "103656", "action": "search for item",
                        "destination": "Dubai, UAE"},
         "context": {"session_id": "s3", "device": "other"}},
    ]
    assert report.read == 8
    assert report.skipped == {"unknown_reference": 1, "unknown_action": 1}
    assert report.notes == {"unknown_country": 1}


def test_trivago_user_errors(tmp_path: Path) -> None:
    assert _user_error("trivago", tmp_path / "absent.parquet").endswith("no such file")
    short = _write_trivago(tmp_path / "t.parquet", TRIVAGO_ROWS, drop="action_type")
    assert "missing column 'action_type'" in _user_error("trivago", short)
    csv = tmp_path / "t.csv"
    csv.write_text("user_id,session_id\n")
    assert "not a Parquet file" in _user_error("trivago", csv)


# The real files (../shared/data, read-only)

def _real(data_file: DataFile, fmt: str, relative: str) -> tuple[list[dict[str, Any]],
                                                                  ImportReport]:
    out = io.BytesIO()
    report = run_import(fmt, data_file(relative), out)
    events = [orjson.loads(line) for line in out.getvalue().splitlines()]
    _assert_valid(events)
    return events, report


def _customers(events: list[dict[str, Any]]) -> int:
    return len({event["customer_id"] for event in events})


def test_real_online_retail(data_file: DataFile) -> None:
    events, report = _real(data_file, "online-retail", "online-retail-ii/online_retail_ii.parquet")
    assert report.read == 1_044_847
    assert report.skipped == {"no_customer": 235_287}
    assert report.by_type == {"purchase": 36_975, "refund": 7_901}
    assert report.notes == {"unknown_country": 104, "item_quantity_over_limit": 8}
    assert _customers(events) == 5_942
    assert (events[0]["ts"], events[-1]["ts"]) == ("2009-12-01T07:45:00Z",
                                                   "2011-12-09T12:50:00Z")


def test_real_cdnow(data_file: DataFile) -> None:
    events, report = _real(data_file, "cdnow", "cdnow/CDNOW_master.txt")
    assert (report.read, report.written, report.skipped) == (69_659, 69_659, {})
    assert _customers(events) == 23_570
    assert (events[0]["properties"]["source_date"], events[-1]["properties"]["source_date"]
            ) == ("1997-01-01", "1998-06-30")
    sample, report = _real(data_file, "cdnow", "cdnow/CDNOW_sample.txt")
    assert (report.read, report.written, _customers(sample)) == (6_919, 6_919, 2_357)
    by_id = {event["event_id"]: event for event in events}
    assert all(by_id[event["event_id"]] == event for event in sample)


def test_real_rees46(data_file: DataFile) -> None:
    events, report = _real(data_file, "rees46", "rees46-sample/2019-Oct-sample.csv")
    assert report.read == 17_435
    # the file's last line is cut short; 5 rows repeat an earlier one exactly
    assert report.skipped == {"duplicate_row": 5, "malformed_row": 1}
    assert report.by_type == {"product_view": 17_051, "add_to_cart": 164, "purchase": 214}
    assert _customers(events) == 4_504


def test_real_taobao(data_file: DataFile) -> None:
    events, report = _real(data_file, "taobao", "taobao-userbehavior/UserBehavior.csv")
    assert (report.read, report.skipped) == (110_300, {})
    assert report.by_type == {"product_view": 98_361 + 3_383, "add_to_cart": 6_063,
                              "purchase": 2_493}
    assert sum(1 for event in events if event["properties"].get("favorite")) == 3_383
    assert _customers(events) == 66_454


def test_real_trivago(data_file: DataFile) -> None:
    events, report = _real(data_file, "trivago", "trivago-sample/trivago_100k.parquet")
    assert report.read == 100_003
    assert report.skipped == {"unknown_reference": 37}
    assert report.by_type == {"product_view": 87_608, "search": 12_358}
    assert report.notes == {"unknown_country": 262}
    assert _customers(events) == 6_593
