"""Models are state: killed mid-stream, a worker resumes its models from the checkpoint.

A simulated log (60 customers, 150 days) goes through a real worker in two halves.
After the first half the worker checkpoints each partition's models to the compacted
``segstream-models-changelog`` topic; then it is killed with SIGKILL (no shutdown hook
runs). A new worker must restore every partition's models exactly as checkpointed
(same version counts, not zero), and the outputs of the second half must carry model
versions that continue from there: no cold start.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from segments.definitions import DEFAULT_PATH
from segments.models import parse_model_version
from segments.timefmt import DAY_MS, parse_ts
from streams.tools.simulate import simulate
from tests.kafka_tools import Worker, consume, produce, wait_consumed

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SPLIT = START + 100 * DAY_MS


def label_counts(document: dict[str, Any]) -> dict[str, tuple[int, int]]:
    return {p: (m["propensity"]["labels"], m["churn"]["labels"])
            for p, m in document["partitions"].items()}


def test_models_resume_from_their_checkpoint_after_a_kill(bootstrap: str, prefix: str,
                                                           tmp_path: Path) -> None:
    definitions = tmp_path / "definitions.toml"
    definitions.write_text(DEFAULT_PATH.read_text()
                           .replace("model_warm_after = 400", "model_warm_after = 5")
                           .replace("btyd_min_repeat_buyers = 30", "btyd_min_repeat_buyers = 5"))
    events = list(simulate(customers=60, days=150, seed=3, start=START))
    first = [(e["customer_id"], orjson.dumps(e)) for e in events if e["ts"] < SPLIT]
    second = [(e["customer_id"], orjson.dumps(e)) for e in events if e["ts"] >= SPLIT]
    args = ("--definitions", str(definitions), "--clock", "event", "--partitions", "3",
            "--model-checkpoint-updates", "1000000", "--model-checkpoint-seconds", "1")

    worker = Worker(bootstrap, prefix, tmp_path / "a", *args).start()
    try:
        produce(bootstrap, f"{prefix}interactions", first)
        wait_consumed(worker, len(first))
        before = label_counts(worker.get("/models"))
        assert len(before) == 3 and all(prop > 0 for prop, _ in before.values()), before
        time.sleep(3.0)  # a checkpoint per partition: 1 s after the last update
        assert label_counts(worker.get("/models")) == before  # nothing learnt since
        snapshots = consume(bootstrap, [f"{prefix}segstream-models-changelog"], count=3,
                            timeout=30, settle=1.0)
        assert {key for _, key, _ in snapshots} == {"p0", "p1", "p2"}
    finally:
        worker.kill()  # SIGKILL: no shutdown checkpoint

    restarted = Worker(bootstrap, prefix, tmp_path / "b", *args).start()
    try:
        # the killed member holds its partitions until its session times out (15 s)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and \
                len(label_counts(restarted.get("/models"))) < 3:
            time.sleep(0.5)
        assert label_counts(restarted.get("/models")) == before  # restored, not cold
        assert "restored from their checkpoint" in restarted.log()

        produce(bootstrap, f"{prefix}interactions", second)
        wait_consumed(restarted, len(second))  # its own count: it starts after the first half
        after = label_counts(restarted.get("/models"))
        assert all(after[p][0] > before[p][0] for p in before), (before, after)
    finally:
        restarted.stop()

    changes = consume(bootstrap, [f"{prefix}segment-changes"], count=1, timeout=30,
                      settle=3.0)
    versions = []
    for _, _, raw in changes:
        value = orjson.loads(raw)
        if value.get("model_version") and parse_ts(value["at"]) >= SPLIT:
            partition, counts = parse_model_version(value["model_version"])
            versions.append((partition, counts))
    assert versions, "no output of the second half used a model"
    for partition, counts in versions:  # every score after the restart builds on the old
        if "propensity" in counts:
            assert counts["propensity"] >= before[str(partition)][0], (partition, counts)
