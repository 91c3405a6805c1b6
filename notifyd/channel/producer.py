"""The channel's acknowledged producer: a record counts as handed over only once the broker has it.

Idempotent, ``acks=all`` (``notifyd.config.kafka.dlq_producer``). Used for the DLQ and for
the delay topics: the offset of the record written is finished from ``on_written``, which
runs from ``poll()`` when the delivery report says the broker has the record, never from
a failure; the caller decides what to write instead, or when to write again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

Headers = list[tuple[str, bytes | None]]

# Over the client's own message.max.bytes, the broker's or the topic's max.message.bytes
# (librdkafka reports both as MSG_SIZE_TOO_LARGE), or a batch over the broker's limit.
TOO_LARGE = frozenset({KafkaError.MSG_SIZE_TOO_LARGE, KafkaError.RECORD_LIST_TOO_LARGE})


class AckedProducer:
    """Writes records; ``on_written`` runs from ``poll()`` once the broker has one.

    ``on_failed(error, too_large)`` runs when librdkafka gave up on a record, ``too_large``
    when it never will take it as it is.
    """

    def __init__(self, producer_config: Mapping[str, Any]) -> None:
        self._producer = Producer(dict(producer_config))

    def write(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Headers,
              on_written: Callable[[], None], on_failed: Callable[[str, bool], None]) -> None:
        """Produce one record to ``topic``; a full local queue is reported through ``on_failed``."""

        def report(error: KafkaError | None, _message: Message) -> None:
            if error is None:
                on_written()
            else:
                on_failed(str(error), error.code() in TOO_LARGE)

        try:  # stamped with the time of writing: a broker's retention counts from the record's timestamp
            self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=report)
        except KafkaException as exc:  # the record is over the client's own message.max.bytes
            error = exc.args[0] if exc.args else None
            on_failed(f"KafkaException: {exc}", isinstance(error, KafkaError) and error.code() in TOO_LARGE)
        except Exception as exc:  # BufferError (queue full), ...
            on_failed(f"{type(exc).__name__}: {exc}", False)

    def list_topics(self, *, timeout: float) -> Any:
        """The cluster's metadata, as this producer sees it."""
        return self._producer.list_topics(timeout=timeout)

    def poll(self) -> None:
        """Serve delivery reports without waiting."""
        self._producer.poll(0)

    def pending(self) -> int:
        """Records produced but not yet reported."""
        return len(self._producer)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` for outstanding reports; returns how many remain."""
        return self._producer.flush(timeout)
