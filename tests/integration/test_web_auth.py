"""The worker's closed HTTP API with real workers on the real broker: 401 without the
token, 403 with a wrong one, 200 with it; ``/health`` open, ``/metrics`` open or closed
by ``--metrics-token``; a profile request forwarded to the worker that owns the key,
the token with it, over HTTP and over TLS; the command-line clients with the token;
and the token in no line of a worker's debug log, nor in ``/health`` or ``/stats``."""

from __future__ import annotations

import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from streams.client.topics import ensure_topics
from streams.settings import Settings
from tests.kafka_tools import (
    START,
    Worker,
    produce,
    running_worker,
    segstream_command,
    throwaway_tls,
    wait_consumed,
)

TOKEN = "w3b-t0ken-5b8e61d2c4"
METRICS = "scr4pe-t0ken-0c2f"


def status(worker: Worker, path: str, authorization: str | None) -> tuple[int, bytes]:
    """The worker's answer to ``GET path`` with this Authorization header (or none)."""
    headers = {} if authorization is None else {"Authorization": authorization}
    request = urllib.request.Request(f"{worker.url}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10, context=worker.context) as response:
            return response.status, bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, bytes(exc.read())


def events(customers: list[str]) -> list[tuple[str | None, bytes]]:
    return [(c, orjson.dumps({"event_id": f"e-{c}", "customer_id": c, "type": "purchase",
                              "ts": START + n * 1000,
                              "properties": {"order_id": f"o-{c}", "revenue": 10.0}}))
            for n, c in enumerate(customers)]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SEGSTREAM_WEB")}
    return subprocess.run([*segstream_command(), *args], capture_output=True, text=True,
                          timeout=60, env={**clean, **(env or {})})


def test_a_worker_with_tokens_answers_only_with_them_and_logs_neither(
        bootstrap: str, prefix: str, tmp_path: Path) -> None:
    token_file = tmp_path / "web-token"
    token_file.write_text(TOKEN + "\n")
    with running_worker(bootstrap, prefix, tmp_path, "--clock", "event", "--web-token-file",
                        str(token_file), "--loglevel", "debug",
                        env={"SEGSTREAM_METRICS_TOKEN": METRICS}, token=TOKEN) as worker:
        produce(bootstrap, f"{prefix}interactions", events(["c1", "c2"]))
        wait_consumed(worker, 2)
        bearer, wrong = f"Bearer {TOKEN}", f"Bearer {TOKEN[:-1]}x"
        for path in ("/stats", "/models", "/clusters", "/profile/c1",
                     "/router/customers/", "/table/customers/c1/", "/"):
            code, body = status(worker, path, None)
            assert code == 401, (path, code, body)
            assert orjson.loads(body) == {"error": "this worker needs a bearer token "
                                                   "(Authorization: Bearer <token>)"}
            assert status(worker, path, wrong)[0] == 403, path
            assert status(worker, path, f"Basic {TOKEN}")[0] == 401, path
        for path in ("/stats", "/models", "/clusters", "/profile/c1"):
            assert status(worker, path, bearer)[0] == 200, path
        assert orjson.loads(status(worker, "/profile/c1", bearer)[1])["customer_id"] == "c1"
        code, health = status(worker, "/health", None)
        assert code == 200 and orjson.loads(health)["status"] == "ok"
        # /metrics has its own token: the web token does not open it
        assert status(worker, "/metrics", None)[0] == 401
        assert status(worker, "/metrics", bearer)[0] == 403
        code, metrics = status(worker, "/metrics", f"Bearer {METRICS}")
        assert code == 200 and b"segstream_events_consumed_total" in metrics
        stats = status(worker, "/stats", bearer)[1]
        assert orjson.loads(stats)["totals"]["consumed"] == 2

        # the command-line clients, with the token from a flag, a file or the variable
        url = ["--worker", worker.url]
        done = cli("profile", "c2", *url, "--format", "json", env={"SEGSTREAM_WEB_TOKEN": TOKEN})
        assert done.returncode == 0, done.stderr
        assert orjson.loads(done.stdout)["customer_id"] == "c2"
        for command in ("models", "clusters"):
            done = cli(command, *url, "--web-token-file", str(token_file), "--format", "json")
            assert done.returncode == 0, done.stderr
            assert "partitions" in orjson.loads(done.stdout)
        none = cli("profile", "c2", *url)
        assert (none.returncode, none.stderr) == (
            2, f"segstream: error: the worker at {worker.url} needs a token: give "
            "--web-token, --web-token-file or SEGSTREAM_WEB_TOKEN\n")
        refused = cli("clusters", *url, "--web-token", "not-it")
        assert (refused.returncode, refused.stderr) == (
            2, f"segstream: error: the worker at {worker.url} refused the token (--web-token)\n")
    log = worker.log_path.read_text(errors="replace")
    assert "[DEBUG]" in log, log[-3000:]  # the level was open
    for secret in (TOKEN, METRICS):
        assert secret not in log
        assert secret.encode() not in health + stats + metrics
        assert secret not in none.stderr + refused.stderr


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA and a certificate for 127.0.0.1 (scripts/kafka-tls.sh, openssl)."""
    return throwaway_tls(tmp_path_factory.mktemp("web-tls") / "tls")


def owners(worker: Worker) -> dict[str, list[int]]:
    """The customer table's active partitions by the URL of the worker owning them
    (Faust's ``/router/customers/``)."""
    table = worker.get("/router/customers/")
    return {url: sorted(p for tp in parts for p in tp[1]) if parts else []
            for url, parts in table.items()} if isinstance(table, dict) else {}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_profile_request_is_forwarded_to_the_owner_with_the_token(
        bootstrap: str, prefix: str, tmp_path: Path, tls: Path, scheme: str) -> None:
    ensure_topics(Settings(bootstrap=bootstrap, topic_prefix=prefix, partitions=3))
    served = ("--web-cert", str(tls / "broker.pem"), "--web-ca", str(tls / "ca.pem"))
    args = ("--clock", "event", "--session-timeout", "6", *(served if scheme == "https" else ()))
    ca = tls / "ca.pem" if scheme == "https" else None
    workers = [Worker(bootstrap, prefix, tmp_path / name, *args, token=TOKEN, ca=ca,
                      env={"SEGSTREAM_WEB_TOKEN": TOKEN}) for name in ("a", "b")]
    customers = [f"c{n}" for n in range(12)]
    try:
        for worker in workers:
            worker.start()
        assert workers[0].url.startswith(f"{scheme}://")
        # until the group has settled with partitions on both workers
        deadline = time.monotonic() + 90
        while True:
            key_owners = {c: str(workers[0].get(f"/router/customers/{c}/")) for c in customers}
            urls = set(key_owners.values())
            if all(any(f":{w.port}" in u for u in urls) for w in workers):
                break
            assert time.monotonic() < deadline, key_owners
            time.sleep(1)
        produce(bootstrap, f"{prefix}interactions", events(customers))
        deadline = time.monotonic() + 90
        while sum(w.get("/stats")["totals"]["consumed"] for w in workers) < len(customers):
            assert time.monotonic() < deadline, [w.log() for w in workers]
            time.sleep(0.5)
        forwarded = 0
        for asked, other in (workers, workers[::-1]):
            theirs = [c for c, u in key_owners.items() if f":{other.port}" in u]
            assert theirs, key_owners
            for customer in theirs:
                # the owner checks the token again: a forward without it would come
                # back 401, with another token 403 (tried: a second worker started with
                # another token answered the forwarded requests 403)
                code, body = status(asked, f"/profile/{customer}", f"Bearer {TOKEN}")
                assert code == 200, (customer, code, body, asked.log(), other.log())
                assert orjson.loads(body)["customer_id"] == customer
                forwarded += 1
                # without the token the first worker refuses it, before forwarding
                assert status(asked, f"/profile/{customer}", None)[0] == 401
                assert status(asked, f"/profile/{customer}", "Bearer no")[0] == 403
        assert forwarded == len(customers)
        # no --metrics-token: /metrics stays open for Prometheus; /health always is
        assert status(workers[0], "/metrics", None)[0] == 200
        assert status(workers[1], "/health", None)[0] == 200
        # segstream profile through either worker, over TLS with the CA
        trust = ("--web-ca", str(tls / "ca.pem")) if scheme == "https" else ()
        for worker in workers:
            done = cli("profile", customers[-1], "--worker", worker.url, *trust,
                       "--format", "json", env={"SEGSTREAM_WEB_TOKEN": TOKEN})
            assert done.returncode == 0, done.stderr
            assert orjson.loads(done.stdout)["customer_id"] == customers[-1]
        if scheme == "https":
            plain = workers[0].url.replace("https:", "http:")
            done = cli("profile", "c1", "--worker", plain, env={"SEGSTREAM_WEB_TOKEN": TOKEN})
            assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
            with pytest.raises(urllib.error.URLError) as caught:
                urllib.request.urlopen(f"{workers[0].url}/health", timeout=10,
                                       context=ssl.create_default_context())
            assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    finally:
        for worker in workers:
            worker.stop()
    for worker in workers:
        assert TOKEN not in worker.log_path.read_text(errors="replace")
