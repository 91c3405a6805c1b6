"""The test broker itself: the suite's Kafka tests stand on it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.kafka


def test_produce_and_read_back(kafka, unique) -> None:
    topic = unique("smoke")
    kafka.create_topics(topic, partitions=2)
    for index in range(10):
        kafka.produce(topic, f"m{index}".encode(), key=b"k", headers=[("h", b"\x00\xff")])
    kafka.flush()
    messages = kafka.read(topic, 10)
    assert sorted(m.value() for m in messages) == sorted(f"m{i}".encode() for i in range(10))
    assert messages[0].headers() == [("h", b"\x00\xff")]
