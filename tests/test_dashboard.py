"""The figures of ``/dashboard``: one worker's from a real processor, and the group's
merged from several (the page itself: tests/integration/test_dashboard_browser.py)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson

from segments.definitions import load_default
from segments.engine import Engine
from segments.gate import Gate, GateConfig
from segments.processor import MemoryStore, Processor, Source
from segments.records import MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED, Output
from streams.dashboard import RateMeter, RecentTriggers, merge, worker_figures
from streams.tools.simulate import simulate

START = 1_767_225_600_000
WALL = START + 10 * 86_400_000  # after the log: no event is from the future


def _figures(partitions: range, url: str) -> tuple[dict[str, Any], list[Output]]:
    """A processor fed a simulated log's events of ``partitions`` (of 3); its figures
    and every output it produced."""
    processor = Processor(Engine(load_default()), Gate(GateConfig()), MemoryStore(),
                          live=False)
    recent = RecentTriggers(size=5)
    outputs: list[Output] = []
    for n, event in enumerate(simulate(customers=30, days=3, seed=2, start=START)):
        partition = sum(event["customer_id"].encode()) % 3
        if partition not in partitions:
            continue
        raw = orjson.dumps(event)
        out = processor.process(raw, Source("interactions", partition, n, None, 0), WALL)
        recent.note(out)
        outputs += out
    processor.process(b"{}", Source("interactions", partitions[0], 10_000, None, 0), WALL)
    figures = worker_figures(processor, dict, recent, RateMeter(), url=url, now=0.0,
                             clusters=dict)
    return figures, outputs


def test_a_worker_counts_what_it_produced_and_keeps_the_newest_triggers() -> None:
    figures, outputs = _figures(range(3), "http://a")
    consumed = figures["totals"]["consumed"]
    assert consumed == figures["totals"]["applied"] + figures["totals"]["duplicates"] + 1
    assert sum(figures["dead_letters"].values()) == 1  # the record b"{}"
    entered = Counter(o.value["segment"] for o in outputs if o.value.get("change") == "entered")
    exited = Counter(o.value["segment"] for o in outputs if o.value.get("change") == "exited")
    assert figures["segments"], "no segment has members: the test shows nothing"
    assert figures["segments"] == {s: n for s, n in (entered - exited).items() if n}
    triggers = [o.value for o in outputs if o.topic in (MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED)]
    assert triggers, "the log causes no trigger: the test shows nothing"
    counted = Counter((t["moment"], t.get("suppressed", "sent")) for t in triggers)
    assert {(m, o): n for m, outcomes in figures["triggers"].items()
            for o, n in outcomes.items()} == dict(counted)
    sent = [o.value for o in outputs if o.topic == MICRO_MOMENTS]
    assert len(sent) > 5, "fewer triggers sent than kept: the test shows nothing"
    assert [t["trigger_id"] for t in figures["recent_sent"]] == \
        [t["trigger_id"] for t in sent[::-1][:5]]
    assert all(t["outcome"] != "sent" for t in figures["recent_withheld"])
    assert figures["events_per_second"] is None  # one sample: no rate yet


def test_the_group_is_the_sum_of_its_workers_and_names_the_silent_ones() -> None:
    a, _ = _figures(range(0, 1), "http://a")
    b, _ = _figures(range(1, 3), "http://b")
    whole, _ = _figures(range(3), "http://all")
    group = merge([b, a, {"url": "http://c", "error": "TimeoutError"}], size=5)
    for key in ("consumed", "applied", "duplicates", "dead_lettered"):
        assert group["totals"][key] == a["totals"][key] + b["totals"][key]
    for key in ("applied", "duplicates"):
        assert group["totals"][key] == whole["totals"][key]
    assert group["totals"]["dead_lettered"] == 2  # one each
    assert (group["totals"]["workers"], group["totals"]["workers_answering"]) == (3, 2)
    assert group["segments"] == whole["segments"]
    assert group["triggers"] == whole["triggers"]
    assert [w["url"] for w in group["workers"]] == ["http://a", "http://b", "http://c"]
    assert group["workers"][2]["error"] == "TimeoutError"
    newest = sorted(a["recent_sent"] + b["recent_sent"], key=lambda t: t["at"],
                    reverse=True)[:5]
    assert [t["at"] for t in group["recent_sent"]] == [t["at"] for t in newest]


def test_clusters_of_several_partitions_add_up() -> None:
    def cluster(size: int, x: float, categories: list[tuple[str, int]]) -> dict[str, Any]:
        return {"cluster": 0, "archetype": "bargain hunters", "description": "d",
                "centroid": {"x": x}, "size": size, "top_categories": categories}

    worker = {"url": "http://a", "totals": dict.fromkeys(
        ("consumed", "applied", "duplicates", "dead_lettered"), 0),
        "events_per_second": None, "lag": {}, "dead_letters": {}, "segments": {},
        "triggers": {}, "recent_sent": [], "recent_withheld": [],
        "clusters_by_partition": {"0": [cluster(1, 1.0, [("shoes", 2)])],
                                  "1": [cluster(3, 3.0, [("hats", 1), ("shoes", 1)])]}}
    (merged,) = merge([worker])["clusters"]
    assert merged["size"] == 4 and merged["partitions"] == 2
    assert merged["centroid"] == {"x": 2.5}
    assert merged["top_categories"] == [("shoes", 3), ("hats", 1)]
    assert merged["unlike_name"] == []


def test_the_clusters_say_where_a_centre_is_unlike_its_name() -> None:
    def cluster(populated: bool, like: bool, nearest: str) -> dict[str, Any]:
        return {"cluster": 2, "archetype": "loyal_high_value", "description": "d",
                "centroid": {"x": 1.0}, "size": 1, "top_categories": [],
                "populated": populated, "like_archetype": like,
                "nearest_archetype": nearest}

    worker = {"url": "http://a", "totals": dict.fromkeys(
        ("consumed", "applied", "duplicates", "dead_lettered"), 0),
        "events_per_second": None, "lag": {}, "dead_letters": {}, "segments": {},
        "triggers": {}, "recent_sent": [], "recent_withheld": [],
        "clusters_by_partition": {"0": [cluster(True, True, "loyal_high_value")],
                                  "1": [cluster(True, False, "lapsed_buyer")],
                                  "2": [cluster(False, False, "one_time_buyer")]}}
    (merged,) = merge([worker])["clusters"]
    assert merged["unlike_name"] == [{"partition": 1, "nearest": "lapsed_buyer"}]


def test_the_rate_is_over_the_window() -> None:
    meter = RateMeter(window_s=10.0)
    assert meter.rate(0.0, 0) is None
    assert meter.rate(5.0, 50) == 10.0
    assert meter.rate(8.0, 50) == 6.2  # nothing since 5.0
    assert meter.rate(20.0, 60) is None  # no sample in the last 10 s to count from
    assert meter.rate(21.0, 160) == 100.0


def test_a_peer_that_refuses_or_is_gone_is_a_row_saying_why() -> None:
    """``peer_figures`` over real HTTP: a peer answering 200 gives its figures, one
    refusing the token its status, one not listening the connection error."""
    import asyncio

    import aiohttp
    from aiohttp import web

    from streams.web import peer_figures
    from tests.kafka_tools import free_port

    seen: list[str | None] = []

    async def figures(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        if request.query.get("scope") != "worker":
            return web.json_response({"error": "asked for the group"}, status=400)
        if request.headers.get("Authorization") != "Bearer right":
            return web.json_response({"error": "no"}, status=403)
        return web.json_response({"url": "peer", "totals": {"consumed": 7}})

    async def run() -> list[dict[str, Any]]:
        server = web.Application()
        server.router.add_get("/dashboard/data", figures)
        runner = web.AppRunner(server)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as session:
                app = type("App", (), {"http_client": session})()
                url = f"http://127.0.0.1:{port}"
                return [await peer_figures(app, url, "Bearer right"),
                        await peer_figures(app, url, "Bearer wrong"),
                        await peer_figures(app, f"http://127.0.0.1:{free_port()}", None)]
        finally:
            await runner.cleanup()

    answered, refused, gone = asyncio.run(run())
    assert answered == {"url": "peer", "totals": {"consumed": 7}}
    assert refused == {"url": refused["url"], "error": "HTTP 403"}
    assert gone["error"].startswith("ClientConnectorError")
    assert seen == ["Bearer right", "Bearer wrong"]
