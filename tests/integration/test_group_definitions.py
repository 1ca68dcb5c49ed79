"""A worker started with another definitions file than the group's running workers is
refused before it joins (one line, exit code 2), unless a rolling change is declared
with ``--allow-mixed-definitions``."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from kafka import KafkaAdminClient

from segments.definitions import DEFAULT_PATH, parse_definitions
from streams.client.group import version_of
from tests.kafka_tools import Worker, segstream_command


def members(bootstrap: str, group: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        described = admin.describe_groups([group]).get(group) or {}
        return [str(m["client_id"]) for m in described.get("members") or ()]
    finally:
        admin.close()


def test_a_worker_with_other_definitions_is_refused_unless_a_rollout_is_declared(
        bootstrap: str, prefix: str, tmp_path: Path) -> None:
    shipped = parse_definitions(DEFAULT_PATH.read_text()).version
    changed = tmp_path / "changed.toml"
    changed.write_text(DEFAULT_PATH.read_text() + '\n[segments.night_owl]\n'
                       'when = "purchases_total >= 7"\n')
    other = parse_definitions(changed.read_text()).version
    assert other != shipped
    group = f"{prefix}segstream"
    first = Worker(bootstrap, prefix, tmp_path / "a").start()
    try:
        deadline = time.monotonic() + 60
        while version_of(next(iter(members(bootstrap, group)), "")) != shipped:
            assert time.monotonic() < deadline, members(bootstrap, group)
            time.sleep(0.5)
        base = [*segstream_command(), "worker", "--bootstrap", bootstrap, "--topic-prefix",
                prefix, "--definitions", str(changed), "--web-port", "0"]
        refused = subprocess.run([*base, "--data-dir", str(tmp_path / "b")],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"segstream: error: the worker group {group} runs definitions {shipped} "
            f"(1 worker on 127.0.0.1), but {changed} gives {other}: start every worker "
            "with the same file, or pass --allow-mixed-definitions while rolling a new "
            "one out"]
        rolling = Worker(bootstrap, prefix, tmp_path / "c", "--definitions", str(changed),
                         "--allow-mixed-definitions").start()
        try:
            assert rolling.get("/health")["definitions_version"] == other
        finally:
            rolling.stop()
    finally:
        first.stop()
