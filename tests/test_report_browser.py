"""The page of ``segstream report`` opened in headless Chromium, as an analyst opens
the file: no console errors, every Plotly figure drawn with one trace per segment,
moment or outcome of the outputs, and the numbers its tables show equal to counts
taken here from the outputs the report saved (the figures' data against the outputs:
tests/test_report.py)."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.cli import main
from streams.tools.report_html import FIGURES
from streams.tools.simulate import simulate
from tests.browser_tools import VIEWPORT, Console, chromium, number

START = 1_767_225_600_000  # 2026-01-01
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """A report of a simulated log with a dead letter, and the outputs it saved."""
    folder = tmp_path_factory.mktemp("report-browser")
    log, saved, page = folder / "events.jsonl", folder / "outputs.jsonl", folder / "r.html"
    with log.open("wb") as out:
        for n, event in enumerate(simulate(customers=60, days=8, seed=3, start=START)):
            out.write(orjson.dumps(event) + b"\n")
            if n == 100:
                out.write(b'{"customer_id": "sim-3-000001", "type": "purchase"}\n')
    assert main(["report", "--events", str(log), "--out", str(page), "--jobs", "1",
                 "--save-outputs", str(saved), "--no-progress"]) == 0
    return page, [orjson.loads(line) for line in saved.read_bytes().splitlines()]


def _table(page: Any, heading: str) -> dict[str, str]:
    """The first two columns of the table whose header starts with ``heading``."""
    return dict(page.evaluate(
        """(heading) => {
             const t = [...document.querySelectorAll("table")].find(
               (t) => t.querySelector("th").textContent === heading);
             return t ? [...t.querySelectorAll("tbody tr")].map(
               (r) => [r.cells[0].textContent, r.cells[1].textContent]) : [];
           }""", heading))


def test_the_report_renders_in_chromium_with_the_outputs_numbers(
        written: tuple[Path, list[dict[str, Any]]]) -> None:
    path, outputs = written
    changes = [r for r in outputs if r["schema"].startswith("segment-change/")]
    triggers = [r for r in outputs if r["schema"].startswith("micro-moment/")]
    dead = Counter(r["reason"] for r in outputs if r["schema"].startswith("dead-letter/"))
    assert changes and triggers and dead, "the log shows nothing"
    segments = {r["segment"] for r in changes}
    moments = {r["moment"] for r in triggers}
    outcomes = {r.get("suppressed", "sent") for r in triggers}
    last: dict[str, list[str]] = {}
    for r in changes:
        last[r["customer_id"]] = r["segments"]
    at_end = Counter(s for held in last.values() for s in held)
    # one trace per segment, moment or outcome; the heatmaps are one trace each
    traces = {"segment-sizes": len(segments), "segment-flows": 2 * len(segments),
              "triggers-sent-by-moment": len(moments), "triggers-by-outcome": len(outcomes),
              "trigger-outcomes": 1, "segment-overlap": 1, "event-to-trigger": len(moments),
              "time-to-act": len(moments), "lift-rates": 2, "lift-difference": 1}

    with chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        console = Console(page)
        page.goto(path.as_uri())
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg')"
                               ".length > 0", timeout=20_000)
        drawn = page.evaluate(
            """() => [...document.querySelectorAll(".js-plotly-plot")].map((gd) => [
                 gd.id, gd._fullData.length,
                 gd.querySelectorAll(".main-svg").length,
                 gd.querySelectorAll(".cartesianlayer .trace, .cartesianlayer .hm").length])""")
        assert [d[0] for d in drawn] == [f for f in FIGURES if not f.startswith("compare-")]
        for name, full, svgs, marks in drawn:
            assert full == traces[name], name
            assert svgs > 0 and marks > 0, (name, svgs, marks)  # drawn, not only data

        summary = _table(page, "the log")
        assert number(summary["output records read"]) == len(outputs)
        assert number(summary["triggers"]) == len({r["trigger_id"] for r in triggers})
        assert number(summary["triggers sent"]) == sum(
            1 for r in triggers if "suppressed" not in r)
        assert number(summary["customers with a segment change"]) == len(last)
        assert {k: number(v) for k, v in _table(page, "dead letters by reason").items()} \
            == dict(dead)
        shown = _table(page, "segment")
        assert {k: number(v) for k, v in shown.items()} == {
            s: n for s, n in at_end.items() if n}
        assert console.errors == []
        shot = path.with_suffix(".png")  # the charts, from the first one on
        page.evaluate("document.getElementById('segment-sizes').scrollIntoView()")
        page.screenshot(path=str(shot))
        if os.environ.get("SEGSTREAM_SCREENSHOTS") == "docs":
            shutil.copy(shot, ROOT / "docs" / "report.png")
