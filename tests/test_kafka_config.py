"""client.properties files read into kafka-python's and Faust's settings: each key
form, each refusal as one line naming file:line and key, and no secret shown.

Certificates come from scripts/kafka-tls.sh (openssl) once per module; the JKS
truststore from keytool (the JDK the local broker needs anyway), the PKCS12 store from
openssl.
"""

from __future__ import annotations

import logging
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from streams.client.connect import reason, resolve_settings
from streams.kafka_config import KafkaConfig, KafkaConfigError, Secret, load_kafka_config
from tests.kafka_tools import ROOT

PASSWORD = "pa\"ss;w0rd'"  # quotes and a semicolon: a JAAS value must not be split by them
JAAS = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
        "username=\"segstream\" password=\"${env:TEST_KAFKA_PASSWORD}\";")


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls") / "tls"
    subprocess.run(["bash", str(ROOT / "scripts" / "kafka-tls.sh"), str(folder)], check=True)
    (folder / "client-keystore.pem").write_bytes((folder / "client.key").read_bytes()
                                                 + (folder / "client.pem").read_bytes())
    subprocess.run(["openssl", "pkey", "-in", folder / "client.key", "-aes256", "-passout",
                    "pass:keypass", "-out", folder / "client-encrypted.key"], check=True)
    return folder


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], KafkaConfig]:
    monkeypatch.setenv("TEST_KAFKA_PASSWORD", PASSWORD)

    def read(text: str) -> KafkaConfig:
        path = tmp_path / "client.properties"
        path.write_text(text)
        return load_kafka_config(path)

    return read


def refused(load: Callable[[str], KafkaConfig], text: str) -> str:
    with pytest.raises(KafkaConfigError) as caught:
        load(text)
    message = str(caught.value)
    assert "\n" not in message and PASSWORD not in message and "keypass" not in message
    return message.split("client.properties", 1)[1]


def test_sasl_ssl_scram_in_kafkas_own_keys(load: Callable[[str], KafkaConfig],
                                           tls: Path) -> None:
    config = load(f"bootstrap.servers=b1:9096,b2:9096\nsecurity.protocol=SASL_SSL\n"
                  f"sasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config={JAAS}\n"
                  f"ssl.truststore.type=PEM\nssl.truststore.location={tls / 'ca.pem'}\n")
    assert (config.protocol, config.mechanism, config.username, config.password,
            config.bootstrap) == ("SASL_SSL", "SCRAM-SHA-512", "segstream", PASSWORD,
                                  "b1:9096,b2:9096")
    kwargs = config.kafka_python()
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert (kwargs["sasl_mechanism"], kwargs["sasl_plain_username"],
            kwargs["sasl_plain_password"]) == ("SCRAM-SHA-512", "segstream", PASSWORD)
    context = kwargs["ssl_context"]
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "segstream test CA"),),)]
    credentials = config.faust()["broker_credentials"]
    assert (type(credentials).__name__, credentials.protocol.value, credentials.mechanism.value,
            credentials.password, credentials.ssl_context) == (
        "SASLCredentials", "SASL_SSL", "SCRAM-SHA-512", PASSWORD, context)


def test_librdkafka_keys_plain_and_the_system_cas(load: Callable[[str], KafkaConfig]) -> None:
    config = load("security.protocol=sasl_ssl\nsasl.mechanisms=PLAIN\nsasl.username=key\n"
                  "sasl.password=${env:TEST_KAFKA_PASSWORD}\n")
    assert (config.mechanism, config.username, config.password) == ("PLAIN", "key", PASSWORD)
    assert config.ssl_context is not None and config.ssl_context.get_ca_certs() != []


def test_sasl_plaintext_has_no_tls(load: Callable[[str], KafkaConfig]) -> None:
    config = load(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\n"
                  f"sasl.jaas.config={JAAS}\n")
    assert "ssl_context" not in config.kafka_python()
    credentials = config.faust()["broker_credentials"]
    assert (credentials.protocol.value, credentials.ssl_context) == ("SASL_PLAINTEXT", None)


def test_mutual_tls_from_a_pem_keystore_or_separate_files(load: Callable[[str], KafkaConfig],
                                                          tls: Path) -> None:
    keystore = load(f"security.protocol=SSL\nssl.truststore.location={tls / 'ca.pem'}\n"
                    f"ssl.keystore.type=PEM\nssl.keystore.location={tls / 'client-keystore.pem'}\n")
    files = load(f"security.protocol=SSL\nssl.ca.location={tls / 'ca.pem'}\n"
                 f"ssl.certificate.location={tls / 'client.pem'}\n"
                 f"ssl.key.location={tls / 'client-encrypted.key'}\nssl.key.password=keypass\n")
    for config in (keystore, files):
        assert config.client_certificate and config.describe() == "SSL, with a client certificate"
        credentials = config.faust()["broker_credentials"]
        assert (type(credentials).__name__, credentials.context) == (
            "SSLCredentials", config.ssl_context)
        assert "sasl_mechanism" not in config.kafka_python()


def test_no_host_name_check(load: Callable[[str], KafkaConfig], tls: Path) -> None:
    config = load(f"security.protocol=SSL\nssl.ca.location={tls / 'ca.pem'}\n"
                  "ssl.endpoint.identification.algorithm=\n")
    assert config.ssl_context is not None and not config.ssl_context.check_hostname
    assert config.ssl_context.verify_mode == ssl.CERT_REQUIRED  # still verified


def test_the_default_is_plaintext(load: Callable[[str], KafkaConfig]) -> None:
    config = load("# nothing but a comment\nbootstrap.servers=k:9092\n")
    assert (config.kafka_python(), config.faust(), config.bootstrap) == (
        {"security_protocol": "PLAINTEXT"}, {}, "k:9092")


@pytest.mark.parametrize(("text", "message"), [
    ("security.protocol=SASL_SSL\nsasl.mechansim=PLAIN\n",
     ":2: sasl.mechansim: not a Kafka client setting (did you mean sasl.mechanism?)"),
    ("ssl.keystore.key=x\n", ":1: ssl.keystore.key: a Kafka security setting segstream "
     "does not support (see README, Security)"),
    ("security.protocol=TLS\n", ":1: security.protocol: must be one of PLAINTEXT, SSL, "
     "SASL_PLAINTEXT, SASL_SSL, not 'TLS'"),
    ("security.protocol=SASL_SSL\nsecurity.protocol=SSL\n",
     ":2: security.protocol is given twice (first on line 1)"),
    ("security.protocol=SSL\nsasl.mechanism=PLAIN\n", ":2: sasl.mechanism: set, but "
     "security.protocol is SSL: SASL needs SASL_SSL or SASL_PLAINTEXT"),
    ("sasl.jaas.config=x\n", ":1: sasl.jaas.config: set, but security.protocol is not set "
     "(PLAINTEXT): SASL needs SASL_SSL or SASL_PLAINTEXT"),
    ("security.protocol=SASL_PLAINTEXT\nssl.ca.location=ca.pem\nsasl.mechanism=PLAIN\n",
     ":2: ssl.ca.location: set, but security.protocol is SASL_PLAINTEXT: TLS needs SSL or "
     "SASL_SSL"),
    ("security.protocol=SASL_SSL\n", ":1: security.protocol: needs sasl.mechanism: PLAIN, "
     "SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default, GSSAPI, is not supported)"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=OAUTHBEARER\n", ":2: sasl.mechanism: "
     "'OAUTHBEARER' is not supported: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\n", ":1: security.protocol: needs a "
     "user name and password: sasl.jaas.config, or sasl.username and sasl.password"),
    (f"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config={JAAS}\n"
     "sasl.username=x\n", ":4: sasl.username: give sasl.jaas.config (line 3) or "
     "sasl.username and sasl.password, not both"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.mechanisms=PLAIN\n",
     ":3: sasl.mechanisms: give sasl.mechanism (line 2) or this, not both"),
    (f"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config={JAAS[:-1]} "
     "tokenauth=true;\n", ":3: sasl.jaas.config: option tokenauth is not supported (only "
     "username and password)"),
    (f"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config={JAAS} extra\n",
     ":3: sasl.jaas.config: cannot read the text after option password: quote each value, "
     "and end the entry with ';' (one login module only)"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=x.PlainLoginModule "
     "required username=a;\n", ":3: sasl.jaas.config: PlainLoginModule has no password option"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\n"
     "sasl.password=${env:NO_SUCH_VARIABLE_HERE}\n", ":4: sasl.password: the environment "
     "variable NO_SUCH_VARIABLE_HERE is not set"),
    ("security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.username=u\n"
     "sasl.password=${file:/etc/secrets:pw}\n", ":4: sasl.password: only ${env:NAME} "
     "variables are read here, not ${file:...}"),
    ("security.protocol=SSL\nssl.endpoint.identification.algorithm=none\n",
     ":2: ssl.endpoint.identification.algorithm: must be https or empty, not 'none'"),
    ("security.protocol=SSL\nssl.ca.location=/no/such/ca.pem\n",
     ":2: ssl.ca.location: no such file /no/such/ca.pem"),
    ("a=\\u12\n", ":1: an invalid \\u escape"),
])
def test_a_bad_file_is_one_line_naming_the_line_and_key(
        load: Callable[[str], KafkaConfig], text: str, message: str) -> None:
    assert refused(load, text) == message


def test_bad_certificates_and_keys(load: Callable[[str], KafkaConfig], tls: Path) -> None:
    ssl_ca = f"security.protocol=SSL\nssl.ca.location={tls / 'ca.pem'}\n"
    assert refused(load, f"security.protocol=SSL\nssl.ca.location={tls / 'client.key'}\n") == (
        ":2: ssl.ca.location: no CA certificate in PEM form in it (no certificate or crl "
        "found)")
    assert refused(load, ssl_ca + f"ssl.certificate.location={tls / 'client.pem'}\n"
                   f"ssl.key.location={tls / 'client-encrypted.key'}\n") == (
        ":3: ssl.certificate.location: the private key is encrypted: set ssl.key.password")
    assert refused(load, ssl_ca + f"ssl.certificate.location={tls / 'client.pem'}\n"
                   f"ssl.key.location={tls / 'client-encrypted.key'}\n"
                   "ssl.key.password=wrong\n").startswith(
        ":3: ssl.certificate.location: no certificate with its private key in PEM form, or "
        "a wrong ssl.key.password")
    assert refused(load, ssl_ca + f"ssl.certificate.location={tls / 'client.pem'}\n"
                   f"ssl.key.location={tls / 'ca.key'}\n") == (
        ":3: ssl.certificate.location: no certificate with its private key in PEM form, or "
        "a wrong ssl.key.password (key values mismatch)")
    assert refused(load, ssl_ca + f"ssl.key.location={tls / 'client.key'}\n") == (
        ":3: ssl.key.location: set, but no ssl.certificate.location")


def test_a_jks_or_pkcs12_store_says_how_to_export_pem(load: Callable[[str], KafkaConfig],
                                                      tls: Path, tmp_path: Path) -> None:
    jks, p12 = tmp_path / "trust.jks", tmp_path / "client.p12"
    subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file",
                    tls / "ca.pem", "-keystore", jks, "-storetype", "JKS", "-storepass",
                    "changeit"], check=True, capture_output=True)
    subprocess.run(["openssl", "pkcs12", "-export", "-in", tls / "client.pem", "-inkey",
                    tls / "client.key", "-out", p12, "-passout", "pass:changeit"], check=True)
    assert refused(load, f"security.protocol=SSL\nssl.truststore.location={jks}\n"
                   "ssl.truststore.password=changeit\n") == (
        ":2: ssl.truststore.location: a JKS store is read only by Java: give the CA "
        "certificate as PEM (keytool -exportcert -rfc -alias ALIAS -keystore FILE -file "
        "ca.pem) with ssl.truststore.type=PEM")
    assert refused(load, f"security.protocol=SSL\nssl.keystore.location={p12}\n"
                   "ssl.keystore.type=PKCS12\n") == (
        ":2: ssl.keystore.location: a PKCS12 store is read only by Java: give the key and "
        "the certificate as PEM (openssl pkcs12 -in FILE.p12 -nodes -out client.pem) with "
        "ssl.keystore.type=PEM")


def test_a_kafka_setting_segstream_ignores_is_a_warning(load: Callable[[str], KafkaConfig],
                                                        caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    with caplog.at_level(logging.WARNING, "streams.kafka_config"):
        config = load("acks=all\nclient.id=mine\nconfig.providers=env\n")
    assert config.protocol == "PLAINTEXT"
    assert [r.getMessage().split("client.properties", 1)[1] for r in caplog.records] == [
        ":1: acks: a Kafka client setting segstream does not take from this file (ignored)",
        ":2: client.id: a Kafka client setting segstream does not take from this file "
        "(ignored)"]


def test_secrets_stay_out_of_reprs_and_kafka_pythons_debug_log(
        load: Callable[[str], KafkaConfig], caplog: pytest.LogCaptureFixture) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    config = load(f"security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                  f"sasl.jaas.config={JAAS}\n")
    shown = [repr(config), repr(config.kafka_python()), repr(config.faust()),
             config.describe(), repr(Secret(PASSWORD))]
    assert not [text for text in shown if PASSWORD in text]
    with caplog.at_level(logging.DEBUG, "kafka"), pytest.raises(KafkaError):
        # kafka-python logs its whole configuration at debug level
        KafkaAdminClient(bootstrap_servers="127.0.0.1:1", bootstrap_timeout_ms=300,
                         **config.kafka_python())
    assert any("sasl_plain_password" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if PASSWORD in r.getMessage()]


def test_the_files_bootstrap_comes_before_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "client.properties"
    path.write_text("bootstrap.servers=cluster-a:9092\n")
    monkeypatch.setenv("SEGSTREAM_BOOTSTRAP", "cluster-b:9092")
    assert resolve_settings(None, path).bootstrap == "cluster-a:9092"
    assert resolve_settings("cluster-c:9092", path).bootstrap == "cluster-c:9092"
    assert resolve_settings(None, None).bootstrap == "cluster-b:9092"


def test_a_host_name_mismatch_is_named() -> None:
    from kafka.errors import KafkaConnectionError

    error = KafkaConnectionError("Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] "
                                 "certificate verify failed: IP address mismatch, certificate "
                                 "is not valid for '10.0.0.1'. (_ssl.c:1006)")
    assert reason([error], KafkaConfig(protocol="SSL"), "10.0.0.1:9093") == (
        "the broker's certificate does not name the host it was reached at (IP address "
        "mismatch, certificate is not valid for '10.0.0.1'.); "
        "ssl.endpoint.identification.algorithm= (empty) skips that check")


def test_a_missing_store_is_a_missing_file(load: Callable[[str], KafkaConfig]) -> None:
    assert refused(load, "security.protocol=SSL\nssl.truststore.location=/no/trust.jks\n") == (
        ":2: ssl.truststore.location: no such file /no/trust.jks")


def test_a_connection_closed_during_sasl_names_the_credentials_not_the_protocol() -> None:
    from kafka.errors import KafkaConnectionError

    closed = KafkaConnectionError("socket disconnected")
    sasl = KafkaConfig(protocol="SASL_SSL", mechanism="SCRAM-SHA-512", username="ann")
    assert reason([closed], sasl, "10.0.0.1:9093") == (
        "the broker closed the connection during SASL authentication: a wrong user or "
        "password, or SCRAM-SHA-512 not enabled on this listener?")
    assert reason([closed], KafkaConfig(protocol="SSL"), "10.0.0.1:9093") == (
        "the broker closed the connection: does security.protocol (SSL) match the listener?")
