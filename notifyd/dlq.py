"""The dead-letter queue: the record written for a failed notification, and its producer.

A DLQ record is the original key, value and headers byte for byte plus the headers
named in ``notifyd.dlqheaders``. The original offset counts as finished only when the
delivery report says the broker has the record; a failed write is produced again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from notifyd import dlqheaders as h
from notifyd.config import KafkaSettings
from notifyd.message import shorten

Headers = list[tuple[str, bytes | None]]

# At-least-once into the DLQ: no duplicates from producer retries, the write on every replica.
REQUIRED_PRODUCER_SETTINGS = {"enable.idempotence": True, "acks": "all"}
# librdkafka's producer refuses records over 1 MB by default, while its consumer reads
# records up to receive.message.max.bytes (100 MB): without this, a large record the
# channel consumed could never be dead-lettered and would block its partition forever.
# The YAML may set it; the DLQ topic's own limit on the broker still applies.
PRODUCER_DEFAULTS = {"message.max.bytes": 100_000_000}


@dataclass(frozen=True)
class Failure:
    """Why a notification is dead-lettered."""

    reason: str            # one of notifyd.dlqheaders.REASONS
    error_class: str
    message: str
    attempts: int


def dead_letter_headers(*, original: Iterable[tuple[str, bytes | None]] | None, channel: str, topic: str,
                        partition: int, offset: int, timestamp: int | None, failure: Failure,
                        failed_at: datetime) -> Headers:
    """The original headers, unchanged and in order, followed by notifyd's own."""
    added = {
        h.HEADER_CHANNEL: channel,
        h.HEADER_ORIGINAL_TOPIC: topic,
        h.HEADER_ORIGINAL_PARTITION: str(partition),
        h.HEADER_ORIGINAL_OFFSET: str(offset),
        h.HEADER_ORIGINAL_TIMESTAMP: "" if timestamp is None else str(timestamp),
        h.HEADER_ERROR_REASON: failure.reason,
        h.HEADER_ERROR_CLASS: failure.error_class,
        h.HEADER_ERROR_MESSAGE: shorten(failure.message, 1000),
        h.HEADER_ATTEMPTS: str(failure.attempts),
        h.HEADER_FAILED_AT: failed_at.astimezone(timezone.utc).isoformat(timespec="milliseconds"),
    }
    return list(original or ()) + [(name, value.encode("utf-8")) for name, value in added.items()]


def producer_settings(kafka: KafkaSettings) -> dict[str, Any]:
    """The DLQ producer's librdkafka settings: defaults, the shared producer settings, then what at-least-once needs."""
    return {**PRODUCER_DEFAULTS, **kafka.producer_config(), **REQUIRED_PRODUCER_SETTINGS}


class DlqWriter:
    """Writes DLQ records; ``on_written`` runs from ``poll()`` once the broker has one.

    ``on_failed(error)`` runs when librdkafka gave up on a record; the caller decides
    when to ``write`` it again, so the original offset is never finished by a failure.
    """

    def __init__(self, producer_config: Mapping[str, Any], *, topic: str) -> None:
        self.topic = topic
        self._producer = Producer(dict(producer_config))

    def write(self, *, key: bytes | None, value: bytes | None, headers: Headers,
              on_written: Callable[[], None], on_failed: Callable[[str], None]) -> None:
        """Produce one record; a full local queue is reported through ``on_failed``."""

        def report(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                on_written()
            else:
                on_failed(str(error))

        try:
            self._producer.produce(self.topic, value=value, key=key, headers=headers, on_delivery=report)
        except Exception as exc:  # BufferError (queue full), KafkaException (record too large), ...
            on_failed(f"{type(exc).__name__}: {exc}")

    def poll(self) -> None:
        """Serve delivery reports without waiting."""
        self._producer.poll(0)

    def pending(self) -> int:
        """Records produced but not yet reported."""
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` for outstanding reports; returns how many remain."""
        return self._producer.flush(timeout)
