"""The closed HTTP API without a broker: the token middleware on a real aiohttp server,
token files, TLS files, the loopback warning, and the clients' one-line refusals.

The worker's own server is checked in tests/integration/test_web_auth.py."""

from __future__ import annotations

import asyncio
import http.server
import io
import json
import logging
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientConnectionError, web
from aiohttp.test_utils import TestClient, TestServer

from streams.cli import main
from streams.client.worker_api import WebAccess, get_json
from streams.errors import UserError
from streams.kafka_config import Secret
from streams.settings import Settings
from streams.web_auth import check, client_context, middleware, read_token, server_context
from tests.kafka_tools import segstream_command, throwaway_tls

TOKEN = "s3cr3t-web-token-4f1c"
METRICS = "scrape-token-77a0"

Answer = tuple[int, dict[str, str], Any]


async def _ask(token: str | None, metrics_token: str | None,
               requests: Sequence[tuple[str, str | None]]) -> list[Answer]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    async def forward(request: web.Request) -> web.Response:
        raise ClientConnectionError("Cannot connect to host 127.0.0.1:1")

    app = web.Application(middlewares=[middleware(
        None if token is None else Secret(token),
        None if metrics_token is None else Secret(metrics_token))])
    for path in ("/health", "/stats", "/metrics", "/profile/{customer}", "/table/{name}/"):
        app.router.add_get(path, ok)
    app.router.add_get("/forward", forward)
    answers: list[Answer] = []
    async with TestClient(TestServer(app)) as client:
        for path, authorization in requests:
            headers = {} if authorization is None else {"Authorization": authorization}
            response = await client.get(path, headers=headers)
            body = (await response.json() if response.content_type == "application/json"
                    else await response.text())
            answers.append((response.status, dict(response.headers), body))
    return answers


def ask(token: str | None, metrics_token: str | None,
        requests: Sequence[tuple[str, str | None]]) -> list[Answer]:
    return asyncio.run(_ask(token, metrics_token, requests))


def test_with_a_token_every_path_but_health_needs_it() -> None:
    paths = ["/stats", "/profile/c1", "/table/customers/", "/nowhere"]
    answers = ask(TOKEN, None, [("/health", None)]
                  + [(p, None) for p in paths]
                  + [(p, "Bearer wrong") for p in paths]
                  + [(p, f"Bearer {TOKEN}") for p in paths]
                  + [("/stats", f"bearer {TOKEN}"), ("/stats", f"Basic {TOKEN}"),
                     ("/stats", "Bearer "), ("/stats", f"Bearer {TOKEN}x"),
                     ("/stats", "Bearer s3cr3t-wéb")])
    health, rest = answers[0], answers[1:]
    assert health[0] == 200 and health[2] == {"path": "/health"}
    missing, wrong, right = rest[:4], rest[4:8], rest[8:12]
    for status, headers, body in missing:
        assert status == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
        assert headers["Content-Type"].startswith("application/json")
        assert body == {"error": "this worker needs a bearer token "
                                 "(Authorization: Bearer <token>)"}
    for status, headers, body in wrong:
        assert status == 403 and "WWW-Authenticate" not in headers
        assert body == {"error": "the token is not this worker's"}
    assert [a[0] for a in right] == [200, 200, 200, 404]  # past the check, then routed
    assert [a[0] for a in rest[12:]] == [200, 401, 401, 403, 403]
    assert all(TOKEN not in json.dumps(body) for _, _, body in answers)


def test_a_request_that_cannot_be_forwarded_is_a_502_in_json() -> None:
    for token in (TOKEN, None):
        [(code, _, body)] = ask(token, None, [("/forward", f"Bearer {TOKEN}")])
        assert (code, body) == (502, {"error": "could not forward the request to the worker "
                                      "that owns the key: Cannot connect to host 127.0.0.1:1"})


def test_metrics_are_open_unless_they_have_a_token_of_their_own() -> None:
    open_metrics = ask(TOKEN, None, [("/metrics", None), ("/stats", None)])
    assert [a[0] for a in open_metrics] == [200, 401]
    closed = ask(TOKEN, METRICS, [("/metrics", None), ("/metrics", f"Bearer {TOKEN}"),
                                  ("/metrics", f"Bearer {METRICS}"),
                                  ("/stats", f"Bearer {METRICS}"),
                                  ("/stats", f"Bearer {TOKEN}")])
    assert [a[0] for a in closed] == [401, 403, 200, 403, 200]
    # a metrics token alone closes /metrics only
    assert [a[0] for a in ask(None, METRICS, [("/metrics", None), ("/stats", None)])] == [
        401, 200]
    # and no token at all leaves everything as it was
    assert [a[0] for a in ask(None, None, [("/stats", None), ("/profile/x", "Bearer x")])] \
        == [200, 200]


def test_tokens_from_flags_and_files_and_their_errors(tmp_path: Path) -> None:
    assert read_token(None, None, "web-token") is None
    assert read_token("", None, "web-token") is None
    given = read_token(TOKEN, None, "web-token")
    assert given == TOKEN and isinstance(given, Secret) and TOKEN not in repr(given)
    file = tmp_path / "token"
    file.write_text(f"{TOKEN}\n")
    assert read_token(None, file, "web-token") == TOKEN

    def refused(value: str | None, path: Path | None) -> str:
        with pytest.raises(UserError) as caught:
            read_token(value, path, "web-token")
        assert TOKEN not in str(caught.value) and "\n" not in str(caught.value)
        return str(caught.value)

    assert refused(TOKEN, file) == ("give --web-token (SEGSTREAM_WEB_TOKEN) or "
                                    "--web-token-file, not both")
    assert refused(None, tmp_path / "nope") == (
        f"cannot read --web-token-file {tmp_path / 'nope'}: No such file or directory")
    (tmp_path / "empty").write_text("\n")
    assert refused(None, tmp_path / "empty") == f"--web-token-file {tmp_path / 'empty'} is empty"
    assert refused(f"{TOKEN} x", None) == ("the token in --web-token must be printable "
                                           "ASCII without spaces")


def test_settings_and_their_repr_never_show_a_token() -> None:
    settings = Settings(web_token=Secret(TOKEN), metrics_token=Secret(METRICS))
    assert TOKEN not in repr(settings) and METRICS not in repr(settings)
    assert TOKEN not in str(settings)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throw-away CA and a certificate for 127.0.0.1 and localhost (openssl)."""
    return throwaway_tls(tmp_path_factory.mktemp("web-tls") / "tls")


def test_tls_files_are_checked_in_one_line_naming_the_file(tls: Path, tmp_path: Path) -> None:
    # broker.pem holds the key, then the certificate and its chain
    assert isinstance(server_context(tls / "broker.pem", None), ssl.SSLContext)
    assert isinstance(server_context(tls / "client.pem", tls / "client.key"), ssl.SSLContext)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")

    def refused(cert: Path, key: Path | None) -> str:
        with pytest.raises(UserError) as caught:
            server_context(cert, key)
        return str(caught.value)

    assert refused(tmp_path / "no.pem", None) == (
        f"cannot read --web-cert {tmp_path / 'no.pem'}: No such file or directory")
    assert refused(tls / "client.pem", tmp_path / "no.key") == (
        f"cannot read --web-key {tmp_path / 'no.key'}: No such file or directory")
    assert refused(garbage, None).startswith(
        f"cannot use --web-cert {garbage} as a PEM certificate and key (")
    # a key that is not the certificate's
    assert refused(tls / "client.pem", tls / "ca.key").startswith(
        f"cannot use --web-cert {tls / 'client.pem'} and --web-key {tls / 'ca.key'}")
    with pytest.raises(UserError, match=f"cannot use --web-ca {garbage} as PEM"):
        client_context(garbage)
    with pytest.raises(UserError, match="needs --web-cert"):
        check(Settings(web_key=tls / "client.key"))


def test_an_api_others_can_reach_without_a_token_is_a_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="streams.web_auth"):
        for host in ("127.0.0.1", "localhost", "::1"):
            check(Settings(web_host=host))
        assert caplog.records == []
        check(Settings(web_host="0.0.0.0", web_token=Secret(TOKEN)))
        assert caplog.records == []
        check(Settings(web_host="0.0.0.0", web_port=7001))
        check(Settings(web_host="10.1.2.3"))
    assert [r.getMessage() for r in caplog.records] == [
        f"the HTTP API on {host} is open to anyone who reaches it, and serves customers' "
        "profiles: give --web-token (README, Security: HTTP API)"
        for host in ("0.0.0.0:7001", "10.1.2.3:6066")]


def test_a_worker_bound_beyond_loopback_without_a_token_warns_in_one_line(
        tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"

    def start(*flags: str) -> list[str]:
        """What the worker says before it stops at the definitions file, which it reads
        after its web settings and before it connects."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSTREAM_")}
        done = subprocess.run([*segstream_command(), "worker", "--definitions", str(missing),
                               "--data-dir", str(tmp_path / "data"), *flags],
                              capture_output=True, text=True, timeout=60, env=env)
        lines = done.stderr.splitlines()
        assert done.returncode == 2 and lines[-1] == (
            f"segstream: error: {missing}: no such definitions file"), done.stderr
        return lines[:-1]

    assert start("--web-host", "0.0.0.0") == [
        "WARNING streams.web_auth: the HTTP API on 0.0.0.0:6066 is open to anyone who "
        "reaches it, and serves customers' profiles: give --web-token (README, Security: "
        "HTTP API)"]
    assert start("--web-host", "0.0.0.0", "--web-token", TOKEN) == []
    assert start("--web-host", "127.0.0.1") == []


class _Worker(http.server.BaseHTTPRequestHandler):
    """A stand-in for a worker's API with a token: answers as the middleware does."""

    def do_GET(self) -> None:  # http.server calls it by this name
        authorization = self.headers.get("Authorization")
        status = (401 if authorization is None else
                  403 if authorization != f"Bearer {TOKEN}" else 200)
        body = json.dumps({"partitions": {}} if self.path in ("/models", "/clusters")
                          else {"path": self.path}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def worker(request: pytest.FixtureRequest, tls: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Worker)
    scheme = "http"
    if getattr(request, "param", "http") == "https":
        server.socket = server_context(tls / "broker.pem", None).wrap_socket(
            server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


def test_clients_send_the_token_and_say_in_one_line_when_refused(
        worker: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("SEGSTREAM_WEB_TOKEN", raising=False)
    assert get_json(worker, "/stats", access=WebAccess(Secret(TOKEN))) == {"path": "/stats"}
    for command in (["profile", "c1"], ["models"], ["clusters"]):
        code, err = run(*command, "--worker", worker, "--format", "json")
        assert (code, err) == (2, f"segstream: error: the worker at {worker} needs a token: "
                               "give --web-token, --web-token-file or SEGSTREAM_WEB_TOKEN\n")
        code, err = run(*command, "--worker", worker, "--web-token", "nope")
        assert (code, err) == (2, f"segstream: error: the worker at {worker} refused the "
                               "token (--web-token)\n")
        assert run(*command, "--worker", worker, "--web-token", TOKEN, "--format",
                   "json") == (0, "")
    assert json.loads(capsys.readouterr().out.split("\n}\n")[0] + "}") == {
        "path": "/profile/c1"}
    file = tmp_path / "token"
    file.write_text(TOKEN + "\n")
    assert run("models", "--worker", worker, "--web-token-file", str(file)) == (0, "")
    monkeypatch.setenv("SEGSTREAM_WEB_TOKEN", TOKEN)
    assert run("clusters", "--worker", worker) == (0, "")
    tls_address = worker.replace("http:", "https:")
    code, err = run("clusters", "--worker", tls_address)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.endswith("it does not answer in TLS; is its address http://...?\n"), err


@pytest.mark.parametrize("worker", ["https"], indirect=True)
def test_clients_of_a_tls_worker_trust_the_ca_they_are_given(
        worker: str, tls: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGSTREAM_WEB_TOKEN", TOKEN)
    assert run("models", "--worker", worker, "--web-ca", str(tls / "ca.pem")) == (0, "")
    code, err = run("models", "--worker", worker)  # the system's CAs do not know this one
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"segstream: error: cannot reach the worker at {worker} (")
    assert err.endswith("give the CA that signed its certificate as --web-ca\n"), err
    plain = worker.replace("https:", "http:")
    code, err = run("models", "--worker", plain)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"segstream: error: cannot reach the worker at {plain} ("), err
    assert err.endswith("if it serves TLS (--web-cert), its address is https://...\n"), err
    code, err = run("models", "--worker", worker, "--web-ca", str(tmp_path / "none.pem"))
    assert (code, err) == (2, "segstream: error: cannot read --web-ca "
                           f"{tmp_path / 'none.pem'}: No such file or directory\n")
