"""Dead-lettering a job that cannot be delivered: why, the log line, and the DLQ write until it lands.

A job read from a delay topic is dead-lettered as the record it was delayed from: its
original headers, topic, partition and offset, and when its first attempt failed. The
job's offset is finished only when the broker has its DLQ record (or, on a channel
without a DLQ, once it is logged and counted): ``notifyd.channel.handoff`` writes it. A
record the DLQ refuses as too large is written again without its value, since it would
be refused forever and hold its partition back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from notifyd.api import PermanentError
from notifyd.channel.deliverymetrics import DeliveryMetrics
from notifyd.channel.dlq import Failure, Headers, dead_letter_headers, omission
from notifyd.channel.handoff import HandOff
from notifyd.channel.job import Job, source_timestamp, where
from notifyd.channel.notes import Notes
from notifyd.records import dlqheaders
from notifyd.records.delayheaders import without_delay_headers
from notifyd.records.notification import InvalidNotification


class DeadLetterer:
    """Writes failed jobs of one channel to its DLQ and reports each once the broker has it."""

    def __init__(self, *, channel: str, dlq: HandOff | None, metrics: DeliveryMetrics, log: Any,
                 redact: Callable[[str], str], on_finished: Callable[[Job], None], provider: str = "",
                 notes: Notes | None = None) -> None:
        self._channel, self._dlq, self._m, self._log, self._redact = channel, dlq, metrics, log, redact
        self._provider = provider  # the channel's handler: the notifyd.provider header
        self._on_finished = on_finished
        self._notes = notes  # an expiry is an outcome the handler never saw

    def dead_letter(self, job: Job, error: BaseException, extra: Headers = (), provider: str | None = None) -> None:
        """Log and count ``job``'s failure, then write it to the DLQ (finished at once without one).

        ``provider``: the handler that failed it, when not the channel's own (its fallback);
        ``extra``: more headers, added after notifyd's own.
        """
        extra = [(dlqheaders.HEADER_PROVIDER, (provider or self._provider).encode("utf-8")), *extra]
        failure = self._failure(job, error)
        self._m.dead_lettered(failure.reason)
        if failure.reason == dlqheaders.REASON_EXPIRED and self._notes is not None and job.notification is not None:
            self._notes.expired(job.notification, job.attempts)
        fields = {**where(job), "reason": failure.reason, "attempts": failure.attempts,
                  "error_class": failure.error_class, "error": failure.message, **header_fields(extra)}
        if self._dlq is None:
            self._log.warning("notification failed; the channel has no dlq, skipped", **fields)
            self._on_finished(job)
            return
        self._log.warning("notification failed, writing it to the dlq", dlq=self._dlq.topic, **fields)
        self._write(job, failure, extra=extra)

    def _failure(self, job: Job, error: BaseException) -> Failure:
        if getattr(error, "dlq_reason", None):  # notifyd.channel.holds.NotificationExpired
            reason = error.dlq_reason
        elif isinstance(error, InvalidNotification):
            reason = dlqheaders.REASON_INVALID
        elif isinstance(error, PermanentError):
            reason = dlqheaders.REASON_PERMANENT
        else:
            reason = dlqheaders.REASON_RETRIES_EXHAUSTED
        return Failure(reason, type(error).__name__, self._redact(describe(error)), job.attempts)

    def _write(self, job: Job, failure: Failure, omitted: str | None = None, extra: Headers = ()) -> None:
        message = job.message
        topic, partition, offset = _source(job)
        headers = dead_letter_headers(
            original=None if omitted else without_delay_headers(message.headers()), channel=self._channel,
            topic=topic, partition=partition, offset=offset, timestamp=source_timestamp(job),
            failure=failure, failed_at=datetime.now(UTC), omitted=omitted,
            first_failed_at=_first_failure(job),
        ) + list(extra)

        def too_large(error: str) -> None:
            self._log.error("the dlq refuses the record as too large; writing it without its value",
                            **where(job), dlq=self._dlq.topic, error=error)
            self._write(job, failure, omission(message.value(), message.headers(), error), extra)

        self._dlq.send(job, value=b"" if omitted else message.value(), headers=headers,
                           on_written=lambda: self._on_finished(job), on_too_large=None if omitted else too_large)


def header_fields(headers: Headers) -> dict[str, str]:
    """Log fields of added headers: ``notifyd.fallback.from`` becomes ``fallback_from``."""
    return {name.removeprefix("notifyd.").replace(".", "_"): (value or b"").decode("utf-8", "replace")
            for name, value in headers}


def _source(job: Job) -> tuple[str, int, int]:
    """Where the channel first read ``job``: its own record, or the one it was delayed from."""
    state, message = job.delayed, job.message
    if state is None:
        return message.topic(), message.partition(), message.offset()
    return state.source_topic, state.source_partition, state.source_offset


def _first_failure(job: Job) -> datetime | None:
    first = job.first_failed_at or (job.delayed.first_failed_at if job.delayed else None)
    return None if first is None else datetime.fromtimestamp(first, UTC)


def describe(error: BaseException) -> str:
    """``str(error)``, which a handler's own exception class may have broken."""
    try:
        return str(error)
    except Exception:  # a failing __str__ must not take the channel down with it
        return f"<{type(error).__name__} whose message cannot be rendered>"
