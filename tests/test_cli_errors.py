"""Every command meets a user error with one line on stderr and exit code 2, never a
traceback: missing files, bad formats, bad flags, an unreachable broker or worker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.kafka_tools import segstream_command

NOWHERE = "127.0.0.1:1"  # nothing listens there


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    log = root / "events.jsonl"
    log.write_text('{"event_id":"e1","customer_id":"c1","type":"login","ts":1767225600000}\n')
    bad_toml = root / "bad.toml"
    bad_toml.write_text('[segments.x]\nwhen = "purchases_totl > 1"\n')
    csv = root / "not.parquet"
    csv.write_text("a,b\n1,2\n")
    bad_record = root / "outputs.jsonl"
    bad_record.write_text('{"schema": "segment-change/1-0-0", "customer_id": "c1"}\n')
    kafka = root / "client.properties"
    kafka.write_text("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n")
    return {"log": log, "bad_toml": bad_toml, "csv": csv, "missing": root / "missing.jsonl",
            "kafka": kafka, "bad_record": bad_record}


CASES = [
    ("replay missing file", ["replay", "{missing}", "--bootstrap", NOWHERE], "no such file"),
    ("replay offline missing file", ["replay", "--offline", "{missing}"], "no such file"),
    ("replay unreachable broker", ["replay", "{log}", "--bootstrap", NOWHERE],
     "cannot reach Kafka at 127.0.0.1:1"),
    ("replay bad speed", ["replay", "{log}", "--speed", "fast"], "--speed"),
    ("replay offline with a broker flag", ["replay", "--offline", "{log}", "--rate", "5"],
     "applies only to a replay into Kafka"),
    ("replay bad definitions", ["replay", "--offline", "{log}", "--definitions",
                                "{bad_toml}"], "unknown feature 'purchases_totl'"),
    ("import unknown format", ["import", "nope", "{log}"], "invalid choice: 'nope'"),
    ("import missing file", ["import", "online-retail", "{missing}"], "no such file"),
    ("import wrong format", ["import", "online-retail", "{csv}"], "not a Parquet file"),
    ("simulate bad days", ["simulate", "--days", "0"], "--days must be positive"),
    ("simulate bad customers", ["simulate", "--customers", "many"], "--customers"),
    ("lift missing file", ["lift", "--outputs", "{missing}", "--events", "{log}"],
     "no such file"),
    ("lift bad window", ["lift", "--outputs", "{log}", "--events", "{log}", "--window",
                         "soon"], "--window"),
    ("report without input", ["report", "--out", "r.html"],
     "give --events FILE (to replay them) or --outputs FILE"),
    ("report without out", ["report", "--events", "{log}"],
     "the following arguments are required: --out"),
    ("report missing file", ["report", "--events", "{missing}", "--out", "r.html"],
     "no such file"),
    ("report compare without events", ["report", "--outputs", "{log}", "--compare",
                                       "{bad_toml}", "--out", "r.html"],
     "--compare replays the events: give --events"),
    ("report bad definitions", ["report", "--events", "{log}", "--definitions",
                                "{bad_toml}", "--out", "r.html"],
     "unknown feature 'purchases_totl'"),
    ("report bad compare", ["report", "--events", "{log}", "--compare", "{missing}",
                            "--out", "r.html"], "no such definitions file"),
    ("report out in no directory", ["report", "--events", "{log}", "--out",
                                    "{missing}/r.html"], "not a file in an existing directory"),
    ("report bad outputs record", ["report", "--outputs", "{bad_record}", "--out", "r.html"],
     "outputs.jsonl:1: a segment-change/1-0-0 record without 'segment'"),
    ("report outputs with replay flags", ["report", "--outputs", "{log}", "--until",
                                          "2026-02-01T00:00:00Z", "--jobs", "2",
                                          "--out", "r.html"],
     "--until, --jobs apply to a replay; --outputs records are read as they were written"),
    ("report bad window", ["report", "--events", "{log}", "--window", "soon", "--out",
                           "r.html"], "--window"),
    ("tail unknown topic", ["tail", "orders"], "unknown topic 'orders'"),
    ("tail unreachable broker", ["tail", "micro-moments", "--bootstrap", NOWHERE],
     "cannot reach Kafka at 127.0.0.1:1"),
    ("profile unreachable worker", ["profile", "c1", "--worker", "http://127.0.0.1:1"],
     "cannot reach the worker at http://127.0.0.1:1"),
    ("topics create unreachable broker", ["topics", "create", "--bootstrap", NOWHERE],
     "cannot reach Kafka at 127.0.0.1:1"),
    ("topics describe unreachable broker", ["topics", "describe", "--bootstrap", NOWHERE],
     "cannot reach Kafka at 127.0.0.1:1"),
    ("worker bad definitions", ["worker", "--definitions", "{bad_toml}", "--bootstrap",
                                NOWHERE], "bad.toml:2: [segments.x] when: unknown feature"),
    ("worker missing definitions", ["worker", "--definitions", "{missing}"],
     "no such definitions file"),
    ("worker bad session timeout", ["worker", "--session-timeout", "0"],
     "--session-timeout: must be a number of seconds above 0, not '0'"),
    ("worker bad standby replicas", ["worker", "--standby-replicas", "-1"],
     "--standby-replicas: must be a whole number of at least 0, not '-1'"),
    ("worker bad group instance id", ["worker", "--group-instance-id", "pod 1"],
     "--group-instance-id: must be 1-200 letters, digits, '.', '_' or '-', not 'pod 1'"),
    ("worker empty group instance id", ["worker", "--group-instance-id", ""],
     "--group-instance-id: must be 1-200 letters, digits"),
    ("worker bad store", ["worker", "--store", "disk"],
     "--store: must be one of rocksdb, memory, not 'disk'"),
    ("worker bad guarantee", ["worker", "--guarantee", "exactly_once"],
     "--guarantee: must be one of at-least-once, exactly-once, not 'exactly_once'"),
    ("tail bad isolation", ["tail", "micro-moments", "--isolation", "committed"],
     "--isolation: invalid choice: 'committed'"),
    ("worker data dir is a file", ["worker", "--data-dir", "{log}", "--bootstrap", NOWHERE],
     "cannot use --data-dir"),
    ("worker missing web cert", ["worker", "--web-cert", "{missing}"],
     "cannot read --web-cert"),
    ("worker web key without cert", ["worker", "--web-key", "{log}"],
     "--web-key needs --web-cert"),
    ("worker missing web token file", ["worker", "--web-token-file", "{missing}"],
     "cannot read --web-token-file"),
    ("profile missing web ca", ["profile", "c1", "--worker", "https://127.0.0.1:1",
                                "--web-ca", "{missing}"], "cannot read --web-ca"),
    ("topics missing kafka config", ["topics", "create", "--kafka-config", "{missing}"],
     "missing.jsonl: no such Kafka client configuration file"),
    ("simulate bad kafka config", ["simulate", "--kafka", "--kafka-config", "{kafka}"],
     "client.properties:1: security.protocol: needs a user name and password"),
    ("unknown command", ["frobnicate"], "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize(("name", "argv", "message"), CASES, ids=[c[0] for c in CASES])
def test_user_error_is_one_line_and_exit_2(name: str, argv: list[str], message: str,
                                           files: dict[str, Path]) -> None:
    args = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    done = subprocess.run([*segstream_command(), *args], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("segstream: error: "), lines[0]
    assert message in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_a_data_dir_in_use_by_another_worker_is_one_line(tmp_path: Path) -> None:
    from streams.cli.worker import lock_data_dir

    held = lock_data_dir(tmp_path / "data")  # this process is the other worker
    try:
        done = subprocess.run([*segstream_command(), "worker", "--data-dir",
                               str(tmp_path / "data"), "--bootstrap", NOWHERE],
                              capture_output=True, text=True, timeout=60)
    finally:
        held.close()
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"segstream: error: --data-dir {tmp_path / 'data'} is in use by another worker "
        f"(pid {os.getpid()}): give each worker its own"]
