"""The commands on a secured broker: SASL_SSL (SCRAM-SHA-256, SCRAM-SHA-512, PLAIN),
mutual TLS, one-way TLS and SASL_PLAINTEXT, as a user that may do only what the ACLs
of ``streams/client/acls.py`` grant, and every way a connection can be refused as one
line with exit code 2.

One broker for the module (``KAFKA_SECURE=1 scripts/kafka.sh``: its own CA,
certificates and SCRAM users, in a temporary run directory) on six consecutive free
ports, or from ``SEGSTREAM_SECURE_KAFKA_PORT`` on; the suite's shared broker is not
touched. Its PLAINTEXT listener (a super user) only grants the ACLs.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
)

from streams.client.acls import grants
from streams.kafka_config import load_kafka_config
from streams.settings import Settings
from tests.kafka_tools import (
    RECORD_TOPICS,
    ROOT,
    START,
    assert_same_records,
    consume,
    free_port,
    free_ports,
    kafka_script,
    offline_records,
    running_worker,
    segstream_command,
    wait_committed,
    write_simulated_log,
)

HANG = 30.0  # a failure that takes longer than this counts as a hang


@dataclass(frozen=True)
class SecureBroker:
    port: int
    run: Path

    def address(self, offset: int = 0) -> str:
        """0: PLAINTEXT, 2: SASL_SSL, 3: mTLS, 4: SASL_PLAINTEXT, 5: TLS."""
        return f"127.0.0.1:{self.port + offset}"

    def properties(self, name: str) -> Path:
        """A client.properties file kafka.sh wrote (sasl-ssl-scram-sha-256, admin...)."""
        return self.run / "client" / f"{name}.properties"

    def client(self, name: str) -> dict[str, Any]:
        return load_kafka_config(self.properties(name)).kafka_python()

    def secrets(self) -> list[str]:
        return [line.split("=", 1)[1] for line in
                (self.run / "secure.env").read_text().splitlines()]

    def grant(self, settings: Settings, *commands: str,
              skip: tuple[str, str] | None = None) -> None:
        """Allow user segstream (SCRAM, or the client certificate CN=segstream) what
        ``commands`` need: streams.client.acls, less ``skip`` (resource, operation)."""
        acls = []
        for command in commands:
            for grant in grants(command, settings):
                pattern = ResourcePattern(
                    ResourceType[grant.resource.upper()], grant.name,
                    ACLResourcePatternType.PREFIXED if grant.prefixed
                    else ACLResourcePatternType.LITERAL)
                acls += [ACL("User:segstream", "*", ACLOperation[_enum(op)],
                             ACLPermissionType.ALLOW, pattern)
                         for op in grant.operations if (grant.resource, op) != skip]
        admin = KafkaAdminClient(bootstrap_servers=self.address())
        try:
            assert admin.create_acls(acls)["failed"] == []
        finally:
            admin.close()


def _enum(operation: str) -> str:
    return {"DescribeConfigs": "DESCRIBE_CONFIGS"}.get(operation, operation.upper())


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    port = int(os.environ.get("SEGSTREAM_SECURE_KAFKA_PORT") or free_ports(6))
    run = tmp_path_factory.mktemp("secure-kafka") / "run"
    env = {"KAFKA_SECURE": "1", "KAFKA_RUN_DIR": str(run)}
    kafka_script("start", port, **env)
    try:
        yield SecureBroker(port, run)
    finally:
        kafka_script("reset", port, **env)


def segstream(*args: str | Path, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*segstream_command(), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def ok(*args: str | Path) -> str:
    done = segstream(*args)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout


def write_properties(path: Path, **entries: str) -> Path:
    path.write_text("".join(f"{key.replace('_', '.')}={value}\n"
                            for key, value in entries.items()))
    return path


def test_the_pipeline_over_sasl_ssl_as_a_least_privileged_user_equals_the_offline_replay(
        broker: SecureBroker, prefix: str, tmp_path: Path) -> None:
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=40, days=30, seed=53, start=START)
    offline = offline_records(log_path, partitions=3)
    settings = Settings(topic_prefix=prefix)
    scram256, scram512 = (broker.properties(f"sasl-ssl-scram-sha-{n}") for n in (256, 512))
    connection = ("--topic-prefix", prefix)
    # each command as user segstream, its grants added just before it first runs
    broker.grant(settings, "topics create")
    ok("topics", "create", "--kafka-config", scram512, *connection)
    broker.grant(settings, "worker")
    outputs: list[str] = []
    with running_worker(broker.address(2), prefix, tmp_path, "--clock", "event",
                        "--partitions", "3", "--kafka-config", str(scram256),
                        "--loglevel", "debug") as worker:
        broker.grant(settings, "replay")
        outputs.append(ok("replay", log_path, "--kafka-config",
                          broker.properties("sasl-ssl-plain"), "--no-progress", *connection))
        client = broker.client("sasl-ssl-scram-sha-512")
        wait_committed(broker.address(2), f"{prefix}segstream", f"{prefix}interactions",
                       timeout=120, **client)
        broker.grant(settings, "tail")
        records = consume(broker.address(2), [f"{prefix}{t}" for t in RECORD_TOPICS],
                          count=len(offline), timeout=60, settle=2.0, **client)
        moments = [v for t, _, v in records if t == f"{prefix}micro-moments"]
        tailed = ok("tail", "micro-moments", "--from-beginning", "--count", str(len(moments)),
                    "--idle", "20", "--format", "json", "--kafka-config", scram512,
                    *connection)
        broker.grant(settings, "topics describe")
        described = ok("topics", "describe", "--format", "json", "--kafka-config", scram256,
                       *connection)
        outputs += [tailed, described, worker.get_text("/health"), worker.get_text("/stats"),
                    worker.get_text("/metrics")]
    worker_log = worker.log_path.read_text(errors="replace")
    assert "Authenticated as segstream via SCRAM-SHA-256" in worker_log  # aiokafka's

    assert_same_records(records, offline)
    assert sorted(tailed.splitlines()) == sorted(m.decode() for m in moments)
    interactions = next(t for t in json.loads(described) if t["name"] == f"{prefix}interactions")
    assert (interactions["records"], interactions["lag"]) == (len(lines), 0)
    for secret in broker.secrets():
        assert secret not in worker_log
        assert not [out for out in outputs if secret in out]


def test_exactly_once_over_sasl_ssl_with_only_the_transactional_grants(
        broker: SecureBroker, prefix: str, tmp_path: Path) -> None:
    """The transactional producers connect as the worker's user and need no more than
    acls.py's exactly-once rows; a read_committed consumer sees each output once."""
    log_path = tmp_path / "log.jsonl"
    write_simulated_log(log_path, customers=12, days=20, seed=67, start=START)
    offline = offline_records(log_path, partitions=3)
    settings = Settings(topic_prefix=prefix, guarantee="exactly-once")
    scram512 = broker.properties("sasl-ssl-scram-sha-512")
    ok("topics", "create", "--kafka-config", broker.properties("admin"), "--topic-prefix",
       prefix)
    broker.grant(settings, "worker --guarantee exactly-once", "replay", "tail")
    with running_worker(broker.address(2), prefix, tmp_path, "--clock", "event",
                        "--partitions", "3", "--kafka-config", str(scram512),
                        "--guarantee", "exactly-once"):
        ok("replay", log_path, "--kafka-config", scram512, "--no-progress",
           "--topic-prefix", prefix)
        client = broker.client("sasl-ssl-scram-sha-512")
        wait_committed(broker.address(2), f"{prefix}segstream", f"{prefix}interactions",
                       timeout=120, **client)
        records = consume(broker.address(2), [f"{prefix}{t}" for t in RECORD_TOPICS],
                          count=len(offline), timeout=60, settle=2.0, **client)
    assert_same_records(records, offline)
    assert len(records) == len(offline)  # read_committed: not one repeat


def test_mutual_tls_one_way_tls_and_sasl_plaintext(broker: SecureBroker, prefix: str,
                                                   tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    tls = broker.run / "tls"
    settings = Settings(topic_prefix=prefix)
    connection = ("--topic-prefix", prefix)
    ok("topics", "create", "--kafka-config", broker.properties("admin"), *connection)
    broker.grant(settings, "replay", "topics describe")
    log_path = tmp_path / "log.jsonl"
    lines = write_simulated_log(log_path, customers=5, days=3, seed=59, start=START)
    # the client certificate in librdkafka's keys, beside kafka.sh's Java ones
    mtls = write_properties(tmp_path / "mtls.properties", bootstrap_servers=broker.address(3),
                            security_protocol="SSL", ssl_ca_location=str(tls / "ca.pem"),
                            ssl_certificate_location=str(tls / "client.pem"),
                            ssl_key_location=str(tls / "client.key"))
    ok("replay", log_path, "--kafka-config", mtls, "--no-progress", *connection)
    described = json.loads(ok("topics", "describe", "--format", "json", "--kafka-config",
                              broker.properties("mtls"), *connection))
    assert described[0]["records"] == len(lines)
    described = json.loads(ok("topics", "describe", "--format", "json", "--kafka-config",
                              broker.properties("tls"), *connection))
    assert described[0]["records"] == len(lines)
    # SASL_PLAINTEXT as admin, its password from the environment
    monkeypatch.setenv("TEST_KAFKA_PASSWORD", broker.secrets()[1])
    admin = write_properties(tmp_path / "admin.properties", security_protocol="SASL_PLAINTEXT",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username="admin",
                             sasl_password="${env:TEST_KAFKA_PASSWORD}")
    got = consume(broker.address(4), [f"{prefix}interactions"], count=len(lines),
                  timeout=30, **load_kafka_config(admin).kafka_python())
    assert sorted(v for _, _, v in got) == sorted(v for _, v in lines)


def test_each_refused_connection_is_one_line_exit_2_and_no_hang(
        broker: SecureBroker, prefix: str, tmp_path: Path) -> None:
    scram256 = broker.properties("sasl-ssl-scram-sha-256")
    wrong = {n: tmp_path / f"wrong-{n}.properties" for n in (256, 512)}
    for n, path in wrong.items():
        text = broker.properties(f"sasl-ssl-scram-sha-{n}").read_text()
        path.write_text(text.replace(broker.secrets()[0], "not-the-password"))
    subprocess.run(["bash", str(ROOT / "scripts" / "kafka-tls.sh"), str(tmp_path / "other")],
                   check=True)
    unknown_ca = tmp_path / "unknown-ca.properties"
    unknown_ca.write_text(scram256.read_text().replace(str(broker.run / "tls" / "ca.pem"),
                                                       str(tmp_path / "other" / "ca.pem")))
    bad_key = tmp_path / "bad-key.properties"
    bad_key.write_text("security.protocol=SASL_SSL\n# a typo\nsasl.mechansim=PLAIN\n")
    bad_value = write_properties(tmp_path / "bad-value.properties",
                                 security_protocol="SASL_TLS")
    log_path = tmp_path / "log.jsonl"
    write_simulated_log(log_path, customers=2, days=1, seed=61, start=START)
    # a worker whose user may not read its group: the check before Faust names it
    ok("topics", "create", "--kafka-config", broker.properties("admin"), "--topic-prefix",
       prefix)
    broker.grant(Settings(topic_prefix=prefix), "worker", skip=("group", "Read"))
    # an exactly-once worker granted only what an at-least-once one needs
    eos = f"{prefix}eos-"
    ok("topics", "create", "--kafka-config", broker.properties("admin"), "--topic-prefix", eos)
    broker.grant(Settings(topic_prefix=eos), "worker")

    def worker(config: Path, *extra: str) -> list[str | Path]:
        return ["worker", "--kafka-config", config, "--data-dir", tmp_path / str(free_port()),
                "--web-port", str(free_port()), *extra]

    tls, plain, sasl_ssl, mtls = (broker.properties("tls"), broker.address(0),
                                  broker.address(2), broker.address(3))
    cases: list[tuple[str, list[str | Path], str]] = [
        ("wrong password", ["topics", "describe", "--kafka-config", wrong[512]],
         f"at {sasl_ssl} (SASL_SSL, SCRAM-SHA-512 as segstream; {wrong[512]}): the broker "
         "refused the credentials: Authentication failed during authentication due to "
         "invalid credentials with SASL mechanism SCRAM-SHA-512"),
        ("wrong password, worker", worker(wrong[256]), "the broker refused the credentials"),
        ("unknown CA", ["replay", log_path, "--kafka-config", unknown_ca],
         f"at {sasl_ssl} (SASL_SSL, SCRAM-SHA-256 as segstream; {unknown_ca}): the broker's "
         "TLS certificate is not trusted (self-signed certificate in certificate chain)"),
        ("plaintext client on the TLS port", ["tail", "micro-moments", "--bootstrap", sasl_ssl],
         f"cannot reach Kafka at {sasl_ssl}: the broker expects TLS on this port: "
         "security.protocol is PLAINTEXT, set SSL or SASL_SSL"),
        ("no client certificate on mTLS", ["topics", "create", "--kafka-config", tls,
                                           "--bootstrap", mtls],
         f"at {mtls} (SSL; {tls}): the broker refused the TLS connection: it requires a "
         "client certificate"),
        ("TLS client on the plaintext port", ["topics", "describe", "--kafka-config", tls,
                                              "--bootstrap", plain],
         f"at {plain} (SSL; {tls}): no TLS on this port"),
        ("SASL client on a plaintext listener", ["simulate", "--kafka", "--customers", "1",
                                                 "--days", "1", "--kafka-config",
                                                 broker.properties("sasl-plaintext"),
                                                 "--bootstrap", plain],
         f"at {plain} (SASL_PLAINTEXT, SCRAM-SHA-256 as segstream; "
         f"{broker.properties('sasl-plaintext')}): the listener does not expect SASL"),
        ("a missing ACL", worker(scram256, "--topic-prefix", prefix),
         f"user segstream lacks Read on group {prefix}segstream at {sasl_ssl}"),
        ("no transactional-id ACL", worker(scram256, "--topic-prefix", eos, "--guarantee",
                                           "exactly-once"),
         f"user segstream lacks Write on transactional ids {eos}segstream-* (prefixed); "
         f"Describe on transactional ids {eos}segstream-* (prefixed) at {sasl_ssl}"),
        ("no such configuration file", worker(tmp_path / "absent.properties"),
         f"{tmp_path / 'absent.properties'}: no such Kafka client configuration file"),
        ("a bad key", ["replay", log_path, "--kafka-config", bad_key],
         f"{bad_key}:3: sasl.mechansim: not a Kafka client setting (did you mean "
         "sasl.mechanism?)"),
        ("a bad value", ["tail", "segment-changes", "--kafka-config", bad_value],
         f"{bad_value}:1: security.protocol: must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
         "SASL_SSL, not 'SASL_TLS'"),
    ]

    def run(case: tuple[str, list[str | Path], str]) -> tuple[str, float, Any]:
        started = time.monotonic()
        try:
            done: Any = segstream(*case[1], timeout=HANG)
        except subprocess.TimeoutExpired:
            done = None
        return case[0], time.monotonic() - started, done

    with ThreadPoolExecutor(4) as pool:  # most of each is kafka-python's retrying
        results = list(pool.map(run, cases))
    for (name, elapsed, done), (_, _, expected) in zip(results, cases, strict=True):
        assert done is not None, f"{name}: no answer within {HANG:.0f} s"
        lines = done.stderr.strip().splitlines()
        assert (done.returncode, len(lines)) == (2, 1), (name, done.stderr)
        assert lines[0].startswith("segstream: error: "), (name, lines[0])
        if name.startswith("wrong password") and "during SASL authentication" in lines[0]:
            # kafka-python sometimes reports only the closed connection, not the broker's
            # answer (seen in CI, loaded or not): the cause is then named less exactly
            expected = "the broker closed the connection during SASL authentication"
        assert expected in lines[0], (name, lines[0])
        assert "Traceback" not in done.stderr
        assert not [s for s in broker.secrets() if s in done.stderr + done.stdout], name
        print(f"{name} ({elapsed:.1f} s): {lines[0]}")
