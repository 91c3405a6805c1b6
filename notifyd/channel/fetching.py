"""Consumer calls the poll loop and the delay reader share: taking fetched messages, committing offsets."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

BATCH_SIZE = 500
POLL_TIMEOUT = 0.1
# Connection failures librdkafka logs itself (a FAIL line, through the ``logger`` setting);
# error_cb gets each one again, which doubled every reconnect attempt of an outage.
LOGGED_BY_LIBRDKAFKA = frozenset({KafkaError._TRANSPORT, KafkaError._RESOLVE})


def fetch_ready(consumer: Consumer, size: int, timeout: float) -> list[Message]:
    """Up to ``size`` messages already fetched; else those that arrive with the first one within ``timeout``.

    ``consume(size, timeout)`` waits for ``size`` messages or the timeout, which at a
    moderate rate holds every message back for up to the whole timeout. The first
    message wakes the caller while the rest of its fetch response is being queued;
    taking those too saves a round trip through the event loop for each of them.
    """
    messages = consumer.consume(size, 0)
    if messages:
        return messages
    first = consumer.consume(1, timeout)
    return first + consumer.consume(size - 1, 0) if first and size > 1 else first


def commit_offsets(consumer: Consumer, offsets: dict[tuple[str, int], int], log: Any) -> None:
    """Commit ``offsets`` synchronously; a failure is logged (the work is redelivered), never raised."""
    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            log.warning("commit failed; uncommitted work will be redelivered", error=str(exc))
