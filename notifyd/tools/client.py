"""Publishing notifications from an application: ``Publisher(config).send(channel, **fields)``.

The same path ``notifyd send`` takes: each notification is checked against
``schemas/notification.schema.json``, given an id if it has none, produced to the
channel's first topic by an idempotent producer, and ``send`` returns only once the
broker has acknowledged it.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Self

from confluent_kafka import KafkaError, Message, Producer

from notifyd.config import kafka
from notifyd.config.loading import load_config
from notifyd.config.settings import Config
from notifyd.records.notification import InvalidNotification, notification_problems

_BROKER_GONE = {KafkaError._MSG_TIMED_OUT, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,
                KafkaError._TIMED_OUT, KafkaError._RESOLVE}


class PublishError(Exception):
    """A notification could not be published."""


class UnknownChannel(PublishError):
    """The config has no channel of that name."""


class DeliveryFailed(PublishError):
    """The broker did not acknowledge every notification; ``unreachable`` if none answered in time."""

    def __init__(self, message: str, *, failed: int, unreachable: bool) -> None:
        super().__init__(message)
        self.failed = failed
        self.unreachable = unreachable


def prepare(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The notification ``fields`` describe, with an id, or ``InvalidNotification``.

    Fields given as None are left out, so optional keyword arguments can be passed through.
    """
    notification = {name: value for name, value in fields.items() if value is not None}
    notification.setdefault("id", str(uuid.uuid4()))
    problems = notification_problems(notification)
    if problems:
        raise InvalidNotification(problems)
    return notification


class Publisher:
    """Sends notifications to the channels of a config; use as a context manager or ``close()``."""

    def __init__(self, config: Config | str, *, timeout: float = 30.0, logger: logging.Logger | None = None) -> None:
        """``logger``: where librdkafka's own lines go (its ``logger`` setting); by default, to stderr."""
        self.config = load_config(config, writes_state=False) if isinstance(config, str) else config
        self.timeout = timeout
        self._producer = Producer(kafka.publisher_producer(self.config.kafka, timeout=timeout, logger=logger))

    def topic_of(self, channel: str) -> str:
        """The topic a notification for ``channel`` is produced to: the channel's first."""
        try:
            return self.config.channels[channel].topics[0]
        except KeyError:
            known = ", ".join(sorted(self.config.channels))
            raise UnknownChannel(f"unknown channel {channel!r} (channels: {known})") from None

    def send(self, channel: str, *, key: str | bytes | None = None,
             headers: Mapping[str, bytes] | None = None, **fields: Any) -> str:
        """Publish one notification and wait for the broker's acknowledgement; returns its id."""
        notification = prepare(fields)
        self._publish(self.topic_of(channel), [(notification, key)], headers=headers)
        return notification["id"]

    def send_many(self, channel: str, notifications: Iterable[Mapping[str, Any]], *,
                  key_field: str | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Publish a batch after checking every notification first; returns how many were sent.

        Nothing is sent if one is invalid (``InvalidNotification.index`` says which).
        ``key_field`` names a field whose value becomes the record key; ``progress`` is
        called with the number acknowledged so far.
        """
        topic = self.topic_of(channel)
        batch = []
        for index, fields in enumerate(notifications):
            try:
                notification = prepare(fields)
            except InvalidNotification as exc:
                raise InvalidNotification(exc.problems, index=index) from None
            batch.append((notification, notification.get(key_field) if key_field else None))
        self._publish(topic, batch, progress=progress)
        return len(batch)

    def _publish(self, topic: str, batch: list[tuple[dict[str, Any], str | bytes | None]], *,
                 headers: Mapping[str, bytes] | None = None, progress: Callable[[int], None] | None = None) -> None:
        outcome = _Outcome(progress)
        for notification, key in batch:
            value = json.dumps(notification, ensure_ascii=False).encode("utf-8")
            self._produce(topic, value, key=key, headers=dict(headers or {}), on_delivery=outcome.record)
        deadline = time.monotonic() + self.timeout + 5
        while outcome.done < len(batch) and time.monotonic() < deadline:
            self._producer.poll(0.1)
        outcome.raise_for_failures(len(batch))

    def _produce(self, topic: str, value: bytes, **kwargs: Any) -> None:
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                self._producer.poll(0)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.1)

    def close(self) -> None:
        """Wait for anything still queued, then release the producer."""
        if self._producer is None:
            return
        self._producer.flush(self.timeout)
        # Dropping the last reference destroys the librdkafka handle now; a handle kept
        # alive by a traceback would otherwise go on reconnecting (and logging) until exit.
        self._producer = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Outcome:
    """Delivery reports of one batch."""

    def __init__(self, progress: Callable[[int], None] | None) -> None:
        self.done = 0
        self.delivered = 0
        self.errors: list[KafkaError] = []
        self._progress = progress

    def record(self, error: KafkaError | None, message: Message) -> None:
        self.done += 1
        if error is None:
            self.delivered += 1
            if self._progress:
                self._progress(self.delivered)
        else:
            self.errors.append(error)

    def raise_for_failures(self, total: int) -> None:
        failed = total - self.delivered
        if not failed:
            return
        unreachable = len(self.errors) < failed or all(e.code() in _BROKER_GONE for e in self.errors)
        reason = self.errors[0].str() if self.errors else "no delivery report in time"
        raise DeliveryFailed(f"{failed} of {total} notification(s) not acknowledged: {reason}",
                             failed=failed, unreachable=unreachable)
