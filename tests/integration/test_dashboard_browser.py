"""The live page ``/dashboard`` in headless Chromium, on two real workers of one group
on the real broker, with a web token: the figures of ``/dashboard/data`` need it (401
without), the page asks for it, and with it shows the whole group (both workers' rows,
totals summed) and updates as events arrive, to the numbers the workers' ``/stats``
and ``/metrics`` and the output topics give; no console errors; the token leaves the
address bar and reaches no log."""

from __future__ import annotations

import os
import re
import shutil
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson

from streams.client.topics import ensure_topics
from streams.settings import Settings
from streams.tools.simulate import simulate
from tests.browser_tools import VIEWPORT, Console, chromium, number
from tests.kafka_tools import ROOT, START, Worker, consume, produce, values

TOKEN = "d4shb0ard-t0ken-77a1"


def status(url: str, authorization: str | None = None) -> int:
    headers = {} if authorization is None else {"Authorization": authorization}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def metric(worker: Worker, name: str) -> Counter[tuple[str, ...]]:
    """A family of the worker's ``/metrics``: its label values -> value."""
    found: Counter[tuple[str, ...]] = Counter()
    for line in worker.get_text("/metrics").splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            labels = tuple(re.findall(r'="([^"]*)"', match.group(1)))
            found[labels] += int(float(match.group(2)))
    return found


def rows(page: Any, table: str) -> list[list[str]]:
    """A table of the page, without its header row."""
    return [list(r) for r in page.eval_on_selector_all(
        f"#{table} tr", "rs => rs.slice(1).map(r => [...r.cells].map(c => c.textContent))")]


def settled(workers: list[Worker], timeout: float = 90.0) -> None:
    """Until both workers hold partitions of the group's assignment."""
    deadline = time.monotonic() + timeout
    while True:
        held = [w.get("/dashboard/data?scope=worker")["partitions"] for w in workers]
        if all(held) and sorted(p for h in held for p in h) == [0, 1, 2]:
            return
        assert time.monotonic() < deadline, (held, [w.log() for w in workers])
        time.sleep(0.5)


def test_the_live_page_shows_the_group_and_follows_the_events(
        bootstrap: str, prefix: str, tmp_path: Path) -> None:
    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=3))
    workers = [Worker(bootstrap, prefix, tmp_path / name, "--clock", "event",
                      "--session-timeout", "6", token=TOKEN,
                      env={"SEGSTREAM_WEB_TOKEN": TOKEN}) for name in ("a", "b")]
    events = list(simulate(customers=40, days=3, seed=5, start=START))
    pool = ThreadPoolExecutor(2)
    try:
        # both workers start at once, and the browser meanwhile: a third of the wait
        starting = [pool.submit(w.start) for w in workers]
        with chromium() as browser:
            for started in starting:
                started.result()
            settled(workers)
            url = workers[0].url
            assert status(f"{url}/dashboard/data") == 401
            assert status(f"{url}/dashboard/data", "Bearer wrong") == 403
            assert status(f"{url}/dashboard/data", f"Bearer {TOKEN}") == 200
            page = browser.new_page(viewport=VIEWPORT)
            console = Console(page)
            # no token: the page shows no figures and asks for it
            page.goto(f"{url}/dashboard")
            page.wait_for_selector("#auth", state="visible", timeout=10_000)
            assert page.text_content("#status") == "this worker needs its web token"
            assert page.text_content("#consumed") == "-"
            assert all("401" in e for e in console.errors), console.errors
            console.errors.clear()

            # the token in the fragment: kept by the tab, gone from the address
            page.goto(f"{url}/dashboard#token={TOKEN}")
            page.wait_for_function("document.getElementById('consumed').textContent === '0'",
                                   timeout=10_000)
            assert TOKEN not in page.url
            assert page.is_hidden("#auth")
            assert len(rows(page, "workers")) == 2
            records = [(e["customer_id"], orjson.dumps(e)) for e in events]
            records.insert(50, ("sim-5-000001", b"{not json"))  # a dead letter
            produce(bootstrap, f"{prefix}interactions", records)
            page.wait_for_function(
                f"document.getElementById('consumed').textContent === '{len(records)}'",
                timeout=60_000)
            # let the group settle (the figures polled once more after the last event)
            time.sleep(1.5)
            stats = [w.get("/stats")["totals"] for w in workers]
            totals = {k: sum(s[k] for s in stats) for k in
                      ("consumed", "applied", "duplicates", "dead_lettered")}
            assert totals["consumed"] == len(records) and totals["dead_lettered"] == 1
            for key in totals:
                assert number(page.text_content(f"#{key.replace('_', '-')}") or "") \
                    == totals[key], key
            assert number(page.text_content("#lag") or "") == 0
            assert page.text_content("#workers-answering") == "2 of 2"

            reasons = sum((Counter(w.get("/stats")["partitions"][p]["dead_lettered_by_reason"])
                           for w in workers for p in w.get("/stats")["partitions"]), Counter())
            assert {r[0]: number(r[1]) for r in rows(page, "dead-letters")} == dict(reasons)
            # each worker's row is its own /stats
            by_url = {r[0]: r for r in rows(page, "workers")}
            assert set(by_url) == {w.url for w in workers}
            for worker, own in zip(workers, stats, strict=True):
                row = by_url[worker.url]
                assert number(row[2]) == own["consumed"] and number(row[3]) == own["applied"]
                held = worker.get("/dashboard/data?scope=worker")["partitions"]
                assert row[1] == ", ".join(map(str, held))

            # segment sizes and triggers: the gauges and counters of both /metrics
            members = sum((metric(w, "segstream_segment_members") for w in workers),
                          Counter())
            assert members, "no segment has members: the test shows nothing"
            shown = {r[0]: number(r[1]) for r in rows(page, "segments")}
            assert shown == {k[0]: v for k, v in members.items() if v}
            triggers = sum((metric(w, "segstream_triggers_total") for w in workers),
                           Counter())
            header = page.eval_on_selector_all(
                "#triggers tr:first-child th", "hs => hs.map(h => h.textContent)")
            table = {(r[0], outcome): number(cell) for r in rows(page, "triggers")
                     for outcome, cell in zip(header[1:], r[1:], strict=True)}
            assert {k: v for k, v in table.items() if v} == dict(triggers)

            # the latest triggers sent are the newest records of micro-moments
            sent = values(consume(bootstrap, [f"{prefix}micro-moments"],
                                  sum(n for (_, o), n in triggers.items() if o == "sent"),
                                  timeout=30), f"{prefix}micro-moments")
            assert sent, "no trigger was sent"
            newest = sorted(sent, key=lambda v: v["at"], reverse=True)[:20]
            recent = rows(page, "recent-sent")
            assert [r[0] for r in recent] == [v["at"] for v in newest]
            assert {r[2] for r in recent} <= {v["customer_id"] for v in sent}
            # the discovered clusters, named
            clusters = rows(page, "clusters")
            assert clusters and all(r[1] for r in clusters)
            # and whether each centre is still like its name
            assert all(r[4] == "yes" or r[4].startswith("nearest to ") for r in clusters)
            assert page.text_content("#status").startswith("updated ")  # type: ignore[union-attr]
            assert console.errors == []
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot))
            if os.environ.get("SEGSTREAM_SCREENSHOTS") == "docs":
                shutil.copy(shot, ROOT / "docs" / "dashboard.png")
    finally:
        list(pool.map(Worker.stop, workers))
        pool.shutdown()
    for worker in workers:
        assert TOKEN not in worker.log_path.read_text(errors="replace")
