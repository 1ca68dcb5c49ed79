"""Recovery, takeover, memory and disk of a worker holding many customers.

    .venv/bin/python bench/recovery.py restart [--customers 100000] [--skip-cold]
    .venv/bin/python bench/recovery.py takeover [--customers 100000] [--standby 1,0]
        [--session-timeout 15]

``restart``: one worker (6 partitions, RocksDB, ``--clock event``) drains a synthetic
log of two events per customer (a consent update, then a product view, an add to cart
or a purchase), so its table and changelog are real. Then it is restarted four ways
and timed from the process start to *ready*: a probe event waiting on each of the 6
partitions before the start has been consumed (all partitions recovered and
processing). ``warm``: a clean stop (SIGTERM), restart on the same data directory;
``warm after kill -9``: the same after a kill -9 (once the committed offsets reached
the end of the log); ``cold``: a new, empty data directory, so everything comes from
the changelog topic. Each line also gives the changelog records Faust read (from its
"Reading Starts At" and "Highwater" log tables: the offset span, an upper bound), the
customers decoded from the local RocksDB, the worker's resident memory (VmRSS of the
worker and its children) and its data directory's size. ``baseline`` is the first
start on empty topics: what a start costs without any state.

``takeover``: two workers (each their own data directory) drain the same kind of log;
one is killed with kill -9 and a probe is produced to each of its partitions at once;
the figure is the time from the kill to the survivor having consumed every probe,
split at the survivor's first rebalance log line (the group noticing the death, bound
by ``--session-timeout``) into detection and restore.

Every line says the load average when it was taken; the machine's other work moves
the absolute figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throughput import BOOTSTRAP, delete_prefix  # noqa: E402

from streams.client.topics import ensure_topics  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.tools.partitioner import partition_for  # noqa: E402
from tests.kafka_tools import Worker, wait_committed  # noqa: E402

PARTITIONS = 6
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
CONTEXT = {"device": "desktop", "channel": "web", "tz": "Europe/Berlin",
           "geo": {"country": "DE", "city": "Berlin", "lat": 52.52, "lon": 13.4}}
KAFKA_DATA = Path(os.environ.get("SEGSTREAM_CACHE", Path.home() / ".cache" / "segstream"),
                  "kafka", f"run-{BOOTSTRAP.rsplit(':', 1)[-1]}", "data")


def load() -> str:
    return "load " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def second_event(n: int, customer: str, ts: int) -> dict[str, Any]:
    kind = ("product_view", "add_to_cart", "purchase")[n % 3]
    product = f"p-books-{n % 50}"
    properties: dict[str, Any] = {
        "product_view": {"product_id": product, "category": "books", "price": 12.5},
        "add_to_cart": {"product_id": product, "quantity": 1, "price": 12.5,
                        "category": "books"},
        "purchase": {"order_id": f"{customer}-o1", "revenue": 12.5, "currency": "EUR",
                     "items": [{"product_id": product, "quantity": 1, "price": 12.5,
                                "category": "books"}]},
    }[kind]
    return {"event_id": f"{customer}-2", "customer_id": customer, "type": kind,
            "ts": ts, "context": CONTEXT, "properties": properties}


def synthetic_events(customers: int, tag: str) -> Iterator[tuple[bytes, bytes]]:
    """Two events per customer in time order over one day: customer ``n``'s consent
    update at ``n`` steps, its second event ``customers // 2`` steps later."""
    step = max(1, 86_400_000 // (2 * customers))
    half = customers // 2

    def consent(n: int) -> tuple[bytes, bytes]:
        customer = f"{tag}-{n:07d}"
        return customer.encode(), orjson.dumps({
            "event_id": f"{customer}-1", "customer_id": customer, "type": "consent_update",
            "ts": START_MS + n * step, "context": CONTEXT,
            "properties": {"marketing": True, "personalization": True}})

    def second(n: int) -> tuple[bytes, bytes]:
        customer = f"{tag}-{n:07d}"
        return customer.encode(), orjson.dumps(
            second_event(n, customer, START_MS + (n + half) * step + 1))

    for n in range(customers + half):
        if n < customers:
            yield consent(n)
        if n >= half:
            yield second(n - half)


def produce(topic: str, records: Iterator[tuple[bytes, bytes]]) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": BOOTSTRAP, "linger.ms": 50,
                         "partitioner": "murmur2_random", "acks": "all",
                         "batch.size": 1_000_000,
                         "queue.buffering.max.messages": 2_000_000})
    count = 0
    for key, value in records:
        while True:
            try:
                producer.produce(topic, value, key)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 50_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise SystemExit("producing did not finish")
    return count


def probes(tag: str, partitions: set[int]) -> Iterator[tuple[bytes, bytes]]:
    """One new customer's event on each of ``partitions``, late in the log's day."""
    found: set[int] = set()
    n = 0
    while found != partitions:
        customer = f"probe-{tag}-{n}"
        n += 1
        partition = partition_for(customer.encode(), PARTITIONS)
        if partition in partitions and partition not in found:
            found.add(partition)
            yield customer.encode(), orjson.dumps(
                second_event(0, customer, START_MS + 86_400_000 + n))


def rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and its descendants (the refit child), MB."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            pass
        todo += [child for child, parent in parents.items() if parent == current]
    return total


def du_bytes(path: Path) -> int:
    done = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True)
    return int(done.stdout.split()[0]) if done.returncode == 0 else 0


def log_time(line: str) -> float | None:
    """The wall time of a Faust log line ``[2026-12-03 08:50:00,123] ...``."""
    match = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3})", line)
    if match is None:
        return None
    stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
    return stamp + int(match.group(2)) / 1000


def table_rows(text: str, title: str) -> dict[tuple[str, int], int]:
    """The last Faust log table titled ``title``: (topic, partition) -> offset."""
    at = text.rfind(title)
    rows: dict[tuple[str, int], int] = {}
    if at < 0:
        return rows
    topic = ""
    for line in text[at:].splitlines()[1:]:
        cells = [c.strip() for c in re.split(r"[│|┃]", line) if c.strip()]
        if len(cells) == 3 and cells[1].isdigit() and cells[2].lstrip("-").isdigit():
            topic = topic if cells[0] == "〃" else cells[0]
            rows[(topic, int(cells[1]))] = int(cells[2])
        elif rows and not re.match(r"^\s*[│|┃├┝┡┗└╰─┄━+]", line):
            break
    return rows


def restored_records(text: str) -> dict[str, int]:
    """Changelog records read by the last recovery in ``text``, by table (and by
    partition of the customer table: ``p0`` ...)."""
    starts = table_rows(text, "Reading Starts At - Active")
    highs = table_rows(text, "Highwater - Active")
    read: dict[str, int] = {}
    for (topic, partition), high in sorted(highs.items()):
        start = starts.get((topic, partition), -1)
        name = "customers" if "customers" in topic else "models"
        read[name] = read.get(name, 0) + max(0, high - start)
        if name == "customers":
            read[f"p{partition}"] = max(0, high - start)
    return read


class Run:
    """A worker started, timed until every partition consumed its probe."""

    def __init__(self, worker: Worker, source: str, label: str) -> None:
        self.worker, self.source, self.label = worker, source, label

    def start_ready(self, wanted: set[int], timeout: float = 1800) -> dict[str, Any]:
        produce(self.source, probes(uuid.uuid4().hex[:6], wanted))
        log_at = self.worker.log_path.stat().st_size if self.worker.log_path.exists() else 0
        wall0, started = time.time(), time.monotonic()
        self.worker.start(timeout=timeout)
        healthy = time.monotonic() - started
        deadline = started + timeout
        while True:
            parts = self.worker.get("/stats", timeout=60)["partitions"]
            if all(parts.get(str(p), {}).get("consumed", 0) >= 1 for p in wanted):
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"{self.label}: not ready after {timeout}s")
            time.sleep(0.1)
        ready = time.monotonic() - started
        text = self.worker.log_path.read_bytes()[log_at:].decode(errors="replace")
        rebuilt = [line for line in text.splitlines() if "due index rebuilt" in line]
        disk = sum(int(n) for line in rebuilt
                   for n in re.findall(r"(\d+) read from this disk", line))
        ready_line = next((log_time(line) for line in text.splitlines()
                           if "Worker ready" in line), None)
        faust_line = next((log_time(line) for line in text.splitlines()
                           if "[^Worker]: Starting" in line), None)
        assert self.worker.process is not None
        return {"case": self.label, "ready_s": ready, "healthy_s": healthy,
                "faust_starting_log_s": None if faust_line is None else faust_line - wall0,
                "worker_ready_log_s": None if ready_line is None else ready_line - wall0,
                "restored": restored_records(text), "read_from_disk": disk,
                "customers": self.worker.get("/health")["customers"],
                "rss_mb": rss_mb(self.worker.process.pid), "load": load()}


def wait_drained(worker: Worker, events: int, timeout: float = 7200) -> float:
    started = time.monotonic()
    while worker.get("/stats", timeout=60)["totals"]["consumed"] < events:
        if time.monotonic() - started > timeout:
            raise SystemExit("the drain was too slow")
        time.sleep(1)
    return time.monotonic() - started


def topic_bytes(prefix: str, name: str) -> int:
    """The topic's record bytes in the broker's log directory (its ``.log`` segments,
    not the preallocated indexes)."""
    return sum(f.stat().st_size for f in KAFKA_DATA.glob(f"{prefix}{name}-*/*.log"))


def stopped(worker: Worker) -> dict[str, Any]:
    """SIGTERM, timed; the exit code and the log's errors are reported, not asserted
    (a worker that needs more than 30 s is killed: code -9)."""
    at = worker.log_path.stat().st_size
    started = time.monotonic()
    code = worker.stop(timeout=120)
    text = worker.log_path.read_bytes()[at:].decode(errors="replace")
    return {"case": "SIGTERM", "exit_code": code, "stop_s": time.monotonic() - started,
            "errors_logged": sorted({m.group(1)[:120] for m in re.finditer(
                r"\[ERROR\] (.*)", text)}), "load": load()}


def print_result(result: dict[str, Any]) -> None:
    print(orjson.dumps(result).decode(), flush=True)


def restart(args: argparse.Namespace) -> None:
    prefix = f"rb{uuid.uuid4().hex[:6]}-"
    source, group = f"{prefix}interactions", f"{prefix}segstream"
    every = set(range(PARTITIONS))
    tmp = Path(tempfile.mkdtemp(prefix="recovery-", dir=args.tmp))
    common = ("--clock", "event", "--partitions", str(PARTITIONS), "--standby-replicas", "0")
    worker = Worker(BOOTSTRAP, prefix, tmp / "a", *common)
    ensure_topics(Settings(bootstrap=BOOTSTRAP, topic_prefix=prefix, partitions=PARTITIONS))
    try:
        print_result(Run(worker, source, "baseline (empty topics)").start_ready(every))
        t0 = time.monotonic()
        events = produce(source, synthetic_events(args.customers, prefix.rstrip("-")))
        produced = time.monotonic() - t0
        drained = wait_drained(worker, events + PARTITIONS)
        wait_committed(BOOTSTRAP, group, source, timeout=600)
        time.sleep(3)  # the last changelog acknowledgements
        assert worker.process is not None
        print_result({"case": "loaded", "customers": args.customers, "events": events,
                      "produce_s": produced, "drain_s": drained,
                      "events_per_s": events / drained,
                      "rss_mb": rss_mb(worker.process.pid),
                      "health_customers": worker.get("/health")["customers"],
                      "load": load()})
        print_result(stopped(worker))
        sizes = {"case": "sizes", "data_dir_bytes": du_bytes(tmp / "a" / "worker"),
                 "changelog_bytes": topic_bytes(prefix, "segstream-customers-changelog"),
                 "models_changelog_bytes": topic_bytes(prefix, "segstream-models-changelog"),
                 "interactions_bytes": topic_bytes(prefix, "interactions")}
        sizes["data_dir_bytes_per_customer"] = sizes["data_dir_bytes"] / args.customers
        sizes["changelog_bytes_per_customer"] = sizes["changelog_bytes"] / args.customers
        print_result(sizes)

        print_result(Run(worker, source, "warm (after SIGTERM)").start_ready(every))
        wait_committed(BOOTSTRAP, group, source, timeout=600)
        time.sleep(3)
        worker.kill()
        print_result(Run(worker, source, "warm (after kill -9)").start_ready(every))
        print_result(stopped(worker))
        if not args.skip_cold:
            cold = Worker(BOOTSTRAP, prefix, tmp / "cold", *common)
            try:
                print_result(Run(cold, source, "cold (empty data dir)").start_ready(every))
            finally:
                cold.stop()
    finally:
        worker.stop()
        delete_prefix(prefix)
        if args.keep:
            print(f"kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def assigned(worker: Worker) -> set[int]:
    """The partitions of the worker's last rebuild of its due index (its actives)."""
    lines = re.findall(r"due index rebuilt for partitions \[([\d, ]*)\]",
                       worker.log_path.read_text(errors="replace"))
    return {int(p) for p in lines[-1].split(",") if p.strip()} if lines else set()


def takeover(args: argparse.Namespace) -> None:
    for standby in [int(n) for n in args.standby.split(",")]:
        prefix = f"rt{uuid.uuid4().hex[:6]}-"
        source, group = f"{prefix}interactions", f"{prefix}segstream"
        tmp = Path(tempfile.mkdtemp(prefix="takeover-", dir=args.tmp))
        common = ("--clock", "event", "--partitions", str(PARTITIONS), "--standby-replicas",
                  str(standby), "--session-timeout", str(args.session_timeout))
        workers = [Worker(BOOTSTRAP, prefix, tmp / name, *common) for name in ("a", "b")]
        try:
            for worker in workers:
                worker.start(timeout=300)
            events = produce(source, synthetic_events(args.customers, prefix.rstrip("-")))
            started = time.monotonic()
            while sum(w.get("/stats", timeout=60)["totals"]["consumed"]
                      for w in workers) < events:
                time.sleep(1)
            drained = time.monotonic() - started
            wait_committed(BOOTSTRAP, group, source, timeout=600)
            time.sleep(5)  # standbys catch up with the changelog's tail
            victim, survivor = workers
            lost = assigned(victim)
            if not lost or assigned(survivor) & lost:
                raise SystemExit(f"no clean split: {assigned(victim)} / {assigned(survivor)}")
            before = survivor.get("/stats")["partitions"]
            log_at = survivor.log_path.stat().st_size
            assert victim.process is not None
            rss = [rss_mb(w.process.pid) for w in workers if w.process is not None]
            killed_wall, killed = time.time(), time.monotonic()
            victim.kill()
            produce(source, probes(uuid.uuid4().hex[:6], lost))
            while True:
                parts = survivor.get("/stats", timeout=60)["partitions"]
                if all(parts.get(str(p), {}).get("consumed", 0)
                       > before.get(str(p), {}).get("consumed", 0) for p in lost):
                    break
                if time.monotonic() - killed > 900:
                    raise SystemExit("no takeover in 900 s")
                time.sleep(0.05)
            took = time.monotonic() - killed
            text = survivor.log_path.read_bytes()[log_at:].decode(errors="replace")
            noticed = next((log_time(line) for line in text.splitlines()
                            if "Rebalancing" in line or "rebalanc" in line.lower()), None)
            print_result({"case": f"takeover, --standby-replicas {standby}",
                          "customers": args.customers, "events": events,
                          "drain_s": drained, "partitions_lost": sorted(lost),
                          "takeover_s": took,
                          "detected_s": None if noticed is None else noticed - killed_wall,
                          "restored": restored_records(text),
                          "read_from_disk": sum(int(n) for n in re.findall(
                              r"(\d+) read from this disk", text)),
                          "rss_mb_before": rss, "session_timeout": args.session_timeout,
                          "load": load()})
        finally:
            for worker in workers:
                worker.stop()
            delete_prefix(prefix)
            shutil.rmtree(tmp, ignore_errors=True)


def deep_size(value: Any, seen: set[int]) -> int:
    """Bytes of ``value`` and everything it holds that was not counted yet."""
    if id(value) in seen:
        return 0
    seen.add(id(value))
    size = sys.getsizeof(value)
    if isinstance(value, dict):
        size += sum(deep_size(k, seen) + deep_size(v, seen) for k, v in value.items())
    elif isinstance(value, list | tuple | set | frozenset):
        size += sum(deep_size(v, seen) for v in value)
    elif hasattr(value, "__dict__"):
        size += deep_size(vars(value), seen)
    return size


def memory(args: argparse.Namespace) -> None:
    """Offline: the same two events per customer through the processor (6 partitions),
    then each state as the worker holds it after a restart (decoded from its changelog
    value): RSS growth per customer while processing, Python bytes per field of a
    decoded state (``sys.getsizeof``, deep), encoded bytes, decode cost."""
    import gc

    from segments import Engine, Gate, MemoryStore, Processor, Source, load_default
    from segments.codec import decode_state, encode_state
    from segments.state import CustomerState

    processor = Processor(Engine(load_default()), Gate(), MemoryStore(), live=False)
    gc.collect()
    before = rss_mb(os.getpid())
    for n, (key, value) in enumerate(synthetic_events(args.customers, "mem")):
        partition = partition_for(key, PARTITIONS)
        processor.process(value, Source("interactions", partition, n),
                          START_MS + 86_400_000)
    gc.collect()
    grown = rss_mb(os.getpid()) - before
    store = processor.store
    assert isinstance(store, MemoryStore)
    encoded = [encode_state(state) for state in store.data.values()]
    store.data.clear()
    started = time.perf_counter()
    decoded = [decode_state(raw) for raw in encoded]
    decode_us = 1e6 * (time.perf_counter() - started) / len(encoded)
    fields: dict[str, int] = {}
    seen: set[int] = set()
    sample = decoded[:2000]
    for state in sample:
        seen.add(id(state))
        fields["(the object)"] = fields.get("(the object)", 0) + sys.getsizeof(state) + (
            sys.getsizeof(vars(state)) if hasattr(state, "__dict__") else 0)
        for name in CustomerState.__dataclass_fields__:
            fields[name] = fields.get(name, 0) + deep_size(getattr(state, name), seen)
    per = {k: round(v / len(sample)) for k, v in sorted(fields.items(), key=lambda kv: -kv[1])}
    print_result({"case": "memory (offline)", "customers": args.customers,
                  "rss_growth_per_customer_bytes": round(grown * 2**20 / args.customers),
                  "python_bytes_per_customer": sum(per.values()),
                  "encoded_bytes_per_customer": round(sum(map(len, encoded)) / len(encoded)),
                  "decode_us_per_customer": round(decode_us, 1),
                  "python_bytes_by_field": {k: v for k, v in per.items() if v}, "load": load()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tmp", default=None, help="where the data directories go")
    commands = parser.add_subparsers(dest="command", required=True)
    first = commands.add_parser("restart", help="baseline, warm, warm after kill -9, cold")
    first.add_argument("--customers", type=int, default=100_000)
    first.add_argument("--skip-cold", action="store_true")
    first.add_argument("--keep", action="store_true", help="keep the data directories")
    second = commands.add_parser("takeover", help="kill -9 one of two workers")
    second.add_argument("--customers", type=int, default=100_000)
    second.add_argument("--standby", default="1,0", help="--standby-replicas values")
    second.add_argument("--session-timeout", type=float, default=15.0)
    third = commands.add_parser("memory", help="offline: bytes per customer in memory")
    third.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()
    print(f"{args.command}: broker {BOOTSTRAP}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {load()}", flush=True)
    {"restart": restart, "takeover": takeover, "memory": memory}[args.command](args)


if __name__ == "__main__":
    main()
