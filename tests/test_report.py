"""``segstream report``: the tables against counts taken here straight from the output
records of a simulated replay, the page against the tables (its figures' data read
back out of the HTML), and the page needs no network."""

from __future__ import annotations

import io
import json
import re
from bisect import bisect_right
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from segments.definitions import load_default, load_definitions
from segments.timefmt import parse_ts
from streams.cli import main
from streams.tools.lift import lift_report, to_json, wilson_interval
from streams.tools.offline import replay_offline
from streams.tools.report import (
    DURATION_BINS,
    Report,
    ReportBuilder,
    compare,
    segment_groups,
)
from streams.tools.report_html import FIGURES, render
from streams.tools.simulate import simulate

START = 1_767_225_600_000  # 2026-01-01


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "events.jsonl"
    with path.open("wb") as out:
        for n, event in enumerate(simulate(customers=80, days=10, seed=11, start=START)):
            out.write(orjson.dumps(event) + b"\n")
            if n == 300:  # a dead letter
                out.write(b'{"customer_id": "sim-11-000001", "type": "purchase"}\n')
    return path


def _replay(log: Path, definitions: Any = None) -> list[dict[str, Any]]:
    out = io.BytesIO()
    replay_offline([log], definitions or load_default(), out, partitions=3, jobs=1)
    return [orjson.loads(line) for line in out.getvalue().splitlines()]


@pytest.fixture(scope="module")
def outputs(log: Path) -> list[dict[str, Any]]:
    return _replay(log)


@pytest.fixture(scope="module")
def events(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _report(outputs: list[dict[str, Any]], events: list[dict[str, Any]] | None,
            definitions: Any = None) -> tuple[Report, ReportBuilder]:
    builder = ReportBuilder(definitions or load_default())
    for record in outputs:
        builder.add(record)
    return builder.finish(events), builder


@pytest.fixture(scope="module")
def report(outputs: list[dict[str, Any]], events: list[dict[str, Any]]) -> Report:
    return _report(outputs, events)[0]


def _of(outputs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in outputs if r["schema"].startswith(kind)]


def _day(record: dict[str, Any]) -> str:
    return str(record["at"])[:10]  # the records' times are UTC: YYYY-MM-DDT...


def _bin(ms: int) -> int:
    return bisect_right([upper for _, upper in DURATION_BINS], ms)


# ----------------------------------------------------------------- the tables

def test_the_log_has_what_the_report_shows(outputs: list[dict[str, Any]]) -> None:
    outcomes = Counter(r.get("suppressed", "sent") for r in _of(outputs, "micro-moment/"))
    assert outcomes["sent"] and outcomes["holdout"] and len(outcomes) >= 4, outcomes
    assert {r["change"] for r in _of(outputs, "segment-change/")} == {"entered", "exited"}
    assert _of(outputs, "dead-letter/")


def test_entries_exits_and_sizes_per_day(report: Report,
                                         outputs: list[dict[str, Any]]) -> None:
    changes = _of(outputs, "segment-change/")
    days = sorted({_day(r) for r in outputs if "definitions_version" in r})
    assert report.bucket == "day"
    assert report.buckets[0] == days[0] and report.buckets[-1] == days[-1]
    counted = Counter((r["segment"], r["change"], _day(r)) for r in changes)
    assert set(report.segments) == {r["segment"] for r in changes}
    for segment in report.segments:
        size = 0
        for index, day in enumerate(report.buckets):
            entered, exited = counted[(segment, "entered", day)], counted[(segment, "exited",
                                                                           day)]
            assert report.entries[segment][index] == entered, (segment, day)
            assert report.exits[segment][index] == exited, (segment, day)
            size += entered - exited
            assert report.sizes[segment][index] == size, (segment, day)


def test_final_members_and_overlap(report: Report, outputs: list[dict[str, Any]]) -> None:
    last: dict[str, set[str]] = {}
    for record in _of(outputs, "segment-change/"):
        last[record["customer_id"]] = set(record["segments"])
    for a in report.segments:
        members = {c for c, segments in last.items() if a in segments}
        assert report.final_members[a] == len(members)
        # entries minus exits over the log is the same number, counted the other way
        assert report.sizes[a][-1] == len(members)
        for b in report.segments:
            both = sum(1 for c in members if b in last[c])
            assert report.overlap.get((a, b), 0) == both
            assert report.share(a, b) == (both / len(members) if members else None)
    assert report.customers == len(last)


def test_triggers_per_day_by_moment_and_outcome(report: Report,
                                                outputs: list[dict[str, Any]]) -> None:
    triggers = _of(outputs, "micro-moment/")
    sent = Counter((r["moment"], _day(r)) for r in triggers if "suppressed" not in r)
    outcome = Counter((r.get("suppressed", "sent"), _day(r)) for r in triggers)
    assert report.outcomes[0] == "sent"
    assert set(report.outcomes) == {o for o, _ in outcome}
    for index, day in enumerate(report.buckets):
        for moment in report.moments:
            assert report.sent_by_moment[moment][index] == sent[(moment, day)]
        for name in report.outcomes:
            assert report.by_outcome[name][index] == outcome[(name, day)]
    assert report.trigger_totals == dict(Counter(
        (r["moment"], r.get("suppressed", "sent")) for r in triggers))
    assert report.dead_letters == dict(Counter(
        r["reason"] for r in _of(outputs, "dead-letter/")))


def test_timing_distributions(report: Report, outputs: list[dict[str, Any]],
                              events: list[dict[str, Any]]) -> None:
    triggers = _of(outputs, "micro-moment/")
    ts = {(e["customer_id"], e["event_id"]): parse_ts(e["ts"]) for e in events
          if "event_id" in e}
    to_act: Counter[tuple[str, int]] = Counter()
    waited: Counter[tuple[str, int]] = Counter()
    for record in triggers:
        at = parse_ts(record["at"])
        to_act[(record["moment"], _bin(parse_ts(record["expires_at"]) - at))] += 1
        cause = (record["customer_id"], record["cause"]["event_id"])
        waited[(record["moment"], _bin(at - ts[cause]))] += 1
    assert report.event_to_trigger is not None and report.unmatched_causes == 0
    for moment in report.moments:
        assert report.to_act[moment] == [to_act[(moment, i)] for i in range(len(DURATION_BINS))]
        assert report.event_to_trigger[moment] == [waited[(moment, i)]
                                                   for i in range(len(DURATION_BINS))]
    # some moments wait (delays) and some do not: the histogram is not one bar
    assert sum(n for (_, i), n in waited.items() if i > 0) > 0
    assert sum(n for (_, i), n in waited.items() if i == 0) > 0


def test_lift_is_segstream_lifts(report: Report, outputs: list[dict[str, Any]],
                                 events: list[dict[str, Any]]) -> None:
    assert report.lift is not None
    assert to_json(report.lift) == to_json(lift_report(outputs, events))


def test_without_the_events_there_is_no_lift(outputs: list[dict[str, Any]]) -> None:
    report, _ = _report(outputs, None)
    assert report.lift is None and report.event_to_trigger is None
    assert "lift-rates" not in _figures(render(report))


def test_repeated_records_count_once(outputs: list[dict[str, Any]]) -> None:
    once, _ = _report(outputs, None)
    twice, _ = _report(outputs + outputs, None)
    assert (twice.entries, twice.by_outcome, twice.final_members) == (
        once.entries, once.by_outcome, once.final_members)


def test_a_short_log_is_bucketed_by_hour(outputs: list[dict[str, Any]]) -> None:
    first = _day(outputs[0])
    short = [r for r in outputs if "definitions_version" in r and _day(r) == first]
    report, _ = _report(short, None)
    hours = sorted({str(r["at"])[:13] for r in short})
    assert report.bucket == "hour"
    assert report.buckets[0] == hours[0] and report.buckets[-1] == hours[-1]
    assert set(hours) <= set(report.buckets)


def test_macro_and_micro_segments_are_grouped() -> None:
    definitions = load_default()
    groups = segment_groups(definitions, ["country_uk", "unknown_one"])
    nested = {n: s.parent for n, s in definitions.segments.items() if s.parent}
    for child, parent in nested.items():
        family = next(g for g in groups.values() if parent in g)
        assert family[0] == parent and child in family
    assert groups["not in the definitions"] == ["unknown_one"]
    placed = [s for g in groups.values() for s in g]
    assert sorted(placed) == sorted([*definitions.segments, "unknown_one"])


# ----------------------------------------------------------------- the page

def _figures(page: str) -> dict[str, dict[str, Any]]:
    """Each figure of the page as plotly.js receives it: its data and layout."""
    decoder = json.JSONDecoder()
    figures = {}
    for match in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', page):
        data, end = decoder.raw_decode(page, match.end())
        layout, _ = decoder.raw_decode(page, page.index("{", end))
        figures[match.group(1)] = {"data": data, "layout": layout}
    return figures


def _traces(figure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {trace["name"]: trace for trace in figure["data"]}


def test_the_page_needs_no_network(report: Report) -> None:
    from plotly.offline import get_plotlyjs

    page = render(report)
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", page, re.I)
    assert tags and not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t, re.I)], tags
    assert page.count(get_plotlyjs()) == 1  # plotly.js inline, once
    assert "@import" not in page


def test_the_page_has_every_figure(report: Report) -> None:
    figures = _figures(render(report))
    assert list(figures) == [f for f in FIGURES if not f.startswith("compare-")]


def test_the_figures_show_the_outputs_counts(report: Report, outputs: list[dict[str, Any]],
                                            events: list[dict[str, Any]]) -> None:
    figures = _figures(render(report))
    changes = _of(outputs, "segment-change/")
    triggers = _of(outputs, "micro-moment/")
    net: Counter[tuple[str, str]] = Counter()
    for r in changes:
        net[(r["segment"], _day(r))] += 1 if r["change"] == "entered" else -1
    sizes = _traces(figures["segment-sizes"])
    assert set(sizes) == {r["segment"] for r in changes}
    for segment, trace in sizes.items():
        assert trace["x"] == report.buckets
        running = 0
        for day, shown in zip(trace["x"], trace["y"], strict=True):
            running += net[(segment, day)]
            assert shown == running, (segment, day)
    flows = _traces(figures["segment-flows"])
    for r_change, sign in (("entered", 1), ("exited", -1)):
        counted = Counter((r["segment"], _day(r)) for r in changes if r["change"] == r_change)
        for segment in sizes:
            trace = flows[f"{segment} {r_change}"]
            assert [sign * n for n in trace["y"]] == [counted[(segment, d)] for d in trace["x"]]
    by_outcome = Counter((r.get("suppressed", "sent"), _day(r)) for r in triggers)
    for name, trace in _traces(figures["triggers-by-outcome"]).items():
        assert trace["y"] == [by_outcome[(name, day)] for day in trace["x"]]
    sent = Counter((r["moment"], _day(r)) for r in triggers if "suppressed" not in r)
    for moment, trace in _traces(figures["triggers-sent-by-moment"]).items():
        assert trace["y"] == [sent[(moment, day)] for day in trace["x"]]
    heat = figures["trigger-outcomes"]["data"][0]
    totals = Counter((r["moment"], r.get("suppressed", "sent")) for r in triggers)
    assert heat["z"] == [[totals[(m, o)] for o in heat["x"]] for m in heat["y"]]

    last: dict[str, set[str]] = {}
    for r in changes:
        last[r["customer_id"]] = set(r["segments"])
    overlap = figures["segment-overlap"]["data"][0]
    for a, row, counts in zip(overlap["y"], overlap["z"], overlap["customdata"], strict=True):
        members = [c for c, s in last.items() if a in s]
        for b, share, both in zip(overlap["x"], row, counts, strict=True):
            assert both == sum(1 for c in members if b in last[c])
            assert share == pytest.approx(both / len(members))

    lift = {row.moment: row for row in lift_report(outputs, events)}
    rates = _traces(figures["lift-rates"])
    for name, group in (("treated (sent)", "treated"), ("control (holdout)", "control")):
        trace = rates[name]
        for moment, rate, above in zip(trace["x"], trace["y"], trace["error_y"]["array"],
                                       strict=True):
            stats = getattr(lift[moment], group)
            if not stats.exposures:
                assert rate is None
                continue
            assert rate == pytest.approx(stats.conversions / stats.exposures)
            high = wilson_interval(stats.conversions, stats.exposures)[1]
            assert rate + above == pytest.approx(high)
    difference = figures["lift-difference"]["data"][0]
    for moment, diff in zip(difference["x"], difference["y"], strict=True):
        expected = lift[moment].diff
        assert expected is not None and diff == pytest.approx(100 * expected)


def test_compare_two_definitions(log: Path, outputs: list[dict[str, Any]],
                                 tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[1] / "segments" /
            "default_definitions.toml").read_text()
    changed = text.replace('when = "purchases_total >= 2"', 'when = "purchases_total >= 3"')
    assert changed != text
    other = tmp_path / "stricter.toml"
    other.write_text(changed)
    second_outputs = _replay(log, load_definitions(other))
    first, first_builder = _report(outputs, None)
    second, second_builder = _report(second_outputs, None, load_definitions(other))
    comparison = compare(first, second, ("default", "stricter"),
                         (first_builder.last_segments, second_builder.last_segments))
    figures = _figures(render(first, comparison))
    assert [f for f in FIGURES if f.startswith("compare-")] == [
        f for f in figures if f.startswith("compare-")]

    def final(records: list[dict[str, Any]]) -> dict[str, set[str]]:
        last: dict[str, set[str]] = {}
        for r in _of(records, "segment-change/"):
            last[r["customer_id"]] = set(r["segments"])
        return last

    a, b = final(outputs), final(second_outputs)
    sizes = _traces(figures["compare-sizes"])
    members = _traces(figures["compare-members"])
    for index, segment in enumerate(sizes["default"]["x"]):
        in_a = {c for c, s in a.items() if segment in s}
        in_b = {c for c, s in b.items() if segment in s}
        assert sizes["default"]["y"][index] == len(in_a)
        assert sizes["stricter"]["y"][index] == len(in_b)
        assert members["only with default"]["y"][index] == len(in_a - in_b)
        assert members["with both"]["y"][index] == len(in_a & in_b)
        assert members["only with stricter"]["y"][index] == len(in_b - in_a)
    repeat = sizes["default"]["x"].index("repeat_buyer")
    assert sizes["stricter"]["y"][repeat] < sizes["default"]["y"][repeat]
    churn = _traces(figures["compare-churn"])
    for name, records in (("default", outputs), ("stricter", second_outputs)):
        counted = Counter(r["segment"] for r in _of(records, "segment-change/"))
        assert churn[name]["y"] == [counted[s] for s in churn[name]["x"]]
    sent = _traces(figures["compare-triggers"])
    for name, records in (("default", outputs), ("stricter", second_outputs)):
        counted = Counter(r["moment"] for r in _of(records, "micro-moment/")
                          if "suppressed" not in r)
        assert sent[name]["y"] == [counted[m] for m in sent[name]["x"]]


# ----------------------------------------------------------------- the command

def test_the_command_replays_or_reads_outputs(log: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    saved, page = tmp_path / "outputs.jsonl", tmp_path / "replayed.html"
    assert main(["report", "--events", str(log), "--out", str(page), "--jobs", "1",
                 "--save-outputs", str(saved), "--progress"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{page}\n"
    assert "replaying" in captured.err and "written" in captured.err
    read = tmp_path / "read.html"
    assert main(["report", "--outputs", str(saved), "--events", str(log),
                 "--out", str(read), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
    replayed, from_file = _figures(page.read_text()), _figures(read.read_text())
    assert list(replayed) == list(from_file)
    for name in replayed:
        assert replayed[name]["data"] == from_file[name]["data"], name
    # and the saved records are the replay's (but for a dead letter's processing time)
    def timeless(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "at" or "definitions_version" in r}
                for r in records]

    assert timeless([orjson.loads(line) for line in saved.read_bytes().splitlines()]) == (
        timeless(_replay(log)))
