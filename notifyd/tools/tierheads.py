"""The oldest due time among a channel's delayed records, read from the head of each waiting tier partition.

A tier partition's head (the delay group's committed offset) is the next record to leave
it; the due times of the heads of all partitions with records waiting give the oldest
due time an operator asks about. Reads one record per such partition, nothing more.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from notifyd.records import delayheaders as dh

Head = tuple[str, int, int]  # topic, partition, offset of the first record not yet taken


def oldest_due(reader: Consumer, heads: Iterable[Head], *, timeout: float) -> float | None:
    """The smallest final due time (epoch seconds) among the records at ``heads``; None if none is read."""
    dues = [due for head in heads if (due := _due_at(reader, head, timeout)) is not None]
    return min(dues, default=None)


def _due_at(reader: Consumer, head: Head, timeout: float) -> float | None:
    topic, partition, offset = head
    reader.assign([TopicPartition(topic, partition, offset)])
    try:
        messages = reader.consume(1, timeout)
    finally:
        reader.unassign()
    if not messages or messages[0].error() is not None:
        return None
    message = messages[0]
    return dh.decode(message.headers(), topic=topic, partition=partition, offset=message.offset()).due
