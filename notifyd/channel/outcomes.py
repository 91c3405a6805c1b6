"""Outcome events: one record per delivery outcome on the channel's ``events`` topic, keyed by notification id.

``OutcomeReporter`` wraps the handler delivery sends through (outermost, around the
ledger's guard when there is one), in the wrapped handler's shape, and reports what each
call ends in. The records go through their own producer, which never blocks delivery: a
record the client cannot queue is counted in the log and dropped, as analytics may be.
Records that never reach the handler (invalid ones) are not reported here.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Producer

from notifyd.api import Notification, PermanentError, SkipNotification
from notifyd.records import outcome as o

DUPLICATE_REASON = "duplicate"  # notifyd.ledger.guard.DuplicateSuppressed's skip reason


class OutcomePublisher:
    """The events topic's producer; ``publish`` queues a record and serves delivery reports."""

    def __init__(self, producer: Producer, *, topic: str, channel: str, log: Any) -> None:
        self._producer, self.topic, self.channel, self._log = producer, topic, channel, log
        self.dropped = 0

    def publish(self, notification: Notification, outcome: str, *, attempt: int | None = None,
                **details: str | None) -> None:
        """Queue the record of one outcome of ``notification`` (of its current attempt unless ``attempt``)."""
        value = o.outcome_record(notification_id=notification.id, channel=self.channel, outcome=outcome,
                                 attempt=notification.attempt if attempt is None else attempt, at=time.time(),
                                 **details)
        try:
            self._producer.produce(self.topic, value, key=notification.id)
        except BufferError:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                self._log.warning("outcome events dropped: the producer's queue is full", dropped=self.dropped)
        self._producer.poll(0)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` for queued records; how many are left."""
        return self._producer.flush(timeout)


class OutcomeReporter:
    """Delivers through ``handler`` and publishes what each attempt ends in."""

    def __init__(self, handler: Any, publisher: OutcomePublisher, *, retries: int,
                 redact: Callable[[str], str] = str) -> None:
        self.handler, self._publisher, self._retries, self._redact = handler, publisher, retries, redact
        self.blocking = getattr(handler, "blocking", True)

    def close(self) -> Any:
        """Close the wrapped handler."""
        return self.handler.close()

    def _report(self, notification: Notification, result: Any) -> None:
        provider_id = result if result.__class__ is str else None
        self._publisher.publish(notification, o.DELIVERED, provider_id=provider_id)

    def _report_error(self, notification: Notification, error: BaseException) -> None:
        if isinstance(error, SkipNotification):
            duplicate = error.reason == DUPLICATE_REASON
            self._publisher.publish(notification, o.DUPLICATE_SUPPRESSED if duplicate else o.SKIPPED,
                                    reason=None if duplicate else error.reason)
            return
        final = isinstance(error, PermanentError) or notification.attempt > self._retries
        self._publisher.publish(notification, o.DEAD_LETTERED if final else o.ATTEMPT_FAILED,
                                error=self._redact(o.error_text(error)))


class SyncReporter(OutcomeReporter):
    """Reports a plain ``send``."""

    def send(self, notification: Notification) -> Any:
        """Send, then publish the outcome; re-raise what the handler raised."""
        try:
            result = self.handler.send(notification)
        except Exception as exc:
            self._report_error(notification, exc)
            raise
        self._report(notification, result)
        return result


class AsyncReporter(OutcomeReporter):
    """Reports an ``async def send``."""

    async def send(self, notification: Notification) -> Any:
        """Send, then publish the outcome; re-raise what the handler raised."""
        try:
            result = await self.handler.send(notification)
        except Exception as exc:
            self._report_error(notification, exc)
            raise
        self._report(notification, result)
        return result


def reporting(handler: Any, publisher: OutcomePublisher | None, *, retries: int,
              redact: Callable[[str], str] = str) -> Any:
    """``handler`` itself without an events topic, else wrapped in the reporter of its shape."""
    if publisher is None:
        return handler
    kind = AsyncReporter if inspect.iscoroutinefunction(handler.send) else SyncReporter
    return kind(handler, publisher, retries=retries, redact=redact)
