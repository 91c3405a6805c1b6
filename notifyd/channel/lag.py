"""``notifyd_consumer_lag`` of one channel process: one series per owned partition, none once revoked.

A partition's lag is its high watermark minus the position the channel would resume
from: the committable offset of work done here, else the consumer's fetch position
(a partition assigned but not yet read from, or idle). A revoked partition's series is
set to ``REMOVED``, which the scrape leaves out; its new owner reports it instead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from notifyd.channel.offsets import OffsetTracker
from notifyd.metrics import REMOVED

INTERVAL = 5.0
RETRY = 0.5  # after an assignment, until every partition has a position and a watermark

Partition = tuple[str, int]


class LagGauge:
    """Updates the lag of the owned partitions every ``INTERVAL`` seconds, and soon after an assignment."""

    def __init__(self, gauge: Any, channel: str) -> None:
        self._gauge, self._channel = gauge, channel
        self._next = 0.0

    def assigned(self) -> None:
        self._next = 0.0

    def removed(self, partitions: Iterable[Partition]) -> None:
        """Drop the series of partitions this process no longer owns."""
        for topic, partition in partitions:
            self._gauge.labels(self._channel, topic, str(partition)).set(REMOVED)

    def maybe_update(self, consumer: Consumer, tracker: OffsetTracker, owned: list[Partition]) -> None:
        """Set every owned partition's lag if it is due."""
        now = time.monotonic()
        if now < self._next:
            return
        complete = self.update(consumer, tracker, owned)
        self._next = now + (INTERVAL if complete else RETRY)

    def update(self, consumer: Consumer, tracker: OffsetTracker, owned: list[Partition]) -> bool:
        """Set the lag of each owned partition known well enough; False if one was not."""
        known = 0
        for (topic, partition), offset in _resume_offsets(consumer, tracker, owned).items():
            try:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except KafkaException:  # not known yet; a metric is never worth a crash
                continue
            if high >= 0:
                self._gauge.labels(self._channel, topic, str(partition)).set(max(0, high - offset))
                known += 1
        return known == len(owned)


def _resume_offsets(consumer: Consumer, tracker: OffsetTracker, owned: list[Partition]) -> dict[Partition, int]:
    offsets = tracker.committable(owned)
    unread = [TopicPartition(t, p) for t, p in owned if (t, p) not in offsets]
    if unread:
        try:
            positions = consumer.position(unread)  # local: no broker round trip
        except KafkaException:
            positions = []
        offsets.update({(tp.topic, tp.partition): tp.offset for tp in positions if tp.offset >= 0})
    return offsets
