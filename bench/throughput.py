"""Drain throughput side by side: the client's floor, Faust, segstream, Quix Streams.

    .venv/bin/python bench/throughput.py [--rounds 3] [--events 200000] [--quix]
        [--only aiokafka,faust,worker,worker-memory,worker-no-models,worker-exactly-once,quix]
        [--offline]
        [--out r.json]

Every system drains the same pre-loaded topic (3 partitions, keyed by customer id
with Kafka's murmur2, the events of ``segstream simulate --customers 5000 --days 14
--seed 1``, cut to ``--events``) on the local broker (``SEGSTREAM_BOOTSTRAP``), each
from a fresh topic and consumer group, so nothing is shared but the machine:

- ``aiokafka``: a bare aiokafka consumer loop that decodes each value with orjson,
  the client's floor;
- ``faust``: a Faust agent that decodes and counts, Faust's own per-record path;
- ``worker`` / ``worker-no-models``: ``segstream worker`` with the default definitions,
  the online models on / off (``--no-models``), event-time clock, its tables in
  RocksDB (the default store);
- ``worker-memory``: the same with ``--store memory``, Faust's in-memory tables;
- ``worker-exactly-once``: ``worker`` with ``--guarantee exactly-once``: a Kafka
  transaction per batch of each partition (outputs, changelog, offsets), the cost
  of exactly-once against ``worker`` (at-least-once) in the same run;
- ``worker-baseline`` (with ``--baseline TREE``): the worker of another checkout, for
  before/after figures from one run;
- ``quix`` (with ``--quix``): Quix Streams 3.28 counting per key in its RocksDB state,
  installed by uv into its own environment (``.bench-venvs/quix``) on first use.

A drain is timed from its first record to its last (start-up, group join and recovery
are outside), and its CPU over the same window (every thread and child process:
the worker's refit process too). The systems take turns, in a rotated order per
round; the summary gives events/s and CPU µs/event (min / median / max) and each
system's ratio to Faust's pass-through agent, measured in the same run. With
``--offline`` it also times ``segstream replay --offline`` (the whole command, start-up
included) on the same log and on Online Retail II (``SEGSTREAM_DATA``).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from tests.kafka_tools import Worker, segstream_command  # noqa: E402

BOOTSTRAP = os.environ.get("SEGSTREAM_BOOTSTRAP", "127.0.0.1:9092")
PARTITIONS = 3
SYSTEMS = ("aiokafka", "faust", "worker", "worker-memory", "worker-no-models",
           "worker-exactly-once", "worker-baseline", "quix")
QUIX_VERSION = "3.28.1"
CACHE = ROOT / ".bench-cache"

# The drains that run in a child process: each reads ``count`` records of ``topic``,
# then prints {"first": wall s, "last": wall s, "cpu": CPU s between them}.
REPORT = """
import time, orjson
def mark():
    return time.time(), time.process_time()
def report(first):
    last = mark()
    marks = {"first": first[0], "last": last[0], "cpu": last[1] - first[1]}
    print(orjson.dumps(marks).decode(), flush=True)
"""
AIOKAFKA_DRAIN = """
import asyncio, sys, time, orjson
from aiokafka import AIOKafkaConsumer
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
async def main():
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic,
                                auto_offset_reset="earliest", enable_auto_commit=True)
    await consumer.start()
    n, first = 0, None
    while n < count:
        batches = await consumer.getmany(timeout_ms=500)
        if batches and first is None:
            first = mark()
        for records in batches.values():
            for record in records:
                orjson.loads(record.value)
            n += len(records)
    report(first)
    await consumer.stop()
asyncio.run(main())
"""

FAUST_DRAIN = """
import os, sys, time, faust, orjson
bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
app = faust.App(topic + "-faust", broker="kafka://" + bootstrap, store="memory://",
                web_enabled=False, consumer_auto_offset_reset="earliest",
                topic_partitions=3, datadir=sys.argv[4])
source = app.topic(topic, key_serializer="raw", value_serializer="raw")
state = {"n": 0, "first": None}
@app.agent(source)
async def drain(stream):
    async for value in stream:
        if state["first"] is None:
            state["first"] = mark()
        orjson.loads(value)
        state["n"] += 1
        if state["n"] == count:
            report(state["first"])
            os._exit(0)
faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
"""

QUIX_DRAIN = """
import sys, time, orjson
from quixstreams import Application
bootstrap, topic, count, state_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
app = Application(broker_address=bootstrap, consumer_group=topic + "-quix",
                  auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING")
marks = {"n": 0, "first": None}
def count_per_key(value, state):
    state.set("n", state.get("n", 0) + 1)
def progress(value):
    if marks["first"] is None:
        marks["first"] = mark()
    marks["n"] += 1
    if marks["n"] == count:
        report(marks["first"])
        app.stop()
sdf = app.dataframe(app.topic(topic, value_deserializer="json"))
sdf = sdf.update(count_per_key, stateful=True)
sdf = sdf.update(progress)
app.run()
"""


def simulated_log(events: int) -> Path:
    """The bench's event log, made once and kept in ``.bench-cache``."""
    CACHE.mkdir(exist_ok=True)
    full = CACHE / "sim-5000-14-1.jsonl"
    if not full.exists():
        subprocess.run([*segstream_command(), "simulate", "--customers", "5000",
                        "--days", "14", "--seed", "1", "--out", str(full)], check=True)
    cut = CACHE / f"sim-5000-14-1-{events}.jsonl"
    if not cut.exists():
        with full.open("rb") as source, cut.open("wb") as out:
            for n, line in enumerate(source):
                if n == events:
                    break
                out.write(line)
    return cut


def preload(topic: str, log: Path, partitions: int = PARTITIONS) -> int:
    """Create ``topic`` and produce the log into it, keyed by customer id."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    for future in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 20,
                         "partitioner": "murmur2_random", "acks": "all",
                         "batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000})
    n = 0
    with log.open("rb") as lines:
        for line in lines:
            value = line.rstrip(b"\n")
            producer.produce(topic, value, orjson.loads(value)["customer_id"].encode())
            n += 1
            if n % 50_000 == 0:
                producer.poll(0)
    if producer.flush(60):
        raise SystemExit(f"preload of {topic} did not finish")
    return n


def cpu_seconds(pid: int) -> float:
    """CPU of a process and its children (threads included), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += [child for child, parent in parents.items() if parent == current]
    return total


def drain_child(system: str, topic: str, count: int, work: Path, python: str) -> dict[str, float]:
    script = {"aiokafka": AIOKAFKA_DRAIN, "faust": FAUST_DRAIN, "quix": QUIX_DRAIN}[system]
    done = subprocess.run([python, "-c", REPORT + script, BOOTSTRAP, topic, str(count), str(work)],
                          capture_output=True, text=True, timeout=1800, cwd=work)
    # Faust's worker logs what a child prints: find the marks wherever they went
    found = re.findall(r'\{"first":[^}]*\}', done.stdout + done.stderr)
    if not found:
        raise SystemExit(f"{system} drain failed ({done.returncode}):\n{done.stderr[-3000:]}")
    marks = orjson.loads(found[-1])
    return {"seconds": marks["last"] - marks["first"], "cpu": marks["cpu"]}


def drain_worker(prefix: str, count: int, work: Path, models: bool,
                 profile: Path | None = None, tree: Path | None = None,
                 store: str | None = None, guarantee: str | None = None
                 ) -> dict[str, float]:
    extra = ["--clock", "event", *([] if models else ["--no-models"]),
             *([] if store is None else ["--store", store]),
             *([] if guarantee is None else ["--guarantee", guarantee])]
    env = None if tree is None else {"PYTHONPATH": str(tree)}
    worker = Worker(BOOTSTRAP, prefix, work, *extra, env=env).start(timeout=180)
    assert worker.process is not None
    spy: subprocess.Popen[bytes] | None = None
    try:
        first: tuple[float, int, float] | None = None
        deadline = time.monotonic() + 1800
        longest, previous = 0.0, time.monotonic()
        while time.monotonic() < deadline:
            try:
                consumed = worker.get("/stats", timeout=60)["totals"]["consumed"]
            except OSError as exc:
                raise SystemExit(f"no /stats ({exc}):\n{worker.log()}") from exc
            now, cpu = time.monotonic(), cpu_seconds(worker.process.pid)
            longest, previous = max(longest, now - previous), now
            if consumed and first is None:
                first = (now, consumed, cpu)
                if profile is not None:  # py-spy (the bench extra) over the drain only
                    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")),
                                            "record", "--pid", str(worker.process.pid),
                                            "--rate", "200", "--format", "raw",
                                            "--idle", "--threads",
                                            "--output", str(profile), "--nonblocking"],
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
            if consumed >= count:
                assert first is not None
                return {"seconds": now - first[0], "cpu": cpu - first[2],
                        "events": count - first[1], "longest_stats_wait": longest}
            time.sleep(0.02)
        raise SystemExit(f"worker drained too slowly:\n{worker.log()}")
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        worker.stop()


def quix_python() -> str:
    venv = ROOT / ".bench-venvs" / "quix"
    python = venv / "bin" / "python"
    if not python.exists():
        uv = next(ROOT.glob(".tools/uv-*/bin/uv"), None)
        if uv is None:
            raise SystemExit("no uv in .tools: run make venv first")
        subprocess.run([str(uv), "venv", "--quiet", "--python", sys.executable, str(venv)],
                       check=True)
        subprocess.run([str(uv), "pip", "install", "--quiet", "--python", str(python),
                        f"quixstreams=={QUIX_VERSION}", "orjson"], check=True)
    return str(python)


def run_once(system: str, log: Path, count: int, profile: Path | None = None,
             baseline: Path | None = None) -> dict[str, float]:
    prefix = f"tp{uuid.uuid4().hex[:8]}-"
    topic = f"{prefix}interactions"
    preload(topic, log)
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        work = Path(tmp)
        if system.startswith("worker"):
            result = drain_worker(prefix, count, work,
                                  models=system != "worker-no-models", profile=profile,
                                  tree=baseline if system == "worker-baseline" else None,
                                  store="memory" if system == "worker-memory" else None,
                                  guarantee=("exactly-once" if system == "worker-exactly-once"
                                             else None))
        else:
            python = quix_python() if system == "quix" else sys.executable
            result = drain_child(system, topic, count, work, python)
    result.setdefault("events", count)
    result["events_per_s"] = result["events"] / result["seconds"]
    result["cpu_us_per_event"] = 1e6 * result["cpu"] / result["events"]
    delete_prefix(prefix)
    return result


def delete_prefix(prefix: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(prefix)
             or name.startswith(f"{prefix}interactions-")]
    if names:
        for future in admin.delete_topics(names).values():
            future.exception(timeout=30)


def offline_runs(log: Path) -> list[dict[str, Any]]:
    runs = []
    data = Path(os.environ.get("SEGSTREAM_DATA", ROOT.parent / "shared" / "data"))
    retail = CACHE / "online-retail-ii.jsonl"
    source = data / "online-retail-ii" / "online_retail_ii.parquet"
    if not retail.exists() and source.exists():
        subprocess.run([*segstream_command(), "import", "online-retail", str(source),
                        "--out", str(retail)], check=True, capture_output=True)
    for name, path in (("simulated log", log), ("Online Retail II", retail)):
        if not path.exists():
            print(f"offline {name}: {path} not found, not timed", file=sys.stderr)
            continue
        events = sum(1 for _ in path.open("rb"))
        started = time.perf_counter()
        subprocess.run([*segstream_command(), "replay", "--offline", str(path),
                        "--out", os.devnull], check=True)
        seconds = time.perf_counter() - started
        runs.append({"log": name, "events": events, "seconds": seconds,
                     "events_per_s": events / seconds})
    return runs


def spread(values: list[float], digits: int = 0) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return " / ".join(f"{v:,.{digits}f}" for v in (low, mid, high))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--quix", action="store_true", help="also Quix Streams (own venv)")
    parser.add_argument("--only", default="", help="comma-separated systems")
    parser.add_argument("--offline", action="store_true", help="also time replay --offline")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--baseline", type=Path, metavar="TREE",
                        help="also drain with the worker of another checkout (e.g. a git "
                        "worktree of an older commit), as system worker-baseline")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record each worker drain with py-spy into DIR (raw format; "
                        "bench/profile_summary.py summarises one; costs the worker ~5%%)")
    args = parser.parse_args()
    systems = [s for s in SYSTEMS if (s != "quix" or args.quix)
               and (s != "worker-baseline" or args.baseline)]
    if args.only:
        wanted = args.only.split(",")
        unknown = set(wanted) - set(SYSTEMS)
        if unknown:
            parser.error(f"--only: unknown system {sorted(unknown)[0]!r}; one of {SYSTEMS}")
        systems = [s for s in SYSTEMS if s in wanted]
    log = simulated_log(args.events)
    count = sum(1 for _ in log.open("rb"))
    print(f"{count:,} events, {PARTITIONS} partitions, broker {BOOTSTRAP}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}", flush=True)
    results: dict[str, list[dict[str, float]]] = {s: [] for s in systems}
    for round_ in range(args.rounds):
        order = systems[round_ % len(systems):] + systems[:round_ % len(systems)]
        for system in order:
            profile = None
            if args.profile is not None and system.startswith("worker"):
                args.profile.mkdir(parents=True, exist_ok=True)
                profile = args.profile / f"{system}-{round_ + 1}.txt"
            result = run_once(system, log, count, profile, args.baseline)
            results[system].append(result)
            stall = result.get("longest_stats_wait")
            print(f"round {round_ + 1} {system:<17} {result['events_per_s']:>9,.0f} events/s "
                  f"{result['cpu_us_per_event']:>7,.1f} CPU µs/event"
                  + (f" (longest wait for /stats {stall:.2f} s)" if stall else ""), flush=True)
    faust = statistics.median(r["events_per_s"] for r in results.get("faust", [])) \
        if results.get("faust") else None
    print("\n| system | events/s (min / median / max) | CPU µs/event (min / median / max) "
          "| × Faust pass-through |\n|---|---|---|---|")
    for system, runs in results.items():
        rates = [r["events_per_s"] for r in runs]
        ratio = f"{statistics.median(rates) / faust:.2f}" if faust else "-"
        print(f"| {system} | {spread(rates)} | "
              f"{spread([r['cpu_us_per_event'] for r in runs], 1)} | {ratio} |")
    offline = offline_runs(log) if args.offline else []
    for run in offline:
        print(f"replay --offline, {run['log']}: {run['events']:,} events in "
              f"{run['seconds']:.1f} s = {run['events_per_s']:,.0f} events/s")
    if args.out:
        args.out.write_bytes(orjson.dumps({"events": count, "runs": results,
                                           "offline": offline}, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
