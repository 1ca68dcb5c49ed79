"""`segstream replay` -> worker -> `segstream tail`, through the real broker."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson

from tests.kafka_tools import produce, running_worker, segstream_command

RULES = """
[policies]
holdout = 0.0
[segments.buyer]
when = "purchases_total >= 1"
[moments.i_want_to_know]
when = "event.type == 'search'"
ttl = "12h"
"""
T = 1_767_261_600_000  # 2026-01-01T10:00:00Z


def event(n: int, who: str, kind: str, **props: object) -> tuple[str, bytes]:
    doc = {"event_id": f"e{n}", "customer_id": who, "type": kind, "ts": T + n * 1000,
           "properties": props}
    return who, orjson.dumps(doc)


def tail(bootstrap: str, prefix: str, *args: str,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*segstream_command(), "tail", *args, "--bootstrap", bootstrap,
                           "--topic-prefix", prefix], capture_output=True, text=True,
                          timeout=timeout)


def test_tail_reads_filters_and_follows(bootstrap: str, prefix: str, tmp_path: Path) -> None:
    definitions = tmp_path / "d.toml"
    definitions.write_text(RULES)
    story = [event(0, "ann", "consent_update", marketing=True),
             event(1, "bob", "consent_update", marketing=True),
             event(2, "ann", "search", query="boots"),
             event(3, "bob", "search", query="hats"),
             event(4, "cat", "search", query="no consent"),
             event(5, "ann", "purchase", order_id="o1", revenue=10.0)]
    log = tmp_path / "story.jsonl"
    log.write_bytes(b"".join(line + b"\n" for _, line in story))
    with running_worker(bootstrap, prefix, tmp_path, "--definitions", str(definitions),
                        "--clock", "event"):
        replayed = subprocess.run([*segstream_command(), "replay", str(log), "--bootstrap",
                                   bootstrap, "--topic-prefix", prefix, "--no-progress"],
                                  capture_output=True, text=True, timeout=60)
        assert replayed.returncode == 0, replayed.stderr
        done = tail(bootstrap, prefix, "micro-moments", "--from-beginning", "--count", "2",
                    "--format", "json", "--idle", "30")
        assert done.returncode == 0, done.stderr
        sent = [orjson.loads(line) for line in done.stdout.splitlines()]
        assert sorted(v["customer_id"] for v in sent) == ["ann", "bob"]
        assert done.stderr.startswith("2 of 2 records shown")

        only_bob = tail(bootstrap, prefix, "micro-moments", "--from-beginning", "--customer",
                        "bob", "--format", "json", "--idle", "3")
        assert [orjson.loads(x)["customer_id"] for x in only_bob.stdout.splitlines()] == ["bob"]

        withheld = tail(bootstrap, prefix, "micro-moments-suppressed", "--from-beginning",
                        "--reason", "no_consent", "--format", "table", "--idle", "3")
        assert "cat" in withheld.stdout and "no_consent" in withheld.stdout

        entered = tail(bootstrap, prefix, "segment-changes", "--from-beginning", "--segment",
                       "buyer", "--change", "entered", "--format", "json", "--count", "1")
        assert orjson.loads(entered.stdout)["customer_id"] == "ann"

        # live: only records produced after the tail started
        live = subprocess.Popen([*segstream_command(), "tail", "micro-moments", "--format",
                                 "json", "--count", "1", "--idle", "60", "--bootstrap",
                                 bootstrap, "--topic-prefix", prefix],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert live.stderr is not None
        ready = live.stderr.readline()  # printed once its end offsets are taken
        assert ready.startswith(f"following {prefix}micro-moments from its end"), ready
        produce(bootstrap, f"{prefix}interactions", [event(9, "ann", "search", query="new")])
        out, err = live.communicate(timeout=60)
        assert live.returncode == 0, err
        assert orjson.loads(out)["cause"]["event_id"] == "e9"


def test_tail_user_errors_are_one_line(bootstrap: str, prefix: str) -> None:
    for args, message in ((["nope"], "unknown topic 'nope'"),
                          (["micro-moments"], "does not exist"),
                          (["micro-moments", "--count", "0"], "--count must be at least 1")):
        done = tail(bootstrap, prefix, *args)
        assert done.returncode == 2
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    unreachable = subprocess.run([*segstream_command(), "tail", "micro-moments",
                                  "--bootstrap", "127.0.0.1:1"], capture_output=True,
                                 text=True, timeout=60)
    assert unreachable.returncode == 2
    assert unreachable.stderr.strip().splitlines() == [
        "segstream: error: cannot reach Kafka at 127.0.0.1:1: connection refused"]
