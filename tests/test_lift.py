"""``streams.tools.lift``: the trigger lift report, with no broker.

The small case below is computed by hand; the interval formula is cross-checked
against Newcombe (1998), "Interval estimation for the difference between independent
proportions: comparison of eleven methods", Statistics in Medicine 17:873-890,
Table II, method 10.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from segments.timefmt import format_ts, parse_ts
from streams.cli.common import Parser
from streams.cli.lift import add_lift_arguments, run_lift
from streams.errors import UserError
from streams.tools.eventlog import read_jsonl
from streams.tools.lift import (
    GroupStats,
    MomentLift,
    format_table,
    lift_report,
    newcombe_diff_ci,
    to_json,
    wilson_interval,
)

H = 3_600_000
T0 = parse_ts("2026-11-22T10:00:00.000Z")
BUY, CART = "i_want_to_buy", "cart_abandoned"


def trigger(n: int, moment: str, customer: str, hours: float, **extra: Any) -> dict[str, Any]:
    at = T0 + round(hours * H)
    return {"schema": "micro-moment/1-0-0", "trigger_id": f"{n:032x}",
            "customer_id": customer, "moment": moment, "score": 0.9, "at": format_ts(at),
            "expires_at": format_ts(at + 15 * 60_000), "cause": {"kind": "event",
            "event_id": f"src-{n}"}, "context": {}, "items": [], "segments": [],
            "definitions_version": "e73b71dab183285e", **extra}


def purchase(event_id: str, customer: str, ts: str | int, revenue: float) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer, "type": "purchase", "ts": ts,
            "properties": {"order_id": f"o-{event_id}", "revenue": revenue}}


def at(hours: float) -> int:
    return T0 + round(hours * H)


# Window 24 h (the default). T = treated, C = control (holdout), X = neither.
OUTPUTS = [
    trigger(1, BUY, "c1", 0),                                    # T, buys at +2h: 30
    trigger(2, BUY, "c2", 1),                                    # T, buys at exactly +1h
    trigger(3, BUY, "c3", 0),                                    # T, buys at +24h: 50 (+25h)
    trigger(4, BUY, "c4", 0, suppressed="holdout"),              # C, buys at +3h: 20
    trigger(5, BUY, "c5", 2, suppressed="holdout"),              # C, no purchase of c5
    trigger(6, BUY, "c6", 0, suppressed="frequency_cap"),        # X
    trigger(7, BUY, "c7", 0, suppressed="quiet_hours",           # X (delayed)
            held_until=format_ts(at(8))),
    trigger(8, CART, "c1", 1),                                   # T, c1's +2h purchase: 30
    trigger(9, CART, "c8", 5, suppressed="holdout"),             # C, +6h 12.5 and +7h 7.5
    trigger(10, CART, "c9", 30),                                 # T, censored: 54h > 48h
    trigger(11, CART, "c10", 26, suppressed="holdout"),          # C, censored: 50h > 48h
    trigger(1, BUY, "c1", 0),                                    # a repeat of 1: ignored
    {"schema": "segment-change/1-0-0", "customer_id": "c1"},     # not a trigger: ignored
]
EVENTS = [
    purchase("e1", "c1", format_ts(at(2)), 30.0),
    purchase("e2", "c2", at(1), 15.0),                           # integer epoch ms
    purchase("e3", "c3", format_ts(at(24)), 50.0),
    purchase("e4", "c3", format_ts(at(25)), 99.0),
    purchase("e5", "c4", "2026-11-22T14:00:00.000+01:00", 20.0),  # = T0 + 3h
    purchase("e6", "c6", at(1), 40.0),
    purchase("e7", "c8", at(6), 12.5),
    purchase("e8", "c8", at(7), 7.5),
    purchase("e8", "c8", at(7), 7.5),                            # a repeated event: once
    {"event_id": "e9", "customer_id": "c5", "type": "page_view", "ts": format_ts(at(48)),
     "properties": {"url": "/"}},                                # the log's last event
]


# --------------------------------------------------------------------------- statistics

def test_newcombe_published_examples() -> None:
    # Newcombe 1998, Table II, method 10 ("hybrid score, no continuity correction").
    # (a) 56/70 - 48/80 = 0.8 - 0.6 = 0.2 (not 0.1), interval 0.0524 to 0.3339. The
    # other rows are the table's cases (b)-(h), transcribed from memory of the paper:
    # they agree to 4 decimals, but only (a) was checked against a given reference.
    published = [
        ((56, 70, 48, 80), (0.0524, 0.3339)),
        ((9, 10, 3, 10), (0.1705, 0.8090)),
        ((6, 7, 2, 7), (0.0582, 0.8062)),
        ((5, 56, 0, 29), (-0.0381, 0.1926)),
        ((0, 10, 0, 20), (-0.1611, 0.2775)),
        ((0, 10, 0, 10), (-0.2775, 0.2775)),
        ((10, 10, 0, 20), (0.6791, 1.0000)),
        ((10, 10, 0, 10), (0.6075, 1.0000)),
    ]
    for counts, (low, high) in published:
        got = newcombe_diff_ci(*counts)
        assert (round(got[0], 4), round(got[1], 4)) == (low, high), counts
    assert pytest.approx(0.2) == 56 / 70 - 48 / 80


def test_wilson_and_newcombe_by_hand() -> None:
    # z = 1.959964, z^2 = 3.8414589. Wilson: (2np + z^2 +- z sqrt(z^2 + 4np(1-p))) / 2(n+z^2)
    # 3/4: (9.8414589 -+ 1.959964 * sqrt(6.8414589) = 5.1265461) / 15.6829178
    #      = 0.300642, 0.954413
    # 2/3: (7.8414589 -+ 1.959964 * sqrt(6.5081256) = 5.0000722) / 13.6829178
    #      = 0.207660, 0.938508
    assert wilson_interval(3, 4) == pytest.approx((0.300642, 0.954413), abs=2e-6)
    assert wilson_interval(2, 3) == pytest.approx((0.207660, 0.938508), abs=2e-6)
    # d = 3/4 - 2/3 = 0.083333
    # low  = d - sqrt((0.75 - 0.300642)^2 + (0.938508 - 0.666667)^2)
    #      = 0.083333 - sqrt(0.201923 + 0.073898) = 0.083333 - 0.525187 = -0.441854
    # high = d + sqrt((0.954413 - 0.75)^2 + (0.666667 - 0.207660)^2)
    #      = 0.083333 + sqrt(0.041785 + 0.210687) = 0.083333 + 0.502466 = 0.585799
    low, high = newcombe_diff_ci(3, 4, 2, 3)
    assert (round(low, 4), round(high, 4)) == (-0.4419, 0.5858)
    # 1/2: (5.8414589 -+ 1.959964 * sqrt(5.8414589) = 4.7370691) / 11.6829178
    #      = 0.094531, 0.905469
    # 2/3 - 1/2: low  = 0.166667 - sqrt(0.459007^2 + 0.405469^2) = -0.445781
    #            high = 0.166667 + sqrt(0.271841^2 + 0.405469^2) = 0.654829
    low, high = newcombe_diff_ci(2, 3, 1, 2)
    assert (round(low, 4), round(high, 4)) == (-0.4458, 0.6548)
    # 1/1: lower = 2 / 2(1 + z^2) = 0.206549, upper = 1, so 1/1 - 1/1: +-0.793451
    low, high = newcombe_diff_ci(1, 1, 1, 1)
    assert (round(low, 4), round(high, 4)) == (-0.7935, 0.7935)


def test_interval_needs_exposures() -> None:
    with pytest.raises(ValueError):
        newcombe_diff_ci(0, 0, 1, 2)


# --------------------------------------------------------------------------- the report

def test_hand_computed_report() -> None:
    rows = lift_report(OUTPUTS, EVENTS)
    assert [row.moment for row in rows] == [CART, BUY, "all"]
    cart, buy, overall = rows

    # i_want_to_buy: T = 1 (30), 2 (no: purchase at exactly `at`), 3 (50 at at+24h; the
    # 99 at +25h is outside) -> n 3, conv 2, revenue 80. C = 4 (20), 5 (c1's purchase
    # is not c5's) -> n 2, conv 1, revenue 20. 6 and 7 are in neither group.
    assert buy.treated == GroupStats(3, 2, 80.0)
    assert buy.control == GroupStats(2, 1, 20.0)
    assert buy.treated.rate == 2 / 3 and buy.control.rate == 0.5
    assert buy.treated.revenue_per_exposure == pytest.approx(26.666667)
    assert buy.control.revenue_per_exposure == 10.0
    assert buy.diff == pytest.approx(1 / 6)                    # 0.666667 - 0.5
    assert buy.relative == pytest.approx(1 / 3)                # 0.166667 / 0.5
    assert (round(buy.ci_low, 4), round(buy.ci_high, 4)) == (-0.4458, 0.6548)
    assert buy.censored == 0

    # cart_abandoned: T = 8 (c1's purchase at +2h again: 30); 10 censored.
    # C = 9 (12.5 + 7.5 = 20, one conversion; the repeated e8 counts once); 11 censored.
    assert cart.treated == GroupStats(1, 1, 30.0)
    assert cart.control == GroupStats(1, 1, 20.0)
    assert cart.diff == 0.0 and cart.relative == 0.0
    assert (round(cart.ci_low, 4), round(cart.ci_high, 4)) == (-0.7935, 0.7935)
    assert cart.censored == 2

    # all: T = 3 + 1 exposures, 2 + 1 conversions, 80 + 30 revenue;
    #      C = 2 + 1, 1 + 1, 20 + 20. diff 3/4 - 2/3 = 1/12, relative (1/12)/(2/3) = 1/8.
    assert overall.treated == GroupStats(4, 3, 110.0)
    assert overall.control == GroupStats(3, 2, 40.0)
    assert overall.treated.rate == 0.75 and overall.control.rate == 2 / 3
    assert overall.treated.revenue_per_exposure == 27.5
    assert overall.control.revenue_per_exposure == pytest.approx(13.333333)
    assert overall.diff == pytest.approx(1 / 12)
    assert overall.relative == pytest.approx(0.125)
    assert (round(overall.ci_low, 4), round(overall.ci_high, 4)) == (-0.4419, 0.5858)
    assert overall.censored == 2


def test_include_censored() -> None:
    rows = lift_report(OUTPUTS, EVENTS, include_censored=True)
    cart = rows[0]
    # 10 (c9) and 11 (c10) join their groups without a purchase; still counted censored.
    assert cart.treated == GroupStats(2, 1, 30.0)
    assert cart.control == GroupStats(2, 1, 20.0)
    assert cart.censored == 2
    assert rows[-1].treated.exposures == 5 and rows[-1].control.exposures == 4


def test_window_changes_attribution() -> None:
    # A 2 h window: 1 (purchase at +2h) and 8 (+1h after its at) still convert, 9 too
    # (+1h and +2h: 20); 3 (+24h) and 4 (+3h) no longer do. 10 and 11 end at +32h
    # and +28h, before the last event at +48h: no longer censored, no purchase.
    rows = lift_report(OUTPUTS, EVENTS, window_ms=2 * H)
    cart, buy = rows[0], rows[1]
    assert buy.treated == GroupStats(3, 1, 30.0)
    assert buy.control == GroupStats(2, 0, 0.0)
    assert buy.relative is None                                # control rate 0
    assert buy.diff == pytest.approx(1 / 3)
    assert cart.censored == 0
    assert cart.treated == GroupStats(2, 1, 30.0)
    assert cart.control == GroupStats(2, 1, 20.0)


# --------------------------------------------------------------------------- edge cases

def test_zero_exposures() -> None:
    rows = lift_report([], [])
    assert rows == [MomentLift("all", GroupStats(0, 0, 0.0), GroupStats(0, 0, 0.0),
                               None, None, None, None, 0)]
    assert rows[0].treated.rate is None
    assert rows[0].treated.revenue_per_exposure is None
    # Only suppressed-for-other-reasons records: no group, no row but "all".
    assert [r.moment for r in lift_report(OUTPUTS[5:7], EVENTS)] == ["all"]


def test_zero_control() -> None:
    rows = lift_report([trigger(1, BUY, "c1", 0)], EVENTS)
    buy = rows[0]
    assert buy.treated == GroupStats(1, 1, 30.0)
    assert buy.control == GroupStats(0, 0, 0.0)
    assert buy.control.rate is None
    assert (buy.diff, buy.ci_low, buy.ci_high, buy.relative) == (None, None, None, None)


def test_purchase_boundaries_and_other_customers() -> None:
    last = {"event_id": "end", "customer_id": "z", "type": "login", "ts": at(100)}
    events = [purchase("p0", "a", at(0), 1.0),       # exactly at `at`: not counted
              purchase("p1", "b", at(1), 2.0),       # another customer: not counted
              purchase("p2", "a", at(24), 4.0),      # exactly at + window: counted
              purchase("p3", "a", at(24) + 1, 8.0),  # 1 ms later: not counted
              last]
    rows = lift_report([trigger(1, BUY, "a", 0)], events)
    assert rows[0].treated == GroupStats(1, 1, 4.0)
    rows = lift_report([trigger(1, BUY, "a", 0)], [*events[:2], last])
    assert rows[0].treated == GroupStats(1, 0, 0.0)


def test_censoring_boundary() -> None:
    # The window ends exactly at the last event: observed. 1 ms later: censored.
    events = [{"event_id": "x", "customer_id": "z", "type": "login", "ts": at(24)}]
    assert lift_report([trigger(1, BUY, "a", 0)], events)[0].censored == 0
    row = lift_report([trigger(1, BUY, "a", 0.001)], events)[0]
    assert row.censored == 1 and row.treated.exposures == 0
    # No events at all: nothing is observed.
    assert lift_report([trigger(1, BUY, "a", 0)], [])[0].censored == 1


def test_unreadable_events_are_skipped_and_bad_triggers_refused() -> None:
    events = [{"customer_id": "a", "type": "purchase", "ts": "yesterday"},
              {"customer_id": 7, "type": "purchase", "ts": at(1)},
              {"event_id": "r", "customer_id": "a", "type": "purchase", "ts": at(1),
               "properties": {"revenue": "12"}},
              purchase("ok", "a", at(2), 3.0),
              {"event_id": "end", "customer_id": "z", "type": "login", "ts": at(48)}]
    assert lift_report([trigger(1, BUY, "a", 0)], events)[0].treated == GroupStats(1, 1, 3.0)
    with pytest.raises(UserError, match=r"^trigger 0+1: at: "):
        lift_report([{**trigger(1, BUY, "a", 0), "at": "soon"}], events)
    with pytest.raises(ValueError):
        lift_report([], [], window_ms=0)


def test_to_json_and_table() -> None:
    rows = lift_report(OUTPUTS, EVENTS)
    document = to_json(rows)
    assert json.loads(json.dumps(document)) == document
    assert document[1]["moment"] == BUY
    assert document[1]["treated"] == {"exposures": 3, "conversions": 2, "rate": 2 / 3,
                                      "revenue": 80.0, "revenue_per_exposure": 80 / 3}
    assert document[1]["ci_low"] == rows[1].ci_low
    table = format_table(rows).splitlines()
    assert len({len(line) for line in table[:-1]}) == 1      # aligned
    assert table[0].split()[:4] == ["moment", "T", "n", "T"]
    buy = table[2].split()
    assert buy[:7] == [BUY, "3", "2", "66.67%", "2", "1", "50.00%"]
    assert buy[7:10] == ["+16.67", "[-44.58,", "+65.48]"]
    assert buy[10:] == ["+33.3%", "26.67", "10.00", "0"]
    assert table[3].startswith("all ")


# --------------------------------------------------------------------------- command line

def _parse(argv: list[str]) -> argparse.Namespace:
    parser = Parser(prog="segstream lift")
    add_lift_arguments(parser)
    return parser.parse_args(argv)


def _write(path: Path, records: list[dict[str, Any]], gz: bool = False) -> Path:
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_run_lift_json_and_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs_a = _write(tmp_path / "out-a.jsonl", OUTPUTS[:6])
    outputs_b = _write(tmp_path / "out-b.jsonl.gz", OUTPUTS[6:], gz=True)
    events = _write(tmp_path / "events.jsonl", EVENTS)
    base = ["--outputs", str(outputs_a), "--outputs", str(outputs_b), "--events", str(events)]

    assert run_lift(_parse([*base, "--format", "json"])) == 0
    assert json.loads(capsys.readouterr().out) == to_json(lift_report(OUTPUTS, EVENTS))

    assert run_lift(_parse(base)) == 0
    assert capsys.readouterr().out == format_table(lift_report(OUTPUTS, EVENTS)) + "\n"

    assert run_lift(_parse([*base, "--window", "2h", "--include-censored",
                            "--format", "json"])) == 0
    expected = lift_report(OUTPUTS, EVENTS, window_ms=2 * H, include_censored=True)
    assert json.loads(capsys.readouterr().out) == to_json(expected)


def test_parse_window() -> None:
    events = ["--outputs", "o", "--events", "e"]
    assert _parse(events).window == 86_400_000
    assert _parse([*events, "--window", "30m"]).window == 1_800_000
    assert _parse([*events, "--window", "7d"]).window == 7 * 86_400_000


@pytest.mark.parametrize("window", ["5x", "0m", "-1h", ""])
def test_bad_window_is_one_line(window: str) -> None:
    with pytest.raises(UserError) as caught:
        _parse(["--outputs", "o", "--events", "e", "--window", window])
    message = str(caught.value)
    assert "--window" in message and "\n" not in message


def test_missing_flags_and_files(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--events"):
        _parse(["--outputs", "o"])
    events = _write(tmp_path / "events.jsonl", EVENTS)
    args = _parse(["--outputs", str(tmp_path / "nope.jsonl"), "--events", str(events)])
    with pytest.raises(UserError) as caught:
        run_lift(args)
    assert str(caught.value) == f"{tmp_path / 'nope.jsonl'}: no such file"


def test_bad_json_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_bytes(orjson.dumps(OUTPUTS[0]) + b"\n\n[1, 2]\n")
    events = _write(tmp_path / "events.jsonl", EVENTS)
    with pytest.raises(UserError) as caught:
        run_lift(_parse(["--outputs", str(path), "--events", str(events)]))
    assert str(caught.value) == f"{path}:3: not a JSON object"
    path.write_bytes(b'{"a": 1}\n{"truncated": \n')
    with pytest.raises(UserError, match=r":2: not a JSON object$"):
        list(read_jsonl(path))
    gz = tmp_path / "broken.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"a": 1}\n' * 1000)[:-20])
    with pytest.raises(UserError) as caught:
        list(read_jsonl(gz))
    assert str(caught.value).startswith(f"{gz}:") and "\n" not in str(caught.value)


def test_read_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "plain-named-but-gzip.jsonl"
    path.write_bytes(gzip.compress(b'{"a": 1}\n\n  \r\n{"b": 2}\r\n'))
    assert list(read_jsonl(path)) == [{"a": 1}, {"b": 2}]


def test_module_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from streams.cli import main

    events = _write(tmp_path / "events.jsonl", EVENTS)
    outputs = _write(tmp_path / "out.jsonl", OUTPUTS)
    assert main(["lift", "--outputs", str(outputs), "--events", str(events)]) == 0
    assert capsys.readouterr().out.startswith("moment ")
    assert main(["lift", "--outputs", str(outputs), "--events", str(events),
                 "--window", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--window" in err
