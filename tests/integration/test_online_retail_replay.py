"""The real Online Retail II log: imported, replayed into Kafka at two speeds through the
worker, and offline; all three give the same records per customer and topic.

The whole log (44,876 events) is too slow for CI through the worker, so the broker runs
take its first four months (about 7,000 events, with refunds and time transitions);
`make bench` reports the offline figures on the whole log.
"""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson

from segments.definitions import DEFAULT_PATH, parse_definitions
from streams.tools.importers import run_import
from streams.tools.offline import replay_offline
from tests.integration.test_worker_matches_offline import by_customer
from tests.kafka_tools import consume, running_worker, segstream_command

CUTOFF = "2010-04-01T00:00:00Z"


def replay(bootstrap: str, prefix: str, log: Path, *flags: str) -> None:
    done = subprocess.run([*segstream_command(), "replay", str(log), "--bootstrap", bootstrap,
                           "--topic-prefix", prefix, "--no-progress", *flags],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("replayed "), done.stderr


def test_online_retail_gives_the_same_records_at_two_speeds_and_offline(
        bootstrap: str, prefix: str, tmp_path: Path, data_file: Callable[[str], Path]) -> None:
    events = tmp_path / "online-retail.jsonl"
    with events.open("wb") as out:
        report = run_import("online-retail",
                            data_file("online-retail-ii/online_retail_ii.parquet"), out)
    assert report.written == 44_876
    subset = tmp_path / "first-months.jsonl"
    lines = [line for line in events.read_bytes().splitlines()
             if orjson.loads(line)["ts"] < CUTOFF]
    subset.write_bytes(b"".join(line + b"\n" for line in lines))
    definitions_path = tmp_path / "definitions.toml"
    definitions_path.write_text(DEFAULT_PATH.read_text())

    out = io.BytesIO()
    summary = replay_offline([subset], parse_definitions(definitions_path.read_text()), out,
                             partitions=3)
    offline = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert summary["applied"] == len(lines) > 5000
    assert any(v["cause"]["kind"] == "time" for v in offline)
    expected = by_customer([(v["customer_id"], v) for v in offline])

    for run, flags in (("max", ("--speed", "max")), ("paced", ("--rate", "4000"))):
        run_prefix = f"{prefix}{run}-"
        with running_worker(bootstrap, run_prefix, tmp_path / run, "--definitions",
                            str(definitions_path), "--clock", "event", "--partitions", "3"):
            replay(bootstrap, run_prefix, subset, *flags)
            topics = [f"{run_prefix}{name}" for name in
                      ("segment-changes", "micro-moments", "micro-moments-suppressed")]
            records = consume(bootstrap, topics, count=len(offline), timeout=300, settle=3.0)
        got = by_customer([(key, orjson.loads(raw)) for _, key, raw in records])
        assert got == expected, f"{run}: the worker differs from the offline replay"
