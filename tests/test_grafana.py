"""deploy/grafana/segstream.json queries only what the worker's ``/metrics`` exports:
the names (and the labels each query reads) come from a real render of the worker's
registry (:class:`streams.metrics.Metrics`) after a simulated log went through the
processor, never from a list written here."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from segments.definitions import load_default
from segments.engine import Engine
from segments.gate import Gate
from segments.processor import MemoryStore, Processor, Source
from streams.metrics import Metrics
from streams.tools.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "deploy" / "grafana" / "segstream.json"
# what Prometheus itself adds to every series it scrapes
SCRAPE_LABELS = {"instance", "job"}
# PromQL words that are not metric names
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
             "offset", "and", "or", "unless"}


@pytest.fixture(scope="module")
def exported() -> dict[str, set[str]]:
    """Each name ``/metrics`` exports, with the labels its samples carry."""
    processor = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False)
    wall = time.time_ns() // 1_000_000
    for n, event in enumerate(simulate(customers=30, days=3, seed=3,
                                       start=1_767_225_600_000)):
        processor.process(orjson.dumps(event), Source("interactions", n % 3, n), wall)
    processor.process(b'{"broken', Source("interactions", 0, 10**6), wall)  # a dead letter
    metrics = Metrics(processor, lambda: {0: 4, 1: 0, 2: 1})
    metrics.latency.observe(0.002)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        # a family with no sample yet (a model not warm) still names what it will export
        expected = {"counter": [f"{family.name}_total"], "gauge": [family.name],
                    "histogram": [f"{family.name}_{s}" for s in ("bucket", "count", "sum")]}
        for name in expected.get(family.type, []):
            names.setdefault(name, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def _queries(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target and templating query."""
    found = []
    for panel in document["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                found.append((inner["title"], target["expr"]))
    for variable in document.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            found.append((f"variable {variable['name']}", str(query)))
    return found


def metric_selectors(expr: str) -> list[tuple[str, set[str]]]:
    """Each metric name in ``expr`` with the label names its matchers read.

    >>> [(name, sorted(labels)) for name, labels in metric_selectors(
    ...     'sum by (reason) (rate(a_total{x="1",y!~"b"}[5m])) / b')]
    [('a_total', ['x', 'y']), ('b', [])]
    >>> metric_selectors('label_values(up_total, instance)')
    [('up_total', set())]
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # strings
    text = re.sub(r"\[[^\]]*\]", "", text)                      # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)", r"\1", text)
    found = []
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\s*(\{[^}]*\})?", text):
        name, matchers = match.group(1), match.group(2) or ""
        if name in _KEYWORDS or (not matchers and text[match.end():].startswith("(")):
            continue  # a function, an aggregation or a keyword
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
        found.append((name, labels))
    return found


def _grouping_labels(expr: str) -> set[str]:
    return {label.strip() for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr)
            for label in group.split(",") if label.strip()}


def test_every_metric_the_dashboard_queries_is_exported(exported: dict[str, set[str]]) -> None:
    document = json.loads(DASHBOARD.read_text())
    queries = _queries(document)
    assert len(queries) >= 10
    used = set()
    for where, expr in queries:
        selectors = metric_selectors(expr)
        assert selectors, f"{where}: no metric in {expr!r}"
        for name, labels in selectors:
            assert name in exported, f"{where}: {name} is not exported by /metrics"
            used.add(name)
            known = exported[name] | SCRAPE_LABELS | {"le"}
            if exported[name]:  # labels are known once the family has a sample
                assert labels <= known, f"{where}: {name} has no label {labels - known}"
        grouping = _grouping_labels(expr) - SCRAPE_LABELS - {"le"}
        carried = set().union(*(exported[name] for name, _ in selectors))
        if all(exported[name] for name, _ in selectors):
            assert grouping <= carried, f"{where}: groups by {grouping - carried}"
    # the dashboard covers what the issue asks for
    for name in ("segstream_events_consumed_total", "segstream_consumer_lag",
                 "segstream_events_dead_lettered_total", "segstream_segment_members",
                 "segstream_triggers_total", "segstream_time_errors_total"):
        assert name in used, name


def test_the_check_catches_a_name_that_is_not_exported(exported: dict[str, set[str]]) -> None:
    names = [name for name, _ in metric_selectors(
        'sum(rate(segstream_events_consumed{instance=~"$instance"}[1m]))')]
    assert names == ["segstream_events_consumed"]
    assert "segstream_events_consumed" not in exported  # a counter is read as ..._total


def test_every_panel_reads_the_provisioned_datasource() -> None:
    document = json.loads(DASHBOARD.read_text())
    import yaml

    provisioned = yaml.safe_load((ROOT / "deploy" / "grafana" / "provisioning" /
                                  "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"]}
    panels = [p for p in document["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] in uids, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]
    ids = [p["id"] for p in document["panels"]]
    assert len(ids) == len(set(ids))
