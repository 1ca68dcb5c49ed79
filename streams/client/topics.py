"""Creating and checking the contract's topics with kafka-python's admin client:
``segstream topics create|describe``, and what the worker ensures before it starts."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic, OffsetSpec
from kafka.errors import AuthorizationError, KafkaError, TopicAlreadyExistsError
from kafka.structs import TopicPartition

from segments.records import DEAD_LETTERS, INTERACTIONS, OUTPUT_TOPICS
from streams.client.connect import BrokerUnavailable, client_settings, explained, message
from streams.errors import UserError
from streams.settings import Settings

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["BrokerUnavailable", "TopicInfo", "connect_admin", "describe_topics", "ensure_topics",
           "format_topics", "partition_count", "topics_table", "wait_until_described"]

log = logging.getLogger(__name__)


CONNECT_TIMEOUT_MS = 10_000  # an unreachable broker is reported after this long
COORDINATOR_PATIENCE_S = 15.0  # a fresh cluster's group coordinator comes up within this


def connect_admin(settings: Settings, client_id: str, *, timeout_ms: int = 10_000,
                  connect_timeout_ms: int = CONNECT_TIMEOUT_MS) -> KafkaAdminClient:
    """An admin client of ``settings.bootstrap``; :class:`BrokerUnavailable` if none
    answers or the broker refuses the connection."""
    with explained(settings):
        return KafkaAdminClient(**client_settings(settings), client_id=client_id,
                                request_timeout_ms=timeout_ms,
                                bootstrap_timeout_ms=connect_timeout_ms)


def admin(settings: Settings) -> KafkaAdminClient:
    return connect_admin(settings, f"{settings.app_id}-admin")


def partition_count(client: KafkaAdminClient, topic: str) -> int | None:
    """How many partitions ``topic`` has; ``None`` when it does not exist."""
    described = client.describe_topics([topic])
    for entry in described:
        # kafka-python 3 names the topic "name" (2.x: "topic")
        if topic in (entry.get("name"), entry.get("topic")) and not entry.get("error_code"):
            return len(entry.get("partitions") or []) or None
    return None


def wait_until_described(client: KafkaAdminClient, topics: list[str], *,
                         timeout: float = 10.0) -> None:
    """Return once every topic of ``topics`` is described with its partitions. A topic
    the controller has just created can be missing from the broker's metadata for a
    moment, and a `segstream replay` right after `segstream topics create` then saw
    "does not exist"."""
    deadline = time.monotonic() + timeout
    pending = list(topics)
    while True:
        pending = [name for name in pending if partition_count(client, name) is None]
        if not pending:
            return
        if time.monotonic() >= deadline:
            raise UserError(f"topic {pending[0]} was created but is still not visible "
                            f"after {timeout:.0f} s")
        time.sleep(0.05)


# A dead letter carries its record in base64 (4/3 of the size): room for any record a
# broker with a default limit (1 MB) accepted, and more.
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024


def _configs(name: str) -> dict[str, str]:
    if name == DEAD_LETTERS:
        return {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES)}
    return {}


def ensure_topics(settings: Settings) -> int:
    """Create missing topics; return the partition count of ``interactions``.

    The changelog of the customer table is created here too, co-partitioned with
    ``interactions`` (same count) and compacted, before Faust needs it. A changelog
    that exists with another partition count is a :class:`UserError`.
    """
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        source = settings.topic(INTERACTIONS)
        partitions = settings.partitions
        if source in existing:
            partitions = partition_count(client, source) or partitions
        replicas = settings.replication_factor
        wanted = [NewTopic(source, partitions, replicas)]
        wanted += [NewTopic(settings.topic(name), partitions, replicas,
                            topic_configs=_configs(name)) for name in OUTPUT_TOPICS]
        wanted.append(NewTopic(settings.changelog_topic, partitions, replicas,
                               topic_configs={"cleanup.policy": "compact"}))
        missing = [t for t in wanted if t.name not in existing]
        for topic in missing:
            try:
                client.create_topics([topic])
                log.info("created topic %s (%d partitions)", topic.name, partitions)
            except TopicAlreadyExistsError:
                pass
            except KafkaError as exc:  # e.g. more replicas than brokers
                if isinstance(exc, AuthorizationError):
                    raise BrokerUnavailable(message(settings, f"create topic {topic.name}",
                                                    [exc])) from None
                match = re.search(r"error_message='([^']*)'", str(exc))
                reason = match.group(1) if match else type(exc).__name__
                raise UserError(f"cannot create topic {topic.name} at {settings.bootstrap}: "
                                f"{reason}") from exc
        wait_until_described(client, [t.name for t in missing])
        changelog = partition_count(client, settings.changelog_topic)
        if changelog is not None and changelog != partitions:
            raise UserError(
                f"{settings.changelog_topic} has {changelog} partitions but "
                f"{source} has {partitions}; they must match (delete the changelog)")
        return partitions
    finally:
        client.close()


@dataclass
class TopicInfo:
    """One topic as `segstream topics describe` shows it."""

    name: str
    exists: bool
    partitions: int = 0
    records: int = 0  # end offset minus start offset, over partitions
    bytes: int = 0  # on the brokers' disks
    configs: dict[str, str] = field(default_factory=dict)  # set on the topic
    lag: int | None = None  # the worker's consumer group, for interactions


def describe_topics(settings: Settings) -> list[TopicInfo]:
    """The contract's topics and the state changelog: sizes, configs, consumer lag."""
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        names = [settings.topic(INTERACTIONS), *(settings.topic(n) for n in OUTPUT_TOPICS),
                 settings.changelog_topic]
        infos = [TopicInfo(name, name in existing) for name in names]
        present = [i for i in infos if i.exists]
        sizes: dict[str, int] = {}
        for broker in client.describe_log_dirs():
            for log_dir in broker.get("log_dirs", []):
                for topic in log_dir.get("topics", []):
                    sizes[topic["name"]] = sizes.get(topic["name"], 0) + sum(
                        p.get("partition_size", 0) for p in topic.get("partitions", []))
        for info in present:
            count = partition_count(client, info.name) or 0
            tps = [TopicPartition(info.name, p) for p in range(count)]
            ends = client.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
            starts = client.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
            info.partitions = count
            info.records = sum(ends[tp].offset - starts[tp].offset for tp in tps)
            info.bytes = sizes.get(info.name, 0)
            described = client.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, info.name)])
            info.configs = {k: str(v.get("value") if isinstance(v, dict) else v)
                            for k, v in (described.get("topic", {}).get(info.name)
                                         or {}).items()}
            if info.name == settings.topic(INTERACTIONS):
                committed = _committed_offsets(client, settings.app_id)
                if committed:
                    info.lag = sum(ends[tp].offset - committed[tp].offset
                                   for tp in tps if tp in committed)
        return infos
    except KafkaError as exc:
        raise BrokerUnavailable(message(settings, "describe topics", [exc])) from None
    finally:
        client.close()


def _committed_offsets(client: KafkaAdminClient, group: str, *,
                       patience_s: float = COORDINATOR_PATIENCE_S) -> dict[Any, Any]:
    """``group``'s committed offsets, waiting out a retriable error: on a fresh cluster
    the first coordinator lookup creates ``__consumer_offsets`` and answers
    CoordinatorNotAvailable until its partitions have leaders."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            return client.list_group_offsets({group: None}).get(group, {})
        except KafkaError as exc:
            if not exc.retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def format_topics(infos: list[TopicInfo]) -> str:
    rows = [("topic", "partitions", "records", "bytes", "lag", "configs")]
    for i in infos:
        if not i.exists:
            rows.append((i.name, "-", "-", "-", "-", "missing (segstream topics create)"))
            continue
        configs = " ".join(f"{k}={v}" for k, v in sorted(i.configs.items())) or "-"
        rows.append((i.name, str(i.partitions), f"{i.records:,}", f"{i.bytes:,}",
                     "-" if i.lag is None else f"{i.lag:,}", configs))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    return "\n".join("  ".join(r[c].ljust(widths[c]) if c < 5 else r[c]
                               for c in range(6)).rstrip() for r in rows)


def topics_table(infos: list[TopicInfo]) -> Table:
    """:func:`format_topics` for a terminal: Rich's table, a missing topic in red."""
    from rich.text import Text

    from streams.terminal import table

    rows: list[list[str | Text]] = []
    for i in infos:
        if not i.exists:
            rows.append([Text(i.name, style="missing"), "-", "-", "-", "-",
                         Text("missing (segstream topics create)", style="missing")])
            continue
        configs = " ".join(f"{k}={v}" for k, v in sorted(i.configs.items())) or "-"
        rows.append([i.name, str(i.partitions), f"{i.records:,}", f"{i.bytes:,}",
                     "-" if i.lag is None else f"{i.lag:,}", configs])
    return table(("topic", "partitions", "records", "bytes", "lag", "configs"), rows,
                 right=(1, 2, 3, 4))
