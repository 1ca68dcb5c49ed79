"""The least privilege each command needs on a cluster with an authorizer: the ACLs to
grant the worker's principal (README, Security), as ``kafka-acls.sh`` commands.

The tests grant exactly these to the secured test broker's ``segstream`` user and run
the worker and the tools as that user (tests/integration/test_secure_kafka.py), so the
list is what the code needs, not a guess. Before it starts Faust, the worker asks the
broker what its principal may do on each of these (:func:`check_access`): a missing
grant is one line naming it, where Faust would wait forever to join its group.

>>> print(kafka_acls(WORKER, Settings(topic_prefix="prod-"), "User:segstream")[1])
$acl --operation Read --operation Describe --topic prod-interactions
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from segments.records import INTERACTIONS, OUTPUT_TOPICS
from streams.client.connect import explained
from streams.client.group import COORDINATOR_WAIT_S
from streams.errors import UserError
from streams.settings import Settings

__all__ = ["COMMANDS", "WORKER", "WORKER_EXACTLY_ONCE", "Grant", "check_access", "grants",
           "kafka_acls",
           "markdown_table", "missing"]

TOPIC_AUTHORIZATION_FAILED = 29  # Kafka's error code


@dataclass(frozen=True)
class Grant:
    """Operations on one resource (a literal name, or every name with a prefix)."""

    resource: Literal["topic", "group", "cluster", "transactional_id"]
    name: str
    operations: tuple[str, ...]  # Kafka's names: Read, Write, Create, Describe, ...
    prefixed: bool = False


WORKER = "worker"
#: the worker with --guarantee exactly-once: the worker's rights and its transactions'
WORKER_EXACTLY_ONCE = "worker --guarantee exactly-once"
COMMANDS = (WORKER, WORKER_EXACTLY_ONCE, "replay", "tail", "topics create",
            "topics describe")


def grants(command: str, settings: Settings) -> list[Grant]:
    """What ``command`` reads, writes, creates and describes, with ``settings``' prefix."""
    source = settings.topic(INTERACTIONS)
    outputs = [settings.topic(name) for name in OUTPUT_TOPICS]
    # the worker's changelogs and Faust's own topics are all named <app id>-...
    internal = Grant("topic", f"{settings.app_id}-", ("Read", "Write", "Describe", "Create"),
                     prefixed=True)
    if command == WORKER:
        if settings.guarantee == "exactly-once":
            return grants(WORKER_EXACTLY_ONCE, settings)
        return [Grant("topic", source, ("Read", "Describe")),
                *(Grant("topic", name, ("Write", "Describe")) for name in outputs),
                internal,
                Grant("group", settings.app_id, ("Read", "Describe"))]
    if command == WORKER_EXACTLY_ONCE:
        # one transactional producer per input partition: <app id>-<topic>-<partition>
        # (Write covers its idempotent writes: no cluster right since Kafka 3.0)
        return [*grants(WORKER, replace(settings, guarantee="at-least-once")),
                Grant("transactional_id", f"{settings.app_id}-", ("Write", "Describe"),
                      prefixed=True)]
    if command == "replay":
        return [Grant("topic", source, ("Write", "Describe"))]
    if command == "tail":
        return [Grant("topic", name, ("Read", "Describe")) for name in outputs]
    if command == "topics create":
        return [Grant("topic", name, ("Create", "Describe")) for name in [source, *outputs]] + [
            Grant("topic", settings.changelog_topic, ("Create", "Describe"))]
    if command == "topics describe":
        return [*(Grant("topic", name, ("Describe", "DescribeConfigs"))
                  for name in [source, *outputs, settings.changelog_topic]),
                Grant("group", settings.app_id, ("Describe",)),
                Grant("cluster", "kafka-cluster", ("Describe",))]  # the log dirs' sizes
    raise ValueError(f"no such command {command!r}: one of {', '.join(COMMANDS)}")


def kafka_acls(command: str, settings: Settings, principal: str) -> list[str]:
    """Shell lines that grant ``principal`` what ``command`` needs with Kafka's
    ``kafka-acls.sh``, run as an admin (``$BROKER``, ``admin.properties``)."""
    lines = [f'acl="kafka-acls.sh --bootstrap-server $BROKER --command-config '
             f'admin.properties --add --allow-principal {principal}"']
    for grant in grants(command, settings):
        operations = " ".join(f"--operation {op}" for op in grant.operations)
        resource = ("--cluster" if grant.resource == "cluster"
                    else f"--{grant.resource.replace('_', '-')} {grant.name}")
        pattern = " --resource-pattern-type prefixed" if grant.prefixed else ""
        lines.append(f"$acl {operations} {resource}{pattern}")
    return lines


def markdown_table(settings: Settings) -> str:
    """Every command's grants as a Markdown table (README, Security): one row per
    command and set of operations."""
    rows = ["| command | operations | on |", "|---|---|---|"]
    for command in COMMANDS:
        together: dict[tuple[str, ...], list[str]] = {}
        wanted = grants(command, settings)
        if command == WORKER_EXACTLY_ONCE:  # what it needs besides the worker's rights
            wanted = [g for g in wanted if g not in grants(WORKER, settings)]
        for grant in wanted:
            name = "the cluster" if grant.resource == "cluster" else (
                f"{grant.resource.replace('_', ' ')} `{grant.name}`"
                + ("…" if grant.prefixed else ""))
            together.setdefault(grant.operations, []).append(name)
        rows += [f"| `segstream {command}` | {', '.join(operations)} | {', '.join(names)} |"
                 for operations, names in together.items()]
    return "\n".join(rows)


def _operation(name: str) -> str:
    """Kafka's operation name as the protocol's enum spells it: DescribeConfigs ->
    DESCRIBE_CONFIGS."""
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()


def missing(command: str, settings: Settings, client: Any) -> list[str]:
    """What ``command`` needs that the broker says this principal may not do, as
    ``Read on group X``; empty when all is granted (or the broker does not say). The
    topics must exist; a prefixed grant is checked on the state changelog, its one
    topic that exists before Faust starts."""
    wanted = grants(command, settings)
    checks: dict[str, tuple[str, Grant]] = {}  # the topic the grant is checked on
    for grant in wanted:
        if grant.resource == "topic":
            name = settings.changelog_topic if grant.prefixed else grant.name
            checks[name] = (f"topics {grant.name}* (prefixed)" if grant.prefixed
                            else f"topic {grant.name}", grant)
    found: list[str] = []
    described = {entry.get("name") or entry.get("topic"): entry
                 for entry in client.describe_topics(list(checks))}
    for name, (label, grant) in checks.items():
        entry = described.get(name, {})
        if entry.get("error_code") == TOPIC_AUTHORIZATION_FAILED:
            found += [f"{op} on {label}" for op in grant.operations]
        elif (allowed := entry.get("authorized_operations")) is not None:
            found += [f"{op} on {label}" for op in grant.operations
                      if _operation(op) not in allowed]
    for grant in (g for g in wanted if g.resource == "group"):
        allowed = _group_operations(client, grant.name)
        if allowed is not None:
            found += [f"{op} on group {grant.name}" for op in grant.operations
                      if _operation(op) not in allowed]
    for grant in (g for g in wanted if g.resource == "transactional_id"):
        if not _transactions_allowed(settings, f"{grant.name}access-check"):
            found += [f"{op} on transactional ids {grant.name}* (prefixed)"
                      for op in grant.operations]
    return found


def _transactions_allowed(settings: Settings, transactional_id: str) -> bool:
    """Whether this principal may use ``transactional_id``: the broker tells only when
    a producer registers it (InitProducerId). A probe id of its own, so that no
    partition's producer is fenced by the check."""
    from kafka import KafkaProducer
    from kafka.errors import AuthorizationError

    from streams.client.connect import client_settings

    producer = KafkaProducer(**client_settings(settings), transactional_id=transactional_id,
                             client_id="segstream-access-check", max_block_ms=30_000)
    try:
        producer.init_transactions()
    except AuthorizationError:  # on the transactional id (or, an older broker, cluster)
        return False
    finally:
        producer.close(timeout=5)
    return True


def _group_operations(client: Any, group: str) -> list[str] | None:
    """What the principal may do on ``group``; a new cluster makes its group
    coordinator on first use, so a retriable error is retried for a while."""
    from kafka.errors import GroupAuthorizationFailedError, KafkaError

    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        try:
            described = client.describe_groups([group], include_authorized_operations=True)
            operations = (described.get(group) or {}).get("authorized_operations")
            return None if operations is None else list(operations)
        except GroupAuthorizationFailedError:
            return []
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def check_access(settings: Settings, command: str = WORKER) -> None:
    """:class:`~streams.errors.UserError` naming what ``command`` may not do."""
    from streams.client.topics import admin

    client = admin(settings)
    try:
        with explained(settings, f"check the ACLs of `segstream {command}`"):
            lacking = missing(command, settings, client)
    finally:
        client.close()
    if lacking:
        who = (f"user {settings.kafka.username}" if settings.kafka.username
               else "this client's principal")
        raise UserError(f"{who} lacks {'; '.join(lacking)} at {settings.bootstrap}: grant "
                        f"what `segstream {command}` needs (README, Security: ACLs)")
