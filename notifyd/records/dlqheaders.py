"""The headers of a dead-letter record: the one place their names are defined.

The channel process writes a DLQ record as the original key, value and headers byte for
byte plus these headers; ``notifyd dlq`` reads them back. Every value is the UTF-8 text
of its field.
"""

from __future__ import annotations

from collections.abc import Iterable

from notifyd.records.delayheaders import DELAY_HEADERS

HEADER_CHANNEL = "notifyd.channel"
HEADER_ORIGINAL_TOPIC = "notifyd.original.topic"
HEADER_ORIGINAL_PARTITION = "notifyd.original.partition"
HEADER_ORIGINAL_OFFSET = "notifyd.original.offset"
HEADER_ORIGINAL_TIMESTAMP = "notifyd.original.timestamp"
HEADER_ERROR_REASON = "notifyd.error.reason"
HEADER_ERROR_CLASS = "notifyd.error.class"
HEADER_ERROR_MESSAGE = "notifyd.error.message"
HEADER_ATTEMPTS = "notifyd.attempts"
HEADER_FAILED_AT = "notifyd.failed.at"
# Set when a retried notification is dead-lettered: when its first attempt failed.
HEADER_FIRST_FAILED_AT = "notifyd.first.failed.at"
# Set when the DLQ refused the whole record as too large: what was left out, and why.
HEADER_VALUE_OMITTED = "notifyd.value.omitted"

# Failover (``notifyd.channel.fallback``). On a record handed to a fallback channel: the
# channel it came from and why (``FALLBACK_REASONS``); on a DLQ record: the handler that
# failed it (the channel's, or its inline fallback's).
HEADER_FALLBACK_FROM = "notifyd.fallback.from"
HEADER_FALLBACK_REASON = "notifyd.fallback.reason"
HEADER_PROVIDER = "notifyd.provider"
FALLBACK_CIRCUIT_OPEN = "circuit_open"
FALLBACK_RETRIES_EXHAUSTED = "retries_exhausted"
FALLBACK_REASONS = (FALLBACK_CIRCUIT_OPEN, FALLBACK_RETRIES_EXHAUSTED)

# Set on a record that ``notifyd dlq replay`` re-published: "<dlq topic>:<partition>:<offset>".
REPLAYED_FROM = "notifyd.replayed.from"

REASON_INVALID = "invalid"
REASON_PERMANENT = "permanent"
REASON_RETRIES_EXHAUSTED = "retries_exhausted"
# Not delivered by its expires_at: never sent, not even from a retry tier (docs/scheduling.md).
REASON_EXPIRED = "expired"
REASONS = (REASON_INVALID, REASON_PERMANENT, REASON_RETRIES_EXHAUSTED, REASON_EXPIRED)

DLQ_HEADERS = frozenset({
    HEADER_CHANNEL, HEADER_ORIGINAL_TOPIC, HEADER_ORIGINAL_PARTITION, HEADER_ORIGINAL_OFFSET,
    HEADER_ORIGINAL_TIMESTAMP, HEADER_ERROR_REASON, HEADER_ERROR_CLASS, HEADER_ERROR_MESSAGE,
    HEADER_ATTEMPTS, HEADER_FAILED_AT,
})  # on every DLQ record
# A dead-lettered record never carries delay headers (the DLQ write drops them); a tool
# reading a delay topic treats them as notifyd's all the same.
NOTIFYD_HEADERS = DLQ_HEADERS | {HEADER_FIRST_FAILED_AT, HEADER_VALUE_OMITTED, REPLAYED_FROM, HEADER_FALLBACK_FROM,
                                 HEADER_FALLBACK_REASON, HEADER_PROVIDER} | DELAY_HEADERS


def header_text(headers: Iterable[tuple[str, bytes | None]] | None) -> dict[str, str]:
    """The notifyd headers of a record as text; undecodable bytes are replaced, never fatal."""
    found: dict[str, str] = {}
    for name, value in headers or ():
        if name in NOTIFYD_HEADERS:
            found[name] = (value or b"").decode("utf-8", errors="replace")
    return found


def original_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> list[tuple[str, bytes | None]]:
    """The headers the record carried before it was dead-lettered, in their order."""
    return [(name, value) for name, value in headers or () if name not in NOTIFYD_HEADERS]


def replay_marker(topic: str, partition: int, offset: int) -> str:
    """The ``REPLAYED_FROM`` value naming one DLQ record."""
    return f"{topic}:{partition}:{offset}"
