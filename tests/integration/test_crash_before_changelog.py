"""A worker that dies after a batch's outputs were acknowledged and before its changelog
records were sent loses nothing: at-least-once, with repeats identical.

The worker is stopped at exactly that point by its fault hook
(``SEGSTREAM_FAULT_EXIT_BEFORE_CHANGELOG``, ``streams/app.py``): ``os._exit`` the first
time changelog records are about to leave, which no commit can precede (a commit waits
for those records). Had the changelog gone first, as it did before 2026-12-02, a crash
between the two restored states that already held the batch's event ids, the
redelivered events were dropped as duplicates and their outputs never appeared.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from segments.definitions import DEFAULT_PATH, parse_definitions
from streams.app import FAULT_EXIT_BEFORE_CHANGELOG, FAULT_EXIT_CODE
from streams.client.topics import ensure_topics
from streams.settings import Settings
from streams.tools.offline import replay_offline
from tests.integration.test_worker_matches_offline import topic_of
from tests.kafka_tools import (
    RECORD_TOPICS,
    START,
    Worker,
    assert_valid_outputs,
    consume,
    produce,
    record_id,
    wait_consumed,
    write_simulated_log,
)


def test_a_crash_between_outputs_and_changelog_repeats_outputs_and_loses_none(
        bootstrap: str, prefix: str, tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=80, days=60, seed=41, start=START)
    out = io.BytesIO()
    replay_offline([log_path], parse_definitions(DEFAULT_PATH.read_text()), out, partitions=3)
    offline = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert offline and all("change_id" in v or "trigger_id" in v for v in offline)

    # the topics first: produced into a topic the broker creates, the log would land
    # on another partition count than the offline replay's
    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=3))
    produce(bootstrap, f"{prefix}interactions", lines)
    args = (bootstrap, prefix, tmp_path, "--clock", "event", "--partitions", "3")
    doomed = Worker(*args, env={FAULT_EXIT_BEFORE_CHANGELOG: "1"}).start()
    assert doomed.process is not None
    assert doomed.process.wait(120) == FAULT_EXIT_CODE, doomed.log()
    topics = [f"{prefix}{name}" for name in RECORD_TOPICS]
    before = consume(bootstrap, topics, count=1, timeout=30, settle=2.0)
    assert before, "the worker died before any output was acknowledged"
    assert len(before) < len(offline)  # it died mid-stream

    worker = Worker(*args).start()
    try:
        wait_consumed(worker, len(lines))
        records = consume(bootstrap, topics, count=len(offline), timeout=120, settle=3.0)
    finally:
        worker.stop()

    assert_valid_outputs(records)
    values = [orjson.loads(raw) for _, _, raw in records]
    seen: dict[str, bytes] = {}
    first: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for value in values:
        raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        earlier = seen.setdefault(record_id(value), raw)
        assert earlier == raw, f"a repeat differs from the first: {value}"
        if earlier is raw:
            first[(value["customer_id"], topic_of(value))].append(value)
    assert len(values) > len(seen)  # the batch before the crash was produced twice
    assert set(seen) == {record_id(v) for v in offline}
    expected: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for value in offline:
        expected[(value["customer_id"], topic_of(value))].append(value)
    # per customer and topic, in order (a key's records share one partition)
    assert dict(first) == dict(expected)
