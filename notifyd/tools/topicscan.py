"""Reading a topic from a point in time to its current end, without a consumer group.

The operator tools look at topics (a DLQ, a channel topic) without joining or committing
to any group: the consumer is assigned partitions directly, its ``group.id`` is a fresh
name that never reaches the broker because nothing subscribes or commits.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException, Message, TopicPartition


class ScanTimeout(Exception):
    """A partition did not reach its end within the timeout."""


class UnknownTopic(Exception):
    """The topic does not exist."""


def partitions_of(consumer: Consumer, topic: str, *, timeout: float) -> list[int]:
    """The partition ids of ``topic``; ``UnknownTopic`` if it does not exist."""
    metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        raise UnknownTopic(f"topic {topic!r} does not exist")
    return sorted(metadata.partitions)


def start_offsets(consumer: Consumer, topic: str, partitions: list[int], *,
                  since_ms: int | None, timeout: float) -> list[TopicPartition]:
    """Where to start each partition: its beginning, or its first record at or after ``since_ms``."""
    if since_ms is None:
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions]
    found = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions], timeout=timeout)
    # -1 means no record that new: start at the end.
    return [TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_END) for tp in found]


def read_to_end(reader_config: Mapping[str, Any], topic: str, *, since_ms: int | None = None,
                timeout: float) -> Iterator[Message]:
    """Every record of ``topic`` from ``since_ms`` (or the beginning) up to each partition's end.

    ``timeout`` bounds each wait for the broker; a partition that stays silent that long
    before its end raises ``ScanTimeout``. ``reader_config`` comes from
    ``notifyd.config.kafka.topic_reader`` (or ``tool_reader``).
    """
    consumer = Consumer(dict(reader_config))
    try:
        partitions = partitions_of(consumer, topic, timeout=timeout)
        consumer.assign(start_offsets(consumer, topic, partitions, since_ms=since_ms, timeout=timeout))
        yield from _consume_until_eof(consumer, set(partitions), timeout=timeout)
    finally:
        consumer.close()


def _consume_until_eof(consumer: Consumer, pending: set[int], *, timeout: float) -> Iterator[Message]:
    last_progress = time.monotonic()
    while pending:
        batch = consumer.consume(500, timeout=0.5)
        if batch:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > timeout:
            raise ScanTimeout(f"partitions {sorted(pending)} did not reach their end within {timeout:g}s")
        for message in batch:
            error = message.error()
            if error is None:
                yield message
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
            elif error.fatal() or not error.retriable():
                raise KafkaException(error)
