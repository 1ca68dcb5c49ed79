"""Creating and checking the contract's topics with kafka-python's admin client."""

from __future__ import annotations

import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from streams.settings import INTERACTIONS, OUTPUT_TOPICS, Settings

__all__ = ["BrokerUnavailable", "ensure_topics", "partition_count"]

log = logging.getLogger(__name__)


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached: a user error, reported in one line."""


def admin(settings: Settings, timeout_ms: int = 10_000) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(bootstrap_servers=settings.bootstrap,
                                client_id=f"{settings.app_id}-admin",
                                request_timeout_ms=timeout_ms)
    except KafkaError as exc:
        raise BrokerUnavailable(
            f"cannot reach Kafka at {settings.bootstrap}: {type(exc).__name__}") from exc


def partition_count(client: KafkaAdminClient, topic: str) -> int | None:
    described = client.describe_topics([topic])
    for entry in described:
        # kafka-python 3 names the topic "name" (2.x: "topic")
        if topic in (entry.get("name"), entry.get("topic")) and not entry.get("error_code"):
            return len(entry.get("partitions") or []) or None
    return None


# A dead letter carries its record in base64 (4/3 of the size): room for any record a
# broker with a default limit (1 MB) accepted, and more.
DEAD_LETTER_MAX_BYTES = 8 * 1024 * 1024


def _configs(name: str) -> dict[str, str]:
    if name == "interactions-dlq":
        return {"max.message.bytes": str(DEAD_LETTER_MAX_BYTES)}
    return {}


def ensure_topics(settings: Settings) -> int:
    """Create missing topics; return the partition count of ``interactions``.

    The changelog of the customer table is created here too, co-partitioned with
    ``interactions`` (same count) and compacted, before Faust needs it.
    """
    client = admin(settings)
    try:
        existing = set(client.list_topics())
        source = settings.topic(INTERACTIONS)
        partitions = settings.partitions
        if source in existing:
            partitions = partition_count(client, source) or partitions
        wanted = [NewTopic(source, partitions, 1)]
        wanted += [NewTopic(settings.topic(name), partitions, 1,
                            topic_configs=_configs(name)) for name in OUTPUT_TOPICS]
        wanted.append(NewTopic(settings.changelog_topic, partitions, 1,
                               topic_configs={"cleanup.policy": "compact"}))
        missing = [t for t in wanted if t.name not in existing]
        for topic in missing:
            try:
                client.create_topics([topic])
                log.info("created topic %s (%d partitions)", topic.name, partitions)
            except TopicAlreadyExistsError:
                pass
        changelog = partition_count(client, settings.changelog_topic)
        if changelog is not None and changelog != partitions:
            raise SystemExit(
                f"segstream: {settings.changelog_topic} has {changelog} partitions but "
                f"{source} has {partitions}; they must match (delete the changelog)")
        return partitions
    finally:
        client.close()
