"""Real-broker helpers for the integration tier: a worker subprocess, produce, consume."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kafka_script(command: str, port: int, **env: str) -> str:
    """``scripts/kafka.sh COMMAND`` for a broker of a test's own on ``port`` (its
    controller on ``port + 1``); its output. ``env``: KAFKA_SECURE, KAFKA_RUN_DIR..."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "kafka.sh"), command],
                          env={**os.environ, "KAFKA_PORT": str(port),
                               "KAFKA_CONTROLLER_PORT": str(port + 1), **env},
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def throwaway_tls(folder: Path) -> Path:
    """``folder`` with a throw-away CA (ca.pem), a certificate for 127.0.0.1 and
    localhost with its key (broker.pem) and a client one (scripts/kafka-tls.sh)."""
    subprocess.run(["bash", str(ROOT / "scripts" / "kafka-tls.sh"), str(folder)], check=True)
    return folder


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports."""
    while True:
        port = free_port()
        try:
            with contextlib.ExitStack() as stack:
                for offset in range(1, count):
                    stack.enter_context(socket.create_server(("127.0.0.1", port + offset)))
            return port
        except OSError:
            continue


def produce(bootstrap: str, topic: str, records: Iterable[tuple[str | None, bytes]],
            **client: Any) -> int:
    """``client``: security settings (``KafkaConfig.kafka_python()``), as below."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, **client)
    n = 0
    for key, value in records:
        producer.send(topic, key=None if key is None else key.encode(), value=value)
        n += 1
    producer.flush(timeout=30)
    producer.close()
    return n



#: where the tests' simulated logs start: 2026-01-01T00:00:00Z
START = 1_767_225_600_000
#: the topics whose records carry a change_id or a trigger_id
RECORD_TOPICS = ("segment-changes", "micro-moments", "micro-moments-suppressed")


def record_id(value: dict[str, Any]) -> str:
    """A segment change's or a trigger's id."""
    return str(value.get("change_id") or value["trigger_id"])


def offline_records(log_path: Path, partitions: int,
                    comparable: Any = None) -> dict[str, bytes]:
    """``replay --offline`` of ``log_path`` with the shipped definitions: each record's
    id -> its value with sorted keys (``comparable(value)`` instead, when given: see
    :func:`without_model_decisions`; records it maps to None are left out)."""
    import io

    from segments.definitions import DEFAULT_PATH, parse_definitions
    from streams.tools.offline import replay_offline

    out = io.BytesIO()
    replay_offline([log_path], parse_definitions(DEFAULT_PATH.read_text()), out,
                   partitions=partitions)
    kept = {record_id(v): orjson.dumps(v, option=orjson.OPT_SORT_KEYS)
            if comparable is None else comparable(v)
            for v in map(orjson.loads, out.getvalue().splitlines())}
    return {k: v for k, v in kept.items() if v is not None}


def without_model_decisions(definitions: Any) -> Any:
    """``comparable(value)``: a record without what the models decided (the segments
    that read a model feature, ``Engine.model_segments``), as sorted JSON bytes; None
    for a model segment's own record. After a takeover or a restart a partition's
    models resume from a checkpoint that lags the committed offset (README, "Running
    on a real cluster"), so those may differ from the offline replay."""
    from segments.engine import Engine

    model_segments = Engine(definitions).model_segments

    def comparable(value: dict[str, Any]) -> bytes | None:
        if value.get("segment") in model_segments:
            return None
        kept = [name for name in value["segments"] if name not in model_segments]
        return orjson.dumps({**value, "segments": kept}, option=orjson.OPT_SORT_KEYS)

    return comparable


def assert_same_records(records: list[tuple[str, str | None, bytes]],
                        offline: dict[str, bytes], comparable: Any = None) -> None:
    """Every repeat of a record is its first copy, and the ids and values are the
    offline replay's (both through ``comparable``, when given, as
    :func:`offline_records` made them)."""
    assert_valid_outputs(records)
    got: dict[str, bytes] = {}
    for _, _, raw in records:
        value = orjson.loads(raw)
        kept = (orjson.dumps(value, option=orjson.OPT_SORT_KEYS) if comparable is None
                else comparable(value))
        if kept is None:
            continue
        assert got.setdefault(record_id(value), kept) == kept, value
    missing, extra = offline.keys() - got.keys(), got.keys() - offline.keys()
    assert not missing and not extra, (
        f"{len(missing)} ids missing (e.g. {sorted(missing)[:3]}), {len(extra)} extra "
        f"(e.g. {sorted(extra)[:3]}) of {len(offline)}")
    assert got == offline


def consume(bootstrap: str, topics: list[str], count: int, timeout: float = 60.0,
            settle: float = 0.0, isolation: str = "read_committed",
            **client: Any) -> list[tuple[str, str | None, bytes]]:
    """Read from the start until ``count`` records arrived (then ``settle`` s more);
    ``isolation="read_uncommitted"`` also returns records of open or aborted
    transactions (a worker with ``--guarantee exactly-once`` writes in them)."""
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=500,
                             group_id=None, isolation_level=isolation, **client)
    got: list[tuple[str, str | None, bytes]] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            for message in consumer:
                key = None if message.key is None else message.key.decode()
                got.append((message.topic, key, message.value))
            if len(got) >= count:
                if settle <= 0:
                    break
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
    finally:
        consumer.close()
    return got


def values(records: list[tuple[str, str | None, bytes]], topic: str) -> list[dict[str, Any]]:
    return [orjson.loads(v) for t, _, v in records if t == topic]


def segstream_command() -> list[str]:
    installed = Path(sys.executable).with_name("segstream")
    return [str(installed)] if installed.exists() else [sys.executable, "-m", "streams.cli"]


class Worker:
    """``segstream worker`` as a real subprocess with its own prefix, port and data dir.

    ``token``: what :meth:`get` sends as its bearer token (the worker is told its own
    by the test); ``ca``: the worker serves TLS, :meth:`get` trusts this CA."""

    def __init__(self, bootstrap: str, prefix: str, data_dir: Path, *extra: str,
                 env: dict[str, str] | None = None, token: str | None = None,
                 ca: Path | None = None, port: int | None = None) -> None:
        self.port = free_port() if port is None else port
        self.token = token
        self.context = None if ca is None else ssl.create_default_context(cafile=str(ca))
        self.url = f"{'http' if ca is None else 'https'}://127.0.0.1:{self.port}"
        self.log_path = data_dir / f"worker-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.args = [*segstream_command(), "worker", "--bootstrap", bootstrap,
                     "--topic-prefix", prefix, "--data-dir", str(data_dir / "worker"),
                     "--web-port", str(self.port), "--loglevel", "info", *extra]
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT,
                                        env=self.env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.log()}")
            with contextlib.suppress(OSError):
                if self.get("/health").get("status") == "ok":
                    return self
            time.sleep(0.3)
        raise AssertionError(f"worker not healthy after {timeout}s:\n{self.log()}")

    def request(self, path: str, timeout: float = 5.0) -> bytes:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(f"{self.url}{path}", headers=headers)
        with urllib.request.urlopen(request, timeout=timeout,
                                    context=self.context) as response:
            return bytes(response.read())

    def get(self, path: str, timeout: float = 5.0) -> Any:
        return orjson.loads(self.request(path, timeout))

    def get_text(self, path: str) -> str:
        return self.request(path).decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, timeout: float = 30.0) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def wait_consumed(worker: Worker, count: int, timeout: float = 180.0) -> None:
    """Until the worker's /stats count ``count`` records consumed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.get("/stats")["totals"]["consumed"] >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"worker consumed {worker.get('/stats')['totals']} of {count}:\n"
                         f"{worker.log()}")


def write_simulated_log(path: Path, *, customers: int, days: float, seed: int,
                        start: int) -> list[tuple[str | None, bytes]]:
    """A ``segstream simulate`` log as JSON lines at ``path``; its (key, value) pairs."""
    from streams.tools.simulate import simulate

    lines: list[tuple[str | None, bytes]] = [
        (e["customer_id"], orjson.dumps(e))
        for e in simulate(customers=customers, days=days, seed=seed, start=start)]
    path.write_bytes(b"".join(line + b"\n" for _, line in lines))
    return lines


def wait_committed(bootstrap: str, group: str, topic: str,
                   timeout: float = 240.0, **client: Any) -> dict[int, Any]:
    """Until ``group`` has committed every partition of ``topic`` up to its end; the
    committed ``OffsetAndMetadata`` by partition."""
    from kafka import KafkaAdminClient, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, **client)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, **client)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        deadline = time.monotonic() + timeout
        while True:
            ends = consumer.end_offsets(partitions)
            committed = admin.list_group_offsets({group: None}).get(group, {})
            behind = {tp.partition: ends[tp] - (committed[tp].offset if tp in committed
                                                else 0) for tp in partitions}
            if not any(behind.values()):
                return {tp.partition: committed[tp] for tp in partitions}
            if time.monotonic() > deadline:
                raise AssertionError(f"{group} still behind on {topic}: {behind}")
            time.sleep(0.5)
    finally:
        consumer.close()
        admin.close()


@contextlib.contextmanager
def running_worker(*args: Any, **kwargs: Any) -> Iterator[Worker]:
    worker = Worker(*args, **kwargs).start()
    try:
        yield worker
    finally:
        worker.stop()


_VALIDATORS: dict[str, Any] = {}


def assert_valid_outputs(records: list[tuple[str, str | None, bytes]]) -> None:
    """Every record the worker produced validates against the schema it names."""
    import fastjsonschema

    import schemas

    for _, _, raw in records:
        value = orjson.loads(raw)
        name, version = value["schema"].split("/")
        if value["schema"] not in _VALIDATORS:
            _VALIDATORS[value["schema"]] = fastjsonschema.compile(schemas.load(name, version))
        _VALIDATORS[value["schema"]](value)
