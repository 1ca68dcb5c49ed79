"""End-to-end micro-moment trigger latency through a real broker, at a steady rate.

    SEGSTREAM_BOOTSTRAP=127.0.0.1:9092 .venv/bin/python bench/trigger_latency.py \\
        --rate 1000 --seconds 60 [--customers 2000] [--out result.json]

What it does:

1. Starts ``segstream worker`` (``tests.kafka_tools.Worker``) with the default
   definitions, ``--clock live``, 3 partitions and a fresh topic prefix
   (``lat<random>-``), and waits for ``/health``.
2. Warm-up: one ``consent_update`` (marketing and personalization granted) per
   customer, with a context time zone ``Etc/GMT±N`` chosen so that the customer's
   local hour is about 12 (``Etc/GMT+N`` is UTC-N): no quiet-hours or consent policy
   can hold the triggers. Waits until the worker consumed them all, then ~3 s.
3. Assigns a measuring consumer to every partition of ``<prefix>micro-moments`` and
   ``<prefix>micro-moments-suppressed`` and seeks to their end, before any load.
4. Load: one producer thread on an absolute schedule (event i is due at
   ``start + i / rate``: steady, never bursty; if it falls behind it sends at once and
   the lag is reported). About 20 % of the events should trigger exactly one moment:
   ``search`` "running shoes" (i_want_to_know), ``store_locator`` (i_want_to_go),
   ``content_view`` kind ``how_to`` (i_want_to_do), ``add_to_cart`` (i_want_to_buy).
   The k-th triggering event goes to customer ``k % C`` with moment ``(c + k // C) % 4``
   so a customer triggers each moment at most once and at most 3 times in all (the
   default ``frequency_cap_per_day``); the same customer triggers again only after C
   other triggers. If ``--customers`` is too small for that, it is raised (reported).
   The rest are ``page_view`` / ``product_view`` of random warmed customers. Every event
   has a unique ``event_id`` and ``ts`` = wall clock (epoch ms) at send time.
   A librdkafka producer (``confluent-kafka``, the ``bench`` extra), key = customer id,
   ``linger.ms=0``, ``acks=1`` by default (``--acks all`` to wait for the ISR too; one
   broker here, so it changes little). Not kafka-python: its producer took ~0.6 of a
   core at 1000/s on a 2-core host, CPU the worker under test then queued for;
   librdkafka takes a few percent.
5. The consumer thread (kafka-python, ``fetch_max_wait_ms=100``: a fetch returns as
   soon as a record arrives) matches each trigger's
   ``cause.event_id`` to the event's send instant. Both instants are
   ``time.perf_counter()`` of this one process (one monotonic clock), so latency =
   receive - send, from just before ``producer.produce()`` to the poll that returned the
   trigger. The trigger record's Kafka timestamp (CreateTime, set by the worker's
   producer) splits it into upstream (send -> worker produces the trigger: our producer,
   broker, worker fetch, processing) and downstream (worker producer linger/acks,
   broker, our fetch); those two are wall-clock ms, so 1 ms resolution.
6. Waits up to 10 s after the last send for every expected trigger (received, or on
   the suppressed topic), reads ``/stats``, stops the worker, deletes the prefix's
   topics (``--keep-topics`` keeps them), prints one summary block and writes JSON to
   ``--out`` if given.

Also reported: the worker's backlog (events sent minus consumed, sampled each second
from ``/stats``), and the CPU used during the load by the worker, the local broker,
this process and everything else (``/proc``), with the worker's CPU per event. 5 % of
customers are in the default holdout: their triggers arrive on the suppressed topic
and are counted by reason, not as missing.

Also printed: the three 100 ms windows of send time with the slowest triggers, to
find a stall in the worker's log.

Other flags: ``--acks``, ``--linger-ms`` (of the load producer), ``--fetch-wait-ms``
(of the measuring consumer), ``--seed``,
``--worker-arg`` (passed to ``segstream worker``), ``--worker-env NAME=VALUE`` (e.g.
``PYTHONPATH=/tmp/copy`` to measure a modified copy of ``streams/`` without touching
the tree), ``--worker-log PATH``, ``--pin`` (worker on the last CPU, this process on
the others), ``--switch-interval`` (of this process, default 0.5 ms so the consumer
thread's wake-up does not wait for another thread's 5 ms GIL slice).

Figures depend on the machine and on what else runs on it (the broker and this load
generator share it with the worker): report them with the command and the machine
and CPU lines of the summary. Measured on a 2-vCPU Xeon VM (Python 3.11, Kafka 3.9 on
the same machine), 2026-11-25: 1000/s p50 8.4-14.7, p99 22-41 ms over 12 runs of
30-60 s on a warm broker (72 ms in the first run after the broker started); 200/s
p50 4.4, p99 8.7 ms. ``bench/README.md`` has the table and
what the tail was made of.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import random
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from confluent_kafka import KafkaError  # noqa: E402
from confluent_kafka import Producer as LoadProducer  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402

from segments.records import INTERACTIONS, MICRO_MOMENTS, MICRO_MOMENTS_SUPPRESSED  # noqa: E402
from tests.kafka_tools import Worker  # noqa: E402

MOMENTS = ("i_want_to_know", "i_want_to_go", "i_want_to_do", "i_want_to_buy")
TRIGGERS_PER_CUSTOMER = 3  # default frequency_cap_per_day
TRIGGER_SHARE = 0.2
GRACE_S = 10.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def midday_zone(local_hour: int = 12) -> str:
    """An ``Etc/GMT±N`` zone whose local hour is ``local_hour`` now (``Etc/GMT+N`` is
    UTC-N, the POSIX sign)."""
    utc_hour = dt.datetime.now(dt.UTC).hour
    offset = (local_hour - utc_hour + 12) % 24 - 12  # -12..11
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def customer(index: int) -> str:
    return f"c{index:07d}"


def context(tz: str, index: int) -> dict[str, Any]:
    return {"device": ("mobile", "desktop", "tablet")[index % 3], "channel": "web",
            "session_id": f"s{index}", "tz": tz}


def trigger_event(moment: str, k: int) -> tuple[str, dict[str, Any]]:
    if moment == "i_want_to_know":
        return "search", {"query": "running shoes", "results": 42}
    if moment == "i_want_to_go":
        return "store_locator", {"query": "Berlin"}
    if moment == "i_want_to_do":
        return "content_view", {"content_id": f"howto-{k % 50}", "kind": "how_to",
                                "topic": "lacing"}
    return "add_to_cart", {"product_id": f"p-{k % 500}", "quantity": 1, "price": 59.0,
                           "category": "shoes"}


def filler_event(rng: random.Random, i: int) -> tuple[str, dict[str, Any]]:
    """A page or product view that triggers nothing: each product view names its own
    product and category, so no session sees one of them 3 times (the default
    definitions turn repeated product or category views into moments)."""
    if rng.random() < 0.5:
        return "page_view", {"url": f"https://shop.example/c/{i % 200}", "page_type": "category"}
    return "product_view", {"product_id": f"p-{i}", "category": f"cat-{i}",
                            "brand": "acme", "price": 59.0}


def percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": percentile(ordered, 0.50),
        "p90": percentile(ordered, 0.90),
        "p99": percentile(ordered, 0.99),
        "max": ordered[-1] if ordered else None,
        "mean": sum(ordered) / len(ordered) if ordered else None,
    }


@dataclass
class Shared:
    """What the producer and consumer threads record (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    expected: dict[str, tuple[float, str]] = field(default_factory=dict)  # id -> (send, moment)
    sent: int = 0
    triggers_expected: int = 0
    behind_max_ms: float = 0.0
    first_send: float | None = None
    last_send: float | None = None
    producer_done: bool = False
    received: dict[str, tuple[float, int]] = field(default_factory=dict)  # id -> (recv, ts)
    received_moment_ok: int = 0
    received_moment_wrong: int = 0
    duplicates: int = 0
    unexpected: int = 0
    suppressed: Counter[str] = field(default_factory=Counter)  # of expected triggers
    suppressed_other: Counter[str] = field(default_factory=Counter)  # of other events
    unexpected_moments: Counter[str] = field(default_factory=Counter)
    suppressed_ids: set[str] = field(default_factory=set)
    undelivered: Counter[str] = field(default_factory=Counter)  # load events, by error
    stop: threading.Event = field(default_factory=threading.Event)


def producer_loop(args: argparse.Namespace, bootstrap: str, topic: str, tz: str,
                  customers: int, run: str, shared: Shared) -> None:
    acks: int | str = "all" if args.acks == "all" else int(args.acks)
    # librdkafka, not kafka-python: at 1000/s kafka-python's producer alone took ~0.6
    # of a core on this 2-core host, CPU the worker under test then had to queue for
    producer = LoadProducer({"bootstrap.servers": bootstrap, "acks": str(acks),
                             "linger.ms": args.linger_ms, "client.id": f"{run}-load"})
    rng = random.Random(args.seed)

    def failed(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            with shared.lock:
                shared.undelivered[str(error)] += 1

    total = int(args.rate * args.seconds)
    period = 1.0 / args.rate
    k = 0  # triggering events so far
    try:
        # a first send warms the connection and metadata outside the measured window
        producer.list_topics(topic, timeout=10)
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i * period
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            moment = None
            if rng.random() < TRIGGER_SHARE:
                moment = MOMENTS[(k % customers + k // customers) % len(MOMENTS)]
                who = k % customers
                kind, props = trigger_event(moment, k)
                k += 1
            else:
                who = rng.randrange(customers)
                kind, props = filler_event(rng, i)
            event_id = f"{run}-{i}"
            cid = customer(who)
            sent = time.perf_counter()
            value = orjson.dumps({"event_id": event_id, "customer_id": cid, "type": kind,
                                  "ts": now_ms(), "properties": props,
                                  "context": context(tz, who)})
            if moment is not None:
                with shared.lock:
                    shared.expected[event_id] = (sent, moment)
            producer.produce(topic, key=cid.encode(), value=value, on_delivery=failed)
            producer.poll(0)
            behind = (sent - due) * 1000
            with shared.lock:
                shared.sent += 1
                shared.triggers_expected = k
                shared.behind_max_ms = max(shared.behind_max_ms, behind)
                if shared.first_send is None:
                    shared.first_send = sent
                shared.last_send = sent
        left = producer.flush(30)
        if left:
            with shared.lock:
                shared.undelivered["not delivered within 30 s"] += left
    finally:
        shared.producer_done = True


def consumer_loop(consumer: KafkaConsumer, suppressed_topic: str, shared: Shared) -> None:
    while not shared.stop.is_set():
        batches = consumer.poll(timeout_ms=50)
        received = time.perf_counter()
        for records in batches.values():
            for record in records:
                value = orjson.loads(record.value)
                event_id = (value.get("cause") or {}).get("event_id")
                with shared.lock:
                    sent = shared.expected.get(event_id) if event_id else None
                    if record.topic == suppressed_topic:
                        reason = str(value.get("suppressed", "?"))
                        if sent is None:
                            shared.suppressed_other[reason] += 1
                        else:
                            shared.suppressed[reason] += 1
                            shared.suppressed_ids.add(str(event_id))
                        continue
                    if sent is None:
                        shared.unexpected += 1
                        shared.unexpected_moments[str(value.get("moment"))] += 1
                    elif event_id in shared.received:
                        shared.duplicates += 1
                    else:
                        shared.received[event_id] = (received, record.timestamp)
                        if value.get("moment") == sent[1]:
                            shared.received_moment_ok += 1
                        else:
                            shared.received_moment_wrong += 1


def process_cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), None if unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def host_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


def broker_pid() -> int | None:
    """The local Kafka broker's pid, to report its CPU share (read-only)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if b"kafka.Kafka" in (entry / "cmdline").read_bytes():
                    return int(entry.name)
    return None


class CpuMeter:
    """CPU used by the worker, the broker, this process and the host over a window."""

    def __init__(self, worker_pid: int | None) -> None:
        self.pids = {"worker": worker_pid, "broker": broker_pid(), "bench": os.getpid()}
        self.start = self.sample()
        self.wall = 0.0

    def sample(self) -> dict[str, float | None]:
        busy, total = host_cpu()
        out: dict[str, float | None] = {k: process_cpu_s(p) for k, p in self.pids.items()}
        out["host_busy"], out["host_total"], out["t"] = busy, total, time.monotonic()
        return out

    def shares(self) -> dict[str, float | None]:
        """Per process: cores used on average (1.0 = one full core); host: busy share."""
        end, start = self.sample(), self.start
        wall = self.wall = float(end["t"] or 0) - float(start["t"] or 0)
        out: dict[str, float | None] = {}
        for name in self.pids:
            a, b = start[name], end[name]
            out[f"{name}_cores"] = None if a is None or b is None or wall <= 0 else round(
                (b - a) / wall, 3)
        total = float(end["host_total"] or 0) - float(start["host_total"] or 0)
        busy = float(end["host_busy"] or 0) - float(start["host_busy"] or 0)
        out["host_busy_share"] = round(busy / total, 3) if total else None
        known = sum(v or 0.0 for k, v in out.items() if k.endswith("_cores"))
        if total:  # everything else on the machine (other jobs compete for the CPUs)
            out["others_cores"] = round(busy / total * (os.cpu_count() or 1) - known, 3)
        out["worker_cpu_us_per_event"] = None
        return out


def stats_totals(worker: Worker) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        return dict(worker.get("/stats"))
    return {}


def consumed(worker: Worker) -> int:
    return int(stats_totals(worker).get("totals", {}).get("consumed", 0))


def warm_up(bootstrap: str, topic: str, tz: str, customers: int, run: str,
            worker: Worker) -> float:
    start = time.perf_counter()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    for who in range(customers):
        cid = customer(who)
        producer.send(topic, key=cid.encode(), value=orjson.dumps({
            "event_id": f"{run}-consent-{who}", "customer_id": cid, "type": "consent_update",
            "ts": now_ms(), "properties": {"marketing": True, "personalization": True},
            "context": context(tz, who)}))
    producer.flush(timeout=60)
    producer.close()
    deadline = time.monotonic() + 120
    while consumed(worker) < customers:
        if time.monotonic() > deadline:
            raise SystemExit(f"warm-up: worker consumed {consumed(worker)} of {customers}\n"
                             f"{worker.log()}")
        time.sleep(0.2)
    time.sleep(3.0)
    return time.perf_counter() - start


def measuring_consumer(bootstrap: str, topics: list[str], run: str,
                       fetch_wait_ms: int) -> KafkaConsumer:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                             enable_auto_commit=False, fetch_max_wait_ms=fetch_wait_ms,
                             client_id=f"{run}-measure")
    partitions: list[TopicPartition] = []
    deadline = time.monotonic() + 30
    for topic in topics:
        found = consumer.partitions_for_topic(topic)
        while not found:
            if time.monotonic() > deadline:
                raise SystemExit(f"topic {topic} has no partitions")
            time.sleep(0.2)
            found = consumer.partitions_for_topic(topic)
        partitions += [TopicPartition(topic, p) for p in sorted(found)]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for tp in partitions:  # resolve the end offsets now, before any load
        consumer.position(tp)
    return consumer


def delete_topics(bootstrap: str, prefix: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id=f"{prefix}admin")
    try:
        mine = [t for t in admin.list_topics() if t.startswith(prefix)]
        if mine:
            admin.delete_topics(mine)
        return len(mine)
    finally:
        admin.close()


def windows(shared: Shared, start: float, width: float) -> list[dict[str, Any]]:
    buckets: dict[int, list[float]] = {}
    for event_id, (recv, _) in shared.received.items():
        sent = shared.expected[event_id][0]
        buckets.setdefault(int((sent - start) // width), []).append((recv - sent) * 1000)
    out = []
    for index in sorted(buckets):
        s = summary(buckets[index])
        out.append({"from_s": index * width, "n": s["n"], "p50": s["p50"], "p99": s["p99"],
                    "max": s["max"]})
    return out


def stalls(shared: Shared, start: float, count: int = 3) -> list[dict[str, Any]]:
    """The 100 ms windows of send time with the slowest triggers: where the tail is."""
    worst: dict[int, float] = {}
    for event_id, (recv, _) in shared.received.items():
        sent = shared.expected[event_id][0]
        index = int((sent - start) // 0.1)
        worst[index] = max(worst.get(index, 0.0), (recv - sent) * 1000)
    top = sorted(worst.items(), key=lambda item: -item[1])[:count]
    return [{"from_s": round(index / 10, 1), "max": round(value, 1)} for index, value in top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s (default 1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="load time (default 60)")
    parser.add_argument("--customers", type=int, default=2000, help="default 2000")
    parser.add_argument("--bootstrap", default=os.environ.get("SEGSTREAM_BOOTSTRAP",
                                                              "127.0.0.1:9092"))
    parser.add_argument("--acks", choices=("0", "1", "all"), default="1")
    parser.add_argument("--linger-ms", type=int, default=0)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    parser.add_argument("--worker-log", type=Path,
                        help="copy the worker's log here at the end")
    parser.add_argument("--keep-topics", action="store_true",
                        help="do not delete the run's topics at the end")
    parser.add_argument("--worker-arg", action="append", default=[],
                        help="extra argument for segstream worker (repeatable)")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment variable for the worker (repeatable), e.g. "
                        "PYTHONPATH=/tmp/variant to run another copy of the code")
    parser.add_argument("--pin", action="store_true",
                        help="pin the worker to the last CPU and this process to the others "
                        "(the broker and other jobs are left alone)")
    parser.add_argument("--fetch-wait-ms", type=int, default=100,
                        help="fetch_max_wait_ms of the measuring consumer (default 100; a "
                        "fetch returns as soon as a record arrives, so this only bounds "
                        "how often an idle consumer asks)")
    parser.add_argument("--switch-interval", type=float, default=0.0005,
                        help="sys.setswitchinterval of this process (default 0.0005 s)")
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)

    run = f"lat{uuid.uuid4().hex[:8]}"
    prefix = f"{run}-"
    expected_triggers = math.ceil(args.rate * args.seconds * TRIGGER_SHARE * 1.05)
    customers = max(args.customers, math.ceil(expected_triggers / TRIGGERS_PER_CUSTOMER))
    tz = midday_zone()
    source = f"{prefix}{INTERACTIONS}"
    moments_topic = f"{prefix}{MICRO_MOMENTS}"
    suppressed_topic = f"{prefix}{MICRO_MOMENTS_SUPPRESSED}"
    machine = (f"{platform.platform()}, {os.cpu_count()} CPUs, "
               f"{platform.processor() or platform.machine()}, Python "
               f"{platform.python_version()}")
    cpu_model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    if cpu_model:
        machine += f", {cpu_model}"
    print(f"run {run}: {args.rate:g} events/s for {args.seconds:g} s, {customers} customers"
          + (f" (raised from {args.customers})" if customers != args.customers else "")
          + f", tz {tz}", flush=True)

    shared = Shared()
    with tempfile.TemporaryDirectory(prefix=f"{run}-") as tmp:
        worker_env = dict(item.split("=", 1) for item in args.worker_env)
        worker = Worker(args.bootstrap, prefix, Path(tmp), "--clock", "live",
                        "--partitions", str(args.partitions), *args.worker_arg,
                        env=worker_env)
        consumer: KafkaConsumer | None = None
        try:
            worker.start()
            cpus = sorted(os.sched_getaffinity(0))
            if args.pin and len(cpus) >= 2 and worker.process is not None:
                os.sched_setaffinity(worker.process.pid, {cpus[-1]})
                os.sched_setaffinity(0, set(cpus[:-1]))
            warm_s = warm_up(args.bootstrap, source, tz, customers, run, worker)
            consumer = measuring_consumer(args.bootstrap, [moments_topic, suppressed_topic], run,
                                          args.fetch_wait_ms)
            reader = threading.Thread(target=consumer_loop,
                                      args=(consumer, suppressed_topic, shared), daemon=True)
            reader.start()
            before = consumed(worker)
            meter = CpuMeter(worker.process.pid if worker.process else None)
            writer = threading.Thread(target=producer_loop, daemon=True,
                                      args=(args, args.bootstrap, source, tz, customers, run,
                                            shared))
            writer.start()
            backlog_max = 0
            while writer.is_alive():
                writer.join(1.0)
                with shared.lock:
                    sent = shared.sent
                backlog_max = max(backlog_max, sent - (consumed(worker) - before))
            cpu = meter.shares()
            load_consumed = consumed(worker) - before
            if cpu["worker_cores"] is not None and load_consumed:
                cpu["worker_cpu_us_per_event"] = round(
                    cpu["worker_cores"] * meter.wall / load_consumed * 1e6, 1)
            deadline = time.monotonic() + GRACE_S
            while time.monotonic() < deadline:
                with shared.lock:
                    done = set(shared.received) | shared.suppressed_ids
                    if len(done & shared.expected.keys()) >= len(shared.expected):
                        break
                time.sleep(0.1)
            time.sleep(0.3)  # late duplicates or unexpected records
            shared.stop.set()
            reader.join(5)
            stats = stats_totals(worker)
        except BaseException:
            print(worker.log(), file=sys.stderr)
            raise
        finally:
            if consumer is not None:
                consumer.close()
            code = worker.stop()
            if args.worker_log:
                with contextlib.suppress(OSError):
                    args.worker_log.write_bytes(worker.log_path.read_bytes())
            if not args.keep_topics:
                with contextlib.suppress(Exception):
                    delete_topics(args.bootstrap, prefix)

    first = shared.first_send or 0.0
    elapsed = (shared.last_send or first) - first
    latencies, upstream, downstream = [], [], []
    offset = time.time() - time.perf_counter()  # perf_counter -> wall clock
    for event_id, (recv, ts) in shared.received.items():
        sent = shared.expected[event_id][0]
        latencies.append((recv - sent) * 1000)
        upstream.append(ts - (sent + offset) * 1000)
        downstream.append((recv + offset) * 1000 - ts)
    missing = [e for e in shared.expected
               if e not in shared.received and e not in shared.suppressed_ids]
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine,
        "run": run,
        "tz": tz,
        "rate_target": args.rate,
        "seconds": args.seconds,
        "customers": customers,
        "acks": args.acks,
        "linger_ms": args.linger_ms,
        "pinned": args.pin,
        "worker_args": args.worker_arg,
        "worker_env": args.worker_env,
        "switch_interval_s": args.switch_interval,
        "warm_up_s": round(warm_s, 2),
        "events_sent": shared.sent,
        "rate_achieved": shared.sent / elapsed if elapsed > 0 else None,
        "producer_behind_max_ms": round(shared.behind_max_ms, 2),
        "load_undelivered": dict(shared.undelivered),
        "worker_backlog_max": backlog_max,
        "triggers_expected": len(shared.expected),
        "triggers_received": len(shared.received),
        "triggers_wrong_moment": shared.received_moment_wrong,
        "triggers_duplicate": shared.duplicates,
        "triggers_unexpected": shared.unexpected,
        "suppressed_by_reason": dict(sorted(shared.suppressed.items())),
        "suppressed_other_events": dict(sorted(shared.suppressed_other.items())),
        "unexpected_by_moment": dict(sorted(shared.unexpected_moments.items())),
        "missing": len(missing),
        "missing_sample": missing[:5],
        "latency_ms": summary(latencies),
        "upstream_ms": summary(upstream),
        "downstream_ms": summary(downstream),
        "windows_10s": windows(shared, first, 10.0),
        "slowest_100ms": stalls(shared, first),
        "cpu_during_load": cpu,
        "worker_stats": stats.get("totals", {}),
        "worker_exit": code,
    }
    print_summary(result)
    if args.out:
        args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return 0


def fmt(values: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        value = values.get(key)
        return "-" if value is None else f"{value:.1f}"
    return (f"p50 {ms('p50')}  p90 {ms('p90')}  p99 {ms('p99')}  max {ms('max')}  "
            f"mean {ms('mean')} ms")


def print_summary(r: dict[str, Any]) -> None:
    rate = r["rate_achieved"]
    lines = [
        "=== trigger latency (produce -> trigger readable on micro-moments) ===",
        f"machine           {r['machine']}",
        f"load              {r['events_sent']} events, target {r['rate_target']:g}/s, "
        f"achieved {rate:.1f}/s" if rate else "load              -",
        f"                  producer acks={r['acks']} linger_ms={r['linger_ms']}, pinned "
        f"{r['pinned']}, "
        f"max {r['producer_behind_max_ms']} ms behind schedule, worker backlog max "
        f"{r['worker_backlog_max']} events"
        + (f", NOT DELIVERED {r['load_undelivered']}" if r["load_undelivered"] else ""),
        f"customers         {r['customers']} (tz {r['tz']}), warm-up {r['warm_up_s']} s",
        f"triggers          expected {r['triggers_expected']}, received "
        f"{r['triggers_received']}, missing {r['missing']}, wrong moment "
        f"{r['triggers_wrong_moment']}, duplicate {r['triggers_duplicate']}, unexpected "
        f"{r['triggers_unexpected']} {r['unexpected_by_moment'] or ''}",
        f"suppressed        {r['suppressed_by_reason'] or 'none'} (expected triggers); "
        f"other events: {r['suppressed_other_events'] or 'none'}",
        f"latency           {fmt(r['latency_ms'])}",
        f"  upstream        {fmt(r['upstream_ms'])}  (send -> worker's CreateTime)",
        f"  downstream      {fmt(r['downstream_ms'])}  (CreateTime -> read)",
        "per 10 s          " + "  ".join(
            f"[{w['from_s']:g}s p50 {w['p50']:.1f} p99 {w['p99']:.1f}]"
            for w in r["windows_10s"]),
        "slowest 100 ms    " + "  ".join(f"[{w['from_s']:g}s max {w['max']:.1f}]"
                                        for w in r["slowest_100ms"]),
        f"cpu during load   {r['cpu_during_load']}",
        f"worker            {r['worker_stats']}, exit {r['worker_exit']}",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
