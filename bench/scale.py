"""How drain throughput grows with workers: 1, 2, ... workers in one group.

    .venv/bin/python bench/scale.py [--workers 1,2,3] [--partitions 6]
        [--events 60000] [--rounds 2] [--store rocksdb|memory]

For each worker count the group is started first on an empty ``interactions`` topic
of ``--partitions`` partitions (every worker with its own data directory), and once
the broker reports it stable with that many members, the bench's simulated log
(``throughput.py``'s) is produced into it. The drain is timed from the first record
any worker consumed to the last (the sum of the workers' ``/stats``), CPU over the
same window summed over every worker and its children. Counts take turns in a rotated
order per round. On one machine the workers share its cores (and the broker's): the
figures say what a second process buys on this box, not on a cluster.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import (  # noqa: E402
    BOOTSTRAP,
    cpu_seconds,
    delete_prefix,
    simulated_log,
    spread,
)

from tests.kafka_tools import Worker  # noqa: E402


def stable_members(group: str) -> int:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        described: dict[str, Any] = admin.describe_groups([group]).get(group) or {}
    finally:
        admin.close()
    if described.get("group_state") != "Stable":
        return 0
    return len(described.get("members") or ())


def drain(workers: int, partitions: int, log: Path, count: int, store: str) -> dict[str, float]:
    prefix = f"ts{uuid.uuid4().hex[:8]}-"
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        group = [Worker(BOOTSTRAP, prefix, Path(tmp) / f"w{i}", "--clock", "event",
                        "--partitions", str(partitions), "--store", store)
                 for i in range(workers)]
        try:
            for worker in group:
                worker.start(timeout=180)
            deadline = time.monotonic() + 120
            while stable_members(f"{prefix}segstream") != workers:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the group of {workers} never became stable")
                time.sleep(0.5)
            pids = [w.process.pid for w in group if w.process is not None]
            start_cpu = sum(cpu_seconds(pid) for pid in pids)
            preload_started = time.monotonic()
            _produce(prefix, log)
            first: tuple[float, int, float] | None = None
            deadline = time.monotonic() + 1800
            while time.monotonic() < deadline:
                consumed = sum(w.get("/stats", timeout=60)["totals"]["consumed"]
                               for w in group)
                now = time.monotonic()
                if consumed and first is None:
                    first = (now, consumed, sum(cpu_seconds(pid) for pid in pids))
                if consumed >= count:
                    assert first is not None
                    cpu = sum(cpu_seconds(pid) for pid in pids)
                    return {"seconds": now - first[0], "events": count - first[1],
                            "cpu": cpu - first[2], "all_cpu": cpu - start_cpu,
                            "since_produce": now - preload_started}
                time.sleep(0.02)
            raise SystemExit(f"{workers} workers drained too slowly")
        finally:
            for worker in group:
                worker.stop()
            delete_prefix(prefix)


def _produce(prefix: str, log: Path) -> None:
    """The log into the group's existing ``interactions`` (made by the workers)."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20,
                         "partitioner": "murmur2_random", "acks": "all",
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000})
    with log.open("rb") as lines:
        for n, line in enumerate(lines, 1):
            value = line.rstrip(b"\n")
            producer.produce(f"{prefix}interactions", value,
                             orjson.loads(value)["customer_id"].encode())
            if n % 50_000 == 0:
                producer.poll(0)
    if producer.flush(60):
        raise SystemExit("producing the log did not finish")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store", choices=("rocksdb", "memory"), default="rocksdb")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers: comma-separated whole numbers, not {args.workers!r}")
    if not counts or min(counts) < 1 or max(counts) > args.partitions:
        parser.error(f"--workers: between 1 and --partitions ({args.partitions})")
    log = simulated_log(args.events)
    count = sum(1 for _ in log.open("rb"))
    print(f"{count:,} events, {args.partitions} partitions, store {args.store}, broker "
          f"{BOOTSTRAP}, {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"CPUs, Python {platform.python_version()}", flush=True)
    results: dict[int, list[dict[str, float]]] = {n: [] for n in counts}
    for round_ in range(args.rounds):
        for n in counts[round_ % len(counts):] + counts[:round_ % len(counts)]:
            result = drain(n, args.partitions, log, count, args.store)
            result["events_per_s"] = result["events"] / result["seconds"]
            result["cpu_us_per_event"] = 1e6 * result["cpu"] / result["events"]
            results[n].append(result)
            print(f"round {round_ + 1} {n} worker(s) {result['events_per_s']:>9,.0f} "
                  f"events/s {result['cpu_us_per_event']:>7,.1f} CPU µs/event", flush=True)
    one = statistics.median(r["events_per_s"] for r in results[counts[0]])
    print(f"\n| workers | events/s (min / median / max) | CPU µs/event (min / median / max)"
          f" | × {counts[0]} worker(s) |\n|---|---|---|---|")
    for n, runs in results.items():
        rates = [r["events_per_s"] for r in runs]
        print(f"| {n} | {spread(rates)} | "
              f"{spread([r['cpu_us_per_event'] for r in runs], 1)} | "
              f"{statistics.median(rates) / one:.2f} |")


if __name__ == "__main__":
    main()
