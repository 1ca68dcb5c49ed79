"""Who may read the worker's HTTP API: bearer tokens, TLS, and the loopback check.

The API serves customers' state (``/profile/<id>``, and Faust's own ``/table/``), so a
worker given ``--web-token`` answers only requests that carry it, except ``/health``
(for probes and load balancers), ``/dashboard`` (an empty page; its figures need the
token) and ``/metrics`` (Prometheus), which has a token of its
own when ``--metrics-token`` is given. The check is an aiohttp middleware: it runs
before routing, so every route, Faust's included, is closed unless named open here.

>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("::1")
(True, True, True)
>>> is_loopback("0.0.0.0"), is_loopback(""), is_loopback("worker-2")
(False, False, False)
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from streams.errors import UserError
from streams.kafka_config import Secret
from streams.settings import Settings

if TYPE_CHECKING:  # aiohttp is imported by the worker only: the clients start without it
    from aiohttp import web
    from aiohttp.typedefs import Handler, Middleware

__all__ = ["OPEN", "check", "client_context", "forwarding_client", "is_loopback",
           "middleware", "read_token", "server_context"]

log = logging.getLogger(__name__)

#: the paths served without the web token: probes must reach ``/health``; the page
#: ``/dashboard`` holds no figures (it reads ``/dashboard/data`` with the token, which
#: the browser keeps: README, "The live page")
OPEN = frozenset({"/health", "/dashboard"})
METRICS = "/metrics"


def read_token(value: str | None, file: Path | None, flag: str) -> Secret | None:
    """The token given as ``--<flag>`` or in ``--<flag>-file`` (surrounding whitespace
    stripped), or None; errors name the flag or the file, never the token."""
    if value and file is not None:
        raise UserError(f"give --{flag} (SEGSTREAM_{flag.upper().replace('-', '_')}) or "
                        f"--{flag}-file, not both")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise UserError(f"cannot read --{flag}-file {file}: {reason}") from None
        if not text:
            raise UserError(f"--{flag}-file {file} is empty")
        value, where = text, f"--{flag}-file {file}"
    else:
        where = f"--{flag}"
    if not value:
        return None
    if any(not 0x21 <= ord(c) <= 0x7E for c in value):
        # it goes into an HTTP header: printable ASCII, no spaces
        raise UserError(f"the token in {where} must be printable ASCII without spaces")
    return Secret(value)


def _refuse(status: int, message: str) -> web.Response:
    from aiohttp import web

    headers = {"WWW-Authenticate": 'Bearer realm="segstream"'} if status == 401 else {}
    return web.json_response({"error": message}, status=status, headers=headers)


def _presented(request: web.Request) -> bytes | None:
    """The bearer token of the request, or None without one."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip().encode("utf-8", "replace")


def middleware(token: Secret | None, metrics_token: Secret | None) -> Middleware:
    """The aiohttp middleware that closes the API: ``token`` for every path but
    :data:`OPEN` and ``/metrics``, ``metrics_token`` for ``/metrics``; None leaves
    them open. Tokens are compared in constant time."""
    from aiohttp import ClientError, web

    expected = None if token is None else token.encode()
    expected_metrics = None if metrics_token is None else metrics_token.encode()

    def refusal(request: web.Request) -> web.Response | None:
        if request.path in OPEN:
            return None
        required = expected_metrics if request.path == METRICS else expected
        if required is None:
            return None
        presented = _presented(request)
        if presented is None:
            return _refuse(401, "this worker needs a bearer token "
                           "(Authorization: Bearer <token>)")
        if not hmac.compare_digest(presented, required):
            return _refuse(403, "the token is not this worker's")
        return None

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        try:
            return await handler(request)
        except ClientError as exc:  # forwarding to the key's owner failed (Faust: a 500)
            log.warning("could not forward a request to the worker that owns its key: %s",
                        exc)
            return _refuse(502, "could not forward the request to the worker that owns "
                           f"the key: {exc}")

    return check_token


def _readable(path: Path, flag: str) -> None:
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UserError(f"cannot read {flag} {path}: {exc.strerror}") from None


def server_context(cert: Path, key: Path | None) -> ssl.SSLContext:
    """The TLS context of the HTTP API: ``cert`` (PEM, the chain after the server's
    certificate) and ``key`` (PEM; None: the key is in ``cert``)."""
    _readable(cert, "--web-cert")
    if key is not None:
        _readable(key, "--web-key")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        files = f"--web-cert {cert}" + ("" if key is None else f" and --web-key {key}")
        raise UserError(f"cannot use {files} as a PEM certificate and key "
                        f"({exc.reason or exc})") from None
    return context


def client_context(ca: Path | None) -> ssl.SSLContext:
    """What a client of the API trusts: the CA in ``ca`` (PEM), or the system's."""
    if ca is None:
        return ssl.create_default_context()
    _readable(ca, "--web-ca")
    try:
        return ssl.create_default_context(cafile=str(ca))
    except ssl.SSLError as exc:
        raise UserError(f"cannot use --web-ca {ca} as PEM certificates "
                        f"({exc.reason or exc})") from None


def is_loopback(host: str) -> bool:
    """Whether only this machine reaches an API bound to ``host``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def forwarding_client(ca: Path | None) -> Callable[[], object]:
    """What makes the worker's HTTP client (Faust's ``HttpClient``), which forwards a
    profile request to the worker owning the key: over TLS it trusts ``ca`` (None: the
    system's CAs). The request keeps its ``Authorization`` header (Faust passes the
    headers on), and the owner checks it again."""
    context = client_context(ca)

    def session() -> object:
        import aiohttp

        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))

    return session


def check(settings: Settings) -> ssl.SSLContext | None:
    """The worker's web settings, before it connects to anything: unreadable TLS files
    are a :class:`UserError` naming the file, an API that others can reach and no
    token a warning; the server's TLS context, if any."""
    if settings.web_key is not None and settings.web_cert is None:
        raise UserError("--web-key needs --web-cert")
    context = (None if settings.web_cert is None
               else server_context(settings.web_cert, settings.web_key))
    if settings.web_ca is not None:
        client_context(settings.web_ca)
    if settings.web_token is None and not is_loopback(settings.web_host):
        log.warning("the HTTP API on %s:%d is open to anyone who reaches it, and serves "
                    "customers' profiles: give --web-token (README, Security: HTTP API)",
                    settings.web_host or "*", settings.web_port)
    return context
