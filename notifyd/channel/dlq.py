"""The dead-letter record written for a failed notification (``notifyd.channel.handoff`` writes it).

A DLQ record is the original key, value and headers byte for byte plus the headers
named in ``notifyd.records.dlqheaders``. A record the DLQ refuses as too large would be
refused forever and hold its partition back, so it is written once more without its
value and original headers, saying so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from notifyd.channel.producer import Headers
from notifyd.records import dlqheaders as h
from notifyd.records.notification import shorten


@dataclass(frozen=True)
class Failure:
    """Why a notification is dead-lettered."""

    reason: str            # one of notifyd.records.dlqheaders.REASONS
    error_class: str
    message: str
    attempts: int


def dead_letter_headers(*, original: Iterable[tuple[str, bytes | None]] | None, channel: str, topic: str,
                        partition: int, offset: int, timestamp: int | None, failure: Failure,
                        failed_at: datetime, omitted: str | None = None,
                        first_failed_at: datetime | None = None) -> Headers:
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
        h.HEADER_FAILED_AT: failed_at.astimezone(UTC).isoformat(timespec="milliseconds"),
    }
    if first_failed_at is not None:
        added[h.HEADER_FIRST_FAILED_AT] = first_failed_at.astimezone(UTC).isoformat(timespec="milliseconds")
    if omitted is not None:
        added[h.HEADER_VALUE_OMITTED] = omitted
    return list(original or ()) + [(name, value.encode("utf-8")) for name, value in added.items()]


def omission(value: bytes | None, headers: Iterable[tuple[str, bytes | None]] | None, error: str) -> str:
    """The ``notifyd.value.omitted`` text of a record written without its value and original headers."""
    return f"{len(value or b'')} bytes of value and {len(list(headers or ()))} original headers left out: " \
           f"the DLQ refused the whole record ({shorten(error, 300)})"

