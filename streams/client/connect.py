"""kafka-python clients built from the settings, and a failed connection told in one
line: what failed, at which broker, and what to change.

kafka-python retries a failed bootstrap until its timeout and then raises only
"Unable to bootstrap"; the cause (a refused password, an untrusted certificate, a
plaintext client on a TLS port) is in the exceptions it logs on the way.
:func:`explained` records those while a client connects and names the cause; where
the cause is only a closed connection, one TLS handshake with the first bootstrap
server tells whether it expected TLS.

>>> reason([ConnectionError("111 ECONNREFUSED")], KafkaConfig(), "127.0.0.1:1")
'connection refused'
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from streams.errors import UserError
from streams.kafka_config import KafkaConfig, load_kafka_config
from streams.settings import Settings

__all__ = ["DEFAULT_BOOTSTRAP", "BrokerUnavailable", "client_settings", "explained", "reason",
           "resolve_settings"]

DEFAULT_BOOTSTRAP = "localhost:9092"

PROBE_TIMEOUT_S = 3.0
KEEP = 50  # the last exceptions kept while connecting


class BrokerUnavailable(UserError):
    """The broker could not be reached or refused us: a user error, in one line."""


def resolve_settings(bootstrap: str | None, kafka_config: Path | None,
                     topic_prefix: str = "") -> Settings:
    """The connection of a command: ``kafka_config`` read once, and the bootstrap servers
    from ``bootstrap``, else the file's ``bootstrap.servers``, else
    ``SEGSTREAM_BOOTSTRAP``, else :data:`DEFAULT_BOOTSTRAP`.

    The file comes before the variable: the credentials in a file belong to its
    cluster, and a variable left in the environment must not send them to another."""
    kafka = KafkaConfig() if kafka_config is None else load_kafka_config(kafka_config)
    servers = (bootstrap or kafka.bootstrap
               or os.environ.get("SEGSTREAM_BOOTSTRAP", DEFAULT_BOOTSTRAP))
    return Settings(bootstrap=servers, kafka=kafka, topic_prefix=topic_prefix)


def client_settings(settings: Settings) -> dict[str, Any]:
    """``bootstrap_servers`` and the security settings of a kafka-python client."""
    return {"bootstrap_servers": settings.bootstrap, **settings.kafka.kafka_python()}


class _Recorder(logging.Handler):
    """The exceptions kafka-python logs (as arguments of its records)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.errors.extend(a for a in args if isinstance(a, BaseException))
        del self.errors[:-KEEP]


@contextlib.contextmanager
def explained(settings: Settings, action: str = "reach Kafka") -> Iterator[None]:
    """Turn a kafka-python ``KafkaError`` raised inside into a :class:`BrokerUnavailable`
    whose one line says ``cannot <action> at <bootstrap>`` and why."""
    from kafka.errors import KafkaError

    logger = logging.getLogger("kafka")
    recorder = _Recorder()
    saved = logger.level, logger.propagate
    if logger.getEffectiveLevel() > logging.WARNING:
        # silenced (the commands print one line of their own): record, do not show
        logger.setLevel(logging.WARNING)
        logger.propagate = False
    logger.addHandler(recorder)
    try:
        yield
    except KafkaError as exc:
        raise BrokerUnavailable(message(settings, action, [*recorder.errors, exc])) from None
    finally:
        logger.removeHandler(recorder)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def message(settings: Settings, action: str, errors: Sequence[BaseException]) -> str:
    config = settings.kafka
    how = "" if config.source is None else f" ({config.describe()}; {config.source})"
    return (f"cannot {action} at {settings.bootstrap}{how}: "
            f"{reason(errors, config, settings.bootstrap)}")


def _text(exc: BaseException) -> str:
    """The message of ``exc`` without kafka-python's ``[Error N] Name: Name:`` head."""
    text = str(exc.args[0]) if exc.args else ""
    name = type(exc).__name__
    while text.startswith(f"{name}: "):
        text = text[len(name) + 2:]
    return text


def reason(errors: Sequence[BaseException], config: KafkaConfig, bootstrap: str) -> str:
    """The cause of a failed connection, from the most telling of ``errors``."""
    from kafka import errors as kafka_errors

    texts = [f"{type(e).__name__} {e}" for e in errors]

    def find(*needles: str) -> str | None:
        return next((t for t in reversed(texts) if any(n in t for n in needles)), None)

    for exc in reversed(errors):
        if isinstance(exc, kafka_errors.SaslAuthenticationFailedError):
            return f"the broker refused the credentials: {_text(exc) or type(exc).__name__}"
        if isinstance(exc, kafka_errors.AuthorizationError):
            return f"not authorized: {type(exc).__name__} (see the ACLs in README, Security)"
    if find("UnsupportedSaslMechanism"):
        return f"the broker does not enable SASL mechanism {config.mechanism} on this listener"
    if find("IllegalSaslState"):
        return (f"the listener does not expect SASL: security.protocol is {config.protocol}, "
                "is the listener PLAINTEXT or SSL?")
    if (found := find("CERTIFICATE_VERIFY_FAILED")) is not None:
        detail = found.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip()
        if "mismatch" in detail:
            return (f"the broker's certificate does not name the host it was reached at "
                    f"({detail}); ssl.endpoint.identification.algorithm= (empty) skips "
                    "that check")
        return (f"the broker's TLS certificate is not trusted ({detail}): give the CA "
                "that signed it as ssl.truststore.location or ssl.ca.location")
    if (found := find("ALERT_BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "ALERT_UNKNOWN_CA",
                      "ALERT_HANDSHAKE_FAILURE")) is not None:
        if not config.client_certificate:
            return ("the broker refused the TLS connection: it requires a client "
                    "certificate (ssl.keystore.location, or ssl.certificate.location and "
                    "ssl.key.location)")
        return "the broker refused the client certificate (is it signed by a CA it trusts?)"
    if config.protocol.endswith("SSL") and find("Handshake failed", "WRONG_VERSION_NUMBER",
                                                "UNEXPECTED_EOF", "record layer failure"):
        return (f"no TLS on this port: security.protocol is {config.protocol}, is the "
                "listener PLAINTEXT or SASL_PLAINTEXT?")
    if find("socket disconnected", "InvalidReceiveError", "ECONNRESET"):
        if not config.protocol.endswith("SSL") and speaks_tls(bootstrap):
            return (f"the broker expects TLS on this port: security.protocol is "
                    f"{config.protocol}, set SSL or SASL_SSL (--kafka-config)")
        if config.sasl:  # TLS (if any) went through: the SASL exchange did not
            return ("the broker closed the connection during SASL authentication: a wrong "
                    f"user or password, or {config.mechanism} not enabled on this listener?")
        return (f"the broker closed the connection: does security.protocol "
                f"({config.protocol}) match the listener?")
    if find("ECONNREFUSED", "Connection refused"):
        return "connection refused"
    if find("DNS Resolution failure", "gaierror"):
        return "the host name does not resolve"
    return type(errors[-1]).__name__ if errors else "no answer"


def speaks_tls(bootstrap: str) -> bool:
    """Whether the first of ``bootstrap`` completes a TLS handshake (not verified: this
    only names the cause of a failure)."""
    host, _, port = bootstrap.split(",")[0].strip().rpartition(":")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((host.strip("[]"), int(port)), PROBE_TIMEOUT_S) as raw, \
                context.wrap_socket(raw, server_hostname=host.strip("[]")):
            return True
    except (OSError, ValueError):
        return False
