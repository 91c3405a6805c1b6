"""The dead-letter queue: the record written for a failed notification, and its producer.

A DLQ record is the original key, value and headers byte for byte plus the headers
named in ``notifyd.records.dlqheaders``. The original offset counts as finished only when the
delivery report says the broker has the record; a failed write is produced again. A
record the DLQ refuses as too large would be refused forever and hold its partition
back, so it is written once more without its value and original headers, saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from notifyd.records import dlqheaders as h
from notifyd.records.notification import shorten

Headers = list[tuple[str, bytes | None]]

# Over the client's own message.max.bytes, the broker's or the topic's max.message.bytes
# (librdkafka reports both as MSG_SIZE_TOO_LARGE), or a batch over the broker's limit.
TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


@dataclass(frozen=True)
class Failure:
    """Why a notification is dead-lettered."""

    reason: str            # one of notifyd.records.dlqheaders.REASONS
    error_class: str
    message: str
    attempts: int


def dead_letter_headers(*, original: Iterable[tuple[str, bytes | None]] | None, channel: str, topic: str,
                        partition: int, offset: int, timestamp: int | None, failure: Failure,
                        failed_at: datetime, omitted: str | None = None) -> Headers:
    """The original headers, unchanged and in order, followed by notifyd's own (``omitted``: see ``omission``)."""
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
    if omitted is not None:
        added[h.HEADER_VALUE_OMITTED] = omitted
    return list(original or ()) + [(name, value.encode("utf-8")) for name, value in added.items()]


def omission(value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None, error: str) -> str:
    """The ``notifyd.value.omitted`` text of a record written without its value and original headers."""
    return f"{len(value or b'')} bytes of value and {len(list(headers or ()))} original headers left out: " \
           f"the DLQ refused the whole record ({shorten(error, 300)})"


class DlqWriter:
    """Writes DLQ records; ``on_written`` runs from ``poll()`` once the broker has one.

    ``on_failed(error, too_large)`` runs when librdkafka gave up on a record, ``too_large``
    when it never will take it as it is; the caller decides what to ``write`` instead or
    when to write it again, so the original offset is never finished by a failure.
    """

    def __init__(self, producer_config: Mapping[str, Any], *, topic: str | None,
                 producer: Producer | None = None) -> None:
        self.topic = topic  # None: a writer only for ``to``'s writers (a channel with a fallback but no DLQ)
        self._producer = producer if producer is not None else Producer(dict(producer_config))

    def to(self, topic: str) -> DlqWriter:
        """A writer to ``topic`` through this writer's producer (served by its ``poll`` and ``flush``)."""
        return DlqWriter({}, topic=topic, producer=self._producer)

    def write(self, *, key: bytes | None, value: bytes | None, headers: Headers,
              on_written: Callable[[], None], on_failed: Callable[[str, bool], None]) -> None:
        """Produce one record; a full local queue is reported through ``on_failed``."""

        def report(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                on_written()
            else:
                on_failed(str(error), error.code() in TOO_LARGE)

        try:
            self._producer.produce(self.topic, value=value, key=key, headers=headers, on_delivery=report)
        except KafkaException as exc:  # the record is over the client's own message.max.bytes
            error = exc.args[0] if exc.args else None
            on_failed(f"KafkaException: {exc}", isinstance(error, KafkaError) and error.code() in TOO_LARGE)
        except Exception as exc:  # BufferError (queue full), ...
            on_failed(f"{type(exc).__name__}: {exc}", False)

    def poll(self) -> None:
        """Serve delivery reports without waiting."""
        self._producer.poll(0)

    def pending(self) -> int:
        """Records produced but not yet reported."""
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` for outstanding reports; returns how many remain."""
        return self._producer.flush(timeout)
