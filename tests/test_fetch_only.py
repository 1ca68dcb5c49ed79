"""The worker's Kafka client fetches only the partitions Faust reads.

Faust "pauses" a partition by leaving it out of ``getmany``; the client would go on
fetching it, and one fetched-but-unread record (a model checkpoint on the models
changelog) held back every fetch from the broker for 100 ms. ``_fetch_only`` turns
Faust's pause into the client's own.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP

from streams.faust_internals import ConsumerThread as _ConsumerThread

STREAM_0, STREAM_1 = TopicPartition("interactions", 0), TopicPartition("interactions", 1)
CHANGELOG = TopicPartition("segstream-models-changelog", 0)


def test_the_client_pauses_what_faust_does_not_read_and_resumes_it() -> None:
    async def scenario() -> list[set[TopicPartition]]:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")  # never started
        try:
            consumer.assign([STREAM_0, STREAM_1, CHANGELOG])
            thread = object.__new__(_ConsumerThread)
            seen = []
            # Faust hands over its own TP tuples; they must match the client's
            for active in ({TP("interactions", 0), TP("interactions", 1)},  # after recovery
                           {TP("interactions", 0), TP("interactions", 1)},  # unchanged
                           {TP("segstream-models-changelog", 0)},  # recovering again
                           {TP("interactions", 1)}):  # partition 0's buffer is full
                thread._fetch_only(consumer, active)
                seen.append(set(consumer.paused()))
            return seen
        finally:
            await consumer.stop()

    paused = asyncio.run(scenario())
    assert paused == [{CHANGELOG}, {CHANGELOG}, {STREAM_0, STREAM_1}, {STREAM_0, CHANGELOG}]
