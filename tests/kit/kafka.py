"""Small helpers over confluent-kafka for tests: topics, producing, reading back."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.kit.wait import wait_until

# librdkafka defaults make a group join take ~25 s on the test broker (shared/BROKER.md).
# Test groups only: a killed member's partitions move after 3 s, not 45 s. Apache Kafka refuses a
# session under its group.min.session.timeout.ms (6 s by default); Tansu takes it. Production keeps its own.
FAST_GROUP = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 500}
# The session the rebalance figures in docs/ledger.md were measured with.
FIGURES_GROUP = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


class KafkaKit:
    """One producer and admin client against the test broker."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})

    def create_topics(self, *names: str, partitions: int = 1) -> None:
        futures = self.admin.create_topics([NewTopic(n, num_partitions=partitions) for n in names])
        for name, future in futures.items():
            try:
                future.result(timeout=15)
            except KafkaException as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
        wait_until(lambda: self._listed(names), timeout=15, what=f"topics {list(names)} in the broker's metadata")

    def _listed(self, names: Iterable[str]) -> bool:
        topics = self.admin.list_topics(timeout=5).topics
        return all(n in topics and not topics[n].error for n in names)

    def produce(self, topic: str, value: bytes | str, *, key: bytes | str | None = None,
                headers: list[tuple[str, bytes]] | None = None, partition: int | None = None,
                timestamp: int | None = None) -> None:
        kwargs = {"key": key, "headers": headers}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp is not None:
            kwargs["timestamp"] = timestamp
        self.producer.produce(topic, value, **kwargs)
        self.producer.poll(0)

    def flush(self) -> None:
        remaining = self.producer.flush(30)
        assert remaining == 0, f"{remaining} messages not delivered"

    def read(self, topic: str, count: int, *, timeout: float = 30.0) -> list[Message]:
        """Read ``count`` messages of ``topic`` from the beginning, without a group commit."""
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": f"reader.{topic}.{time.monotonic_ns()}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_GROUP,
        })
        metadata = self.admin.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, 0) for p in metadata.partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        try:
            while len(messages) < count and time.monotonic() < deadline:
                for message in consumer.consume(500, timeout=0.5):
                    if message.error() is None:
                        messages.append(message)
        finally:
            consumer.close()
        return messages

    def committed(self, group: str, topic: str, partitions: int = 1) -> list[int]:
        """The group's committed offset of each partition (-1001 when none)."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, **FAST_GROUP})
        try:
            offsets = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
            return [tp.offset for tp in offsets]
        finally:
            consumer.close()

    def close(self) -> None:
        self.producer.flush(10)
