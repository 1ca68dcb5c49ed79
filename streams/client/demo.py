"""``make demo``: a worker on the local broker, a short story, then a simulated crowd.

Starts ``segstream worker`` as a subprocess with a topic prefix of its own. Act one
produces a few customers' interactions and prints every segment change, trigger,
withheld trigger and dead letter as the worker emits them. Act two does what a user
does: ``segstream simulate`` writes the last two hours of 5,000 synthetic customers,
``segstream replay`` produces them, ``segstream tail`` shows the triggers live, and
the worker's ``/metrics`` sums them up. Then the worker stops (nothing is left running),
and ``segstream report`` writes act two's events as an HTML report, whose path is the
last line.

``SEGSTREAM_KAFKA_CONFIG`` (a client.properties file) connects it, and the commands it
starts, to a secured broker; its ``bootstrap.servers``, else ``SEGSTREAM_BOOTSTRAP``,
names the broker.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer

from segments.records import INTERACTIONS, MICRO_MOMENTS, OUTPUT_TOPICS
from segments.timefmt import MINUTE_MS, format_ts
from streams.client.connect import client_settings, explained, resolve_settings
from streams.errors import UserError
from streams.settings import Settings


def story(start: int) -> list[dict[str, object]]:
    """Three customers: a first purchase, a research-then-cart session, a bad record."""
    ctx = {"device": "mobile", "channel": "app", "tz": "Europe/Berlin",
           "geo": {"country": "DE", "city": "Berlin"}}
    uk = {"device": "desktop", "channel": "web", "tz": "Europe/London",
          "geo": {"country": "GB", "city": "London"}}
    events: list[tuple[str, str, int, dict[str, object], dict[str, object]]] = [
        # triggers need marketing consent: ana and ben gave it, dev never did
        ("ana", "consent_update", 0, {"marketing": True}, ctx),
        ("ben", "consent_update", 0, {"marketing": True}, uk),
        ("dev", "search", 0, {"query": "gift ideas"}, uk),
        ("ana", "search", 0, {"query": "trail running shoes"}, ctx),
        ("ana", "content_view", 1, {"content_id": "guide-7", "kind": "comparison"}, ctx),
        ("ana", "product_view", 2, {"product_id": "p-9", "category": "shoes", "price": 89.0},
         ctx),
        ("ana", "add_to_cart", 3, {"product_id": "p-9", "quantity": 1, "price": 89.0,
                                   "category": "shoes"}, ctx),
        ("ana", "purchase", 5, {"order_id": "o-1", "revenue": 89.0, "currency": "EUR"}, ctx),
        ("ben", "store_locator", 0, {"query": "Camden"}, uk),
        ("ben", "search", 1, {"query": "running shoes near me"}, uk),
        ("ben", "content_view", 2, {"content_id": "howto-lace", "kind": "how_to"}, uk),
        ("cai", "consent_update", 0, {"marketing": True}, ctx),
    ]
    for i in range(4):
        events.append(("cai", "purchase", 1 + i, {"order_id": f"o-c{i}", "revenue": 180.0,
                                                    "currency": "EUR"}, ctx))
    out = []
    for n, (customer, kind, minute, props, context) in enumerate(events):
        out.append({"event_id": f"demo-{n}", "customer_id": customer, "type": kind,
                    "ts": format_ts(start + minute * MINUTE_MS), "properties": props,
                    "context": context})
    return out


def show(topic: str, value: dict[str, object]) -> str:
    if "segment" in value:
        sign = "+" if value["change"] == "entered" else "-"
        return (f"segment  {value['customer_id']:<5} {sign}{value['segment']:<22} "
                f"because {orjson.dumps(value['reason']).decode()}")
    if "moment" in value and "suppressed" in value:
        until = f" until {value['held_until']}" if "held_until" in value else ""
        return (f"withheld {value['customer_id']:<5} {value['moment']:<23} "
                f"{value['suppressed']}{until} (local time {value['context']['local_time']})")
    if "moment" in value:
        return (f"trigger  {value['customer_id']:<5} {value['moment']:<23} "
                f"score {value['score']:.2f}  items {orjson.dumps(value['items']).decode()}")
    return f"dead     {value.get('reason')}: {value.get('detail')}"


def main() -> int:
    try:
        config = os.environ.get("SEGSTREAM_KAFKA_CONFIG")
        return run(resolve_settings(None, Path(config) if config else None))
    except UserError as exc:
        print(f"demo: error: {exc}", file=sys.stderr)
        return 2


#: the HTTP API's security settings: the demo's worker listens on 127.0.0.1 only, and the
#: demo reads it without a token, so it runs without these even if they are set here
WEB_SECURITY = ("SEGSTREAM_WEB_TOKEN", "SEGSTREAM_WEB_TOKEN_FILE", "SEGSTREAM_METRICS_TOKEN",
                "SEGSTREAM_METRICS_TOKEN_FILE", "SEGSTREAM_WEB_CERT", "SEGSTREAM_WEB_KEY",
                "SEGSTREAM_WEB_HOST")


def local_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in WEB_SECURITY}


def run(settings: Settings) -> int:
    """The demo on the broker of ``settings``; the commands it starts read the same
    ``SEGSTREAM_KAFKA_CONFIG``."""
    bootstrap = settings.bootstrap
    prefix = f"demo-{uuid.uuid4().hex[:6]}-"
    port = 6099
    workdir = Path(tempfile.mkdtemp(prefix="segstream-demo-"))
    log = (workdir / "worker.log").open("wb")
    command = [str(Path(sys.executable).with_name("segstream")), "worker", "--bootstrap",
               bootstrap, "--topic-prefix", prefix, "--data-dir", str(workdir),
               "--web-port", str(port)]
    print(f"starting: {' '.join(command[1:])}")
    worker = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=local_env())
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except OSError:
                if worker.poll() is not None:
                    print((workdir / "worker.log").read_text()[-3000:])
                    return 1
                time.sleep(0.5)
        start = time.time_ns() // 1_000_000 - 6 * MINUTE_MS
        events = story(start)
        with explained(settings):
            producer = KafkaProducer(**client_settings(settings))
        source = f"{prefix}{INTERACTIONS}"
        for event in events:
            producer.send(source, key=str(event["customer_id"]).encode(),
                          value=orjson.dumps(event))
        producer.send(source, key=b"ana", value=b'{"event_id": "broken')
        producer.flush()
        producer.close()
        print(f"produced {len(events) + 1} events (one of them broken) to {source}\n")
        topics = [f"{prefix}{t}" for t in OUTPUT_TOPICS]
        with explained(settings):
            consumer = KafkaConsumer(*topics, **client_settings(settings),
                                     auto_offset_reset="earliest", consumer_timeout_ms=1000)
        seen = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for message in consumer:
                print(show(message.topic, orjson.loads(message.value)))
                seen += 1
            if seen and time.monotonic() > deadline - 15:
                break
        consumer.close()
        stats = orjson.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/stats", timeout=5).read())
        print(f"\nworker accounting: {stats['totals']}")
        if not seen:
            return 1
        code = crowd(bootstrap, prefix, port, workdir)
    finally:
        worker.terminate()
        worker.wait(30)
        print("worker stopped")
    return code or report(workdir)


def report(workdir: Path) -> int:
    """The end: act two's events as the HTML report (``segstream report``, an offline
    replay, so the worker is already stopped), and where it is."""
    page = workdir / "report.html"
    step = [str(Path(sys.executable).with_name("segstream")), "report", "--events",
            str(workdir / "crowd.jsonl"), "--out", str(page), "--no-progress"]
    print("\n$ segstream " + " ".join(step[1:]).replace(str(workdir), "<tmp>"))
    subprocess.run(step, check=True, stdout=subprocess.DEVNULL)
    print(f"report: {page} (open it in a browser; it needs no network)")
    return 0


def crowd(bootstrap: str, prefix: str, port: int, workdir: Path) -> int:
    """Act two: the command-line tools on a simulated crowd."""
    segstream = str(Path(sys.executable).with_name("segstream"))
    connection = ["--bootstrap", bootstrap, "--topic-prefix", prefix]
    log = workdir / "crowd.jsonl"
    start = format_ts(time.time_ns() // 1_000_000 - 120 * MINUTE_MS)
    steps = [
        [segstream, "simulate", "--customers", "5000", "--days", "0.0834", "--seed", "7",
         "--start", start, "--out", str(log)],
        [segstream, "replay", str(log), "--no-progress", *connection],
    ]
    print("\n--- act two: 5,000 simulated customers, the last two hours ---")
    for step in steps:
        print("$ segstream " + " ".join(step[1:]).replace(str(workdir), "<tmp>"))
        subprocess.run(step, check=True)
    tail = [segstream, "tail", MICRO_MOMENTS, "--from-beginning", "--format", "table",
            "--count", "12", "--idle", "20", *connection]
    print("$ segstream " + " ".join(tail[1:]))
    subprocess.run(tail, check=True)
    time.sleep(2)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    outcomes: dict[str, float] = {}
    for line in metrics.decode().splitlines():
        if line.startswith("segstream_triggers_total{"):
            outcome = line.split('outcome="')[1].split('"')[0]
            outcomes[outcome] = outcomes.get(outcome, 0) + float(line.split()[-1])
    summary = ", ".join(f"{name} {int(n):,}" for name, n in
                        sorted(outcomes.items(), key=lambda kv: -kv[1]))
    print(f"\ntriggers by outcome (GET /metrics): {summary}")
    clusters = [segstream, "clusters", "--worker", f"http://127.0.0.1:{port}",
                "--format", "table"]
    print("\n$ segstream clusters   (discovered microsegments; ids mean the same everywhere)")
    listing = subprocess.run(clusters, check=True, capture_output=True, text=True,
                             env=local_env()).stdout
    print("\n".join(line for line in listing.splitlines() if line.startswith("cluster_")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
