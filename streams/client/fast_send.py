"""The broker replay's fast send path: records straight into kafka-python's
accumulator, skipping ``KafkaProducer.send``'s per-call overhead."""

from __future__ import annotations

from typing import Any

__all__ = ["keyed_sender"]


def keyed_sender(producer: Any, topic: str, fast: bool = True) -> tuple[Any, bool]:
    """``send(key, value, partition) -> future`` for ``topic``, and whether it is fast.

    The fast one appends straight to kafka-python's record accumulator, as
    ``KafkaProducer.send`` does after its per-call checks, logging and partitioning
    (about a third of its cost; those checks hold here by construction: bytes key and
    value, no headers, a known topic and partition). It relies on kafka-python 3
    internals, so it is used only when they look exactly as expected; otherwise, or
    with ``fast=False``, it is plain ``KafkaProducer.send``.
    """
    import inspect

    from kafka.errors import MessageSizeTooLargeError
    from kafka.record.default_records import DefaultRecordBatchBuilder
    from kafka.structs import TopicPartition

    def plain(key: bytes, value: bytes, partition: int) -> Any:
        return producer.send(topic, value=value, key=key, partition=partition)

    accumulator = getattr(producer, "_accumulator", None)
    sender = getattr(producer, "_sender", None)
    try:
        parameters = list(inspect.signature(accumulator.append).parameters)  # type: ignore[union-attr]
    except (TypeError, ValueError, AttributeError):
        parameters = []
    usable = (fast and parameters[:5] == ["tp", "timestamp_ms", "key", "value", "headers"]
              and callable(getattr(sender, "wakeup", None))
              and getattr(producer, "_transaction_manager", None) is None
              and producer.config.get("compression_type") is None)
    partitions = producer.partitions_for(topic)  # also makes the sender track the topic
    if not usable or not partitions:
        return plain, False
    append = accumulator.append  # type: ignore[union-attr]
    wakeup = sender.wakeup  # type: ignore[union-attr]
    tps = {p: TopicPartition(topic, p) for p in partitions}
    headers: list[tuple[str, bytes]] = []  # shared, never mutated
    limit = int(producer.config["max_request_size"])
    estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes
    small = limit - 1024  # below this no estimate is needed

    def send(key: bytes, value: bytes, partition: int) -> Any:
        if len(value) + len(key) > small and estimate(key, value, headers) > limit:
            raise MessageSizeTooLargeError(
                f"the record is {len(value):,} bytes, more than max_request_size {limit:,}")
        future, full, new_batch, _ = append(tps[partition], None, key, value, headers)
        if full or new_batch:
            wakeup()
        return future

    return send, True
