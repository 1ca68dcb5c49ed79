"""One Kafka client configuration for every command: a ``client.properties`` file with
Kafka's own keys (``--kafka-config FILE``, ``SEGSTREAM_KAFKA_CONFIG``), read once into a
:class:`KafkaConfig` that gives kafka-python's keyword arguments
(:meth:`KafkaConfig.kafka_python`: admin, replay, tail, the demo) and Faust's
(:meth:`KafkaConfig.faust`: the worker, which Faust hands on to aiokafka).

Keys read: ``bootstrap.servers`` (used when no ``--bootstrap``), ``security.protocol``
(PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), ``sasl.mechanism`` (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512) with ``sasl.jaas.config`` (``PlainLoginModule`` or ``ScramLoginModule``,
``username`` and ``password``) or librdkafka's ``sasl.username`` and
``sasl.password``; the CA as ``ssl.truststore.location`` (a PEM file),
``ssl.truststore.certificates`` (PEM text) or ``ssl.ca.location``; a client
certificate as ``ssl.keystore.location`` (a PEM file with the key and the chain) or
``ssl.certificate.location`` and ``ssl.key.location``, with ``ssl.key.password``;
``ssl.endpoint.identification.algorithm`` (``https``, the default, or empty: no
host name check). Any value may hold ``${env:NAME}`` (Kafka's EnvVarConfigProvider
syntax): the secret then stays in the environment.

Other keys of Kafka's clients (``acks``, ``client.id``, ``session.timeout.ms``...) are
ignored with a warning, except ``ssl.*`` and ``sasl.*`` ones, which are errors: a
security setting quietly dropped would connect differently from what the file says.
A key Kafka does not know is an error. Every error is one line naming the file, the
line and the key, and never a value that may be secret; a password is a
:class:`Secret`, whose repr hides it.

One :class:`ssl.SSLContext` serves both libraries, built as aiokafka's
``create_ssl_context`` and kafka-python build theirs (the system's CAs unless one is
given, TLS 1.2 at least, host names checked), and built at load time, so a missing or
unreadable certificate is reported with its line before anything connects.

>>> KafkaConfig().kafka_python()
{'security_protocol': 'PLAINTEXT'}
>>> config = KafkaConfig(protocol="SASL_PLAINTEXT", mechanism="SCRAM-SHA-256",
...                      username="segstream", password=Secret("s3cret"))
>>> config
KafkaConfig(protocol='SASL_PLAINTEXT', mechanism='SCRAM-SHA-256', username='segstream', \
bootstrap=None, source=None)
>>> config.kafka_python()["sasl_plain_password"], str(config.kafka_python()["sasl_plain_password"])
('******', 's3cret')
>>> config.describe()
'SASL_PLAINTEXT, SCRAM-SHA-256 as segstream'
"""

from __future__ import annotations

import difflib
import logging
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.kafka_jaas import parse_jaas
from streams.kafka_keys import KAFKA_CLIENT_KEYS
from streams.kafka_properties import KafkaConfigError, Property, read_properties, resolve

__all__ = ["MECHANISMS", "PROTOCOLS", "KafkaConfig", "KafkaConfigError", "Secret",
           "load_kafka_config"]

log = logging.getLogger(__name__)

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# the keys read here: Kafka's, and librdkafka's names for the same settings
READ = frozenset({
    "bootstrap.servers", "security.protocol", "sasl.mechanism", "sasl.mechanisms",
    "sasl.jaas.config", "sasl.username", "sasl.password", "ssl.truststore.location",
    "ssl.truststore.type", "ssl.truststore.password", "ssl.truststore.certificates",
    "ssl.keystore.location", "ssl.keystore.type", "ssl.keystore.password",
    "ssl.key.password", "ssl.ca.location", "ssl.certificate.location", "ssl.key.location",
    "ssl.endpoint.identification.algorithm",
})
JKS_MAGIC = b"\xfe\xed\xfe\xed"


class Secret(str):
    """A password: itself to the libraries, ``'******'`` in every repr (a logged dict
    of client settings, a dataclass, a traceback's locals)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'******'"


@dataclass(frozen=True, kw_only=True)
class KafkaConfig:
    """How to connect and authenticate; the default is Kafka's: PLAINTEXT."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: Secret | None = field(default=None, repr=False)
    bootstrap: str | None = None  # bootstrap.servers of the file
    source: Path | None = None  # the file
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    client_certificate: bool = field(default=False, repr=False)

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments of kafka-python's clients."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.ssl_context is not None:
            kwargs["ssl_context"] = self.ssl_context
        if self.sasl:
            kwargs.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                          sasl_plain_password=self.password)
        return kwargs

    def faust(self) -> dict[str, Any]:
        """Keyword arguments of ``faust.App``: its ``broker_credentials``."""
        import faust

        if self.sasl:
            return {"broker_credentials": faust.SASLCredentials(
                username=self.username, password=self.password, mechanism=self.mechanism,
                ssl_context=self.ssl_context)}
        if self.ssl_context is not None:
            return {"broker_credentials": faust.SSLCredentials(self.ssl_context)}
        return {}

    def describe(self) -> str:
        """The protocol and identity, for messages: never a secret."""
        parts = [self.protocol]
        if self.sasl:
            parts.append(f"{self.mechanism} as {self.username}")
        if self.client_certificate:
            parts.append("with a client certificate")
        return ", ".join(parts)


def load_kafka_config(path: Path) -> KafkaConfig:
    """The configuration in ``path``; :class:`KafkaConfigError` if it cannot be used."""
    entries: dict[str, Property] = {}
    for entry in read_properties(path):
        _check_key(entry, path)
        entries[entry.key] = entry
    return _Reader(path, entries).config()


def _check_key(entry: Property, path: Path) -> None:
    key = entry.key
    if key in READ or key == "config.providers" or key.startswith("config.providers."):
        return
    if key in KAFKA_CLIENT_KEYS:
        if key.startswith(("ssl.", "sasl.")):
            raise entry.error(path, "a Kafka security setting segstream does not support "
                              "(see README, Security)")
        log.warning("%s:%d: %s: a Kafka client setting segstream does not take from this "
                    "file (ignored)", path, entry.line, key)
        return
    close = difflib.get_close_matches(key, sorted(READ | KAFKA_CLIENT_KEYS), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise entry.error(path, f"not a Kafka client setting{hint}")


class _Reader:
    """The entries of one file, read into a :class:`KafkaConfig`."""

    def __init__(self, path: Path, entries: dict[str, Property]) -> None:
        self.path = path
        self.entries = entries

    def entry(self, *keys: str) -> Property | None:
        """The entry of whichever of ``keys`` (names of one setting) is given."""
        given = [self.entries[k] for k in keys if k in self.entries]
        if len(given) > 1:
            raise given[1].error(self.path, f"give {given[0].key} (line {given[0].line}) "
                                 "or this, not both")
        return given[0] if given else None

    def value(self, entry: Property) -> str:
        return resolve(entry.value, entry, self.path).strip()

    def config(self) -> KafkaConfig:
        protocol_entry = self.entry("security.protocol")
        protocol = "PLAINTEXT"
        if protocol_entry is not None:
            protocol = self.value(protocol_entry).upper()
            if protocol not in PROTOCOLS:
                raise protocol_entry.error(self.path, f"must be one of {', '.join(PROTOCOLS)}, "
                                           f"not {protocol!r}")
        where = (f"security.protocol is {protocol}" if protocol_entry is not None
                 else "security.protocol is not set (PLAINTEXT)")
        self.refuse_unless(protocol.startswith("SASL_"), "sasl.",
                           f"{where}: SASL needs SASL_SSL or SASL_PLAINTEXT")
        self.refuse_unless(protocol.endswith("SSL"), "ssl.",
                           f"{where}: TLS needs SSL or SASL_SSL")
        mechanism = username = None
        password = None
        if protocol.startswith("SASL_"):
            assert protocol_entry is not None  # PLAINTEXT otherwise
            mechanism, username, password = self.sasl(protocol_entry)
        context, certificate = None, False
        if protocol.endswith("SSL"):
            context, certificate = self.tls()
        bootstrap = self.entry("bootstrap.servers")
        return KafkaConfig(protocol=protocol, mechanism=mechanism, username=username,
                           password=password, source=self.path, ssl_context=context,
                           client_certificate=certificate,
                           bootstrap=None if bootstrap is None else self.value(bootstrap))

    def refuse_unless(self, allowed: bool, prefix: str, why: str) -> None:
        if allowed:
            return
        for key, entry in self.entries.items():
            if key.startswith(prefix):
                raise entry.error(self.path, f"set, but {why}")

    def sasl(self, protocol: Property) -> tuple[str, str, Secret]:
        entry = self.entry("sasl.mechanism", "sasl.mechanisms")
        if entry is None:
            raise protocol.error(self.path, "needs sasl.mechanism: PLAIN, SCRAM-SHA-256 or "
                                 "SCRAM-SHA-512 (Kafka's default, GSSAPI, is not supported)")
        mechanism = self.value(entry).upper()
        if mechanism not in MECHANISMS:
            raise entry.error(self.path, f"{mechanism!r} is not supported: PLAIN, "
                              "SCRAM-SHA-256 or SCRAM-SHA-512")
        jaas = self.entry("sasl.jaas.config")
        user, secret = self.entry("sasl.username"), self.entry("sasl.password")
        if jaas is not None:
            other = user or secret
            if other is not None:
                raise other.error(self.path, f"give sasl.jaas.config (line {jaas.line}) or "
                                  "sasl.username and sasl.password, not both")
            username, password = parse_jaas(jaas, self.path)
            return mechanism, username, Secret(password)
        if user is None or secret is None:
            raise protocol.error(self.path, "needs a user name and password: "
                                 "sasl.jaas.config, or sasl.username and sasl.password")
        return mechanism, self.value(user), Secret(self.value(secret))

    def tls(self) -> tuple[ssl.SSLContext, bool]:
        """The context: the CA, the client certificate if any, the host name check."""
        check = self.entry("ssl.endpoint.identification.algorithm")
        check_hostname = True
        if check is not None:
            algorithm = self.value(check).lower()
            if algorithm not in ("https", ""):
                raise check.error(self.path, f"must be https or empty, not {algorithm!r}")
            check_hostname = algorithm == "https"
        cafile, cadata = self.trust()
        trust = self.entry("ssl.truststore.location", "ssl.truststore.certificates",
                           "ssl.ca.location")
        try:
            # as aiokafka.helpers.create_ssl_context: the system's CAs unless one is given
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile,
                                                 cadata=cadata)
        except (ssl.SSLError, OSError, ValueError) as exc:
            assert trust is not None  # the system's CAs load without error
            raise trust.error(self.path, f"no CA certificate in PEM form in it "
                              f"({_reason(exc)})") from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2  # as kafka-python's own
        context.check_hostname = check_hostname
        certificate = self.identity()
        if certificate is not None:
            entry, certfile, keyfile = certificate
            key_password = self.entry("ssl.key.password")
            password = None if key_password is None else Secret(self.value(key_password))
            try:
                context.load_cert_chain(certfile, keyfile, password or _no_password)
            except _EncryptedKey:
                raise entry.error(self.path, "the private key is encrypted: set "
                                  "ssl.key.password") from None
            except (ssl.SSLError, OSError) as exc:
                raise entry.error(self.path, "no certificate with its private key in PEM "
                                  f"form, or a wrong ssl.key.password ({_reason(exc)})"
                                  ) from None
        return context, certificate is not None

    def trust(self) -> tuple[str | None, str | None]:
        """``cafile`` and ``cadata`` of the CA to trust; both ``None``: the system's."""
        entry = self.entry("ssl.truststore.location", "ssl.truststore.certificates",
                           "ssl.ca.location")
        if entry is None:
            return None, None
        if entry.key == "ssl.truststore.certificates":
            return None, self.value(entry)
        if entry.key == "ssl.truststore.location":
            self.pem_store(entry, "ssl.truststore.type", "the CA certificate",
                           "keytool -exportcert -rfc -alias ALIAS -keystore FILE -file "
                           "ca.pem")
        return self.existing(entry), None

    def identity(self) -> tuple[Property, str, str | None] | None:
        """The client certificate's entry, file, and key file (``None``: in that file)."""
        key_entry = self.entry("ssl.key.location")
        entry = self.entry("ssl.keystore.location", "ssl.certificate.location")
        if entry is None:
            if key_entry is not None:
                raise key_entry.error(self.path, "set, but no ssl.certificate.location")
            return None
        if entry.key == "ssl.keystore.location":
            if key_entry is not None:
                raise key_entry.error(self.path, "give ssl.keystore.location (line "
                                      f"{entry.line}) or this, not both")
            self.pem_store(entry, "ssl.keystore.type", "the key and the certificate",
                           "openssl pkcs12 -in FILE.p12 -nodes -out client.pem")
        return entry, self.existing(entry), (None if key_entry is None
                                             else self.existing(key_entry))

    def pem_store(self, entry: Property, type_key: str, what: str, how: str) -> None:
        """Refuse a JKS or PKCS12 store (by its type, or its first bytes)."""
        type_entry = self.entries.get(type_key)
        kind = None if type_entry is None else self.value(type_entry).upper()
        if kind not in (None, "PEM", "JKS", "PKCS12"):
            assert type_entry is not None
            raise type_entry.error(self.path, f"must be PEM, not {kind!r}")
        try:
            head = Path(self.value(entry)).read_bytes()[:65536]
        except OSError:
            return  # existing() says so
        # openssl may write "Bag Attributes" lines before the PEM blocks
        if kind == "PEM" or (kind is None and b"-----BEGIN " in head):
            return
        kind = kind or ("JKS" if head.startswith(JKS_MAGIC) else "PKCS12")
        raise entry.error(self.path, f"a {kind} store is read only by Java: give {what} as "
                          f"PEM ({how}) with {type_key}=PEM")

    def existing(self, entry: Property) -> str:
        file = self.value(entry)
        if not Path(file).is_file():
            raise entry.error(self.path, f"no such file {file}")
        return file


class _EncryptedKey(Exception):
    """The private key needs a password and none was given."""


def _no_password() -> str:
    # without a callback OpenSSL would prompt on the terminal for the pass phrase
    raise _EncryptedKey


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return getattr(exc, "strerror", None) or type(exc).__name__
