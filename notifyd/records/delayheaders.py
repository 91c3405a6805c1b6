"""The headers of a record waiting in a delay topic: the one place their names are defined.

A delayed record is the original key, value and headers byte for byte plus these. Times
are epoch milliseconds, counts decimal text, all UTF-8. A record whose headers cannot be
read is treated as due now with no attempts made: bad input is delivered, never lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

HEADER_ATTEMPTS = "notifyd.retry.attempts"            # delivery attempts made so far
HEADER_FIRST_FAILED_AT = "notifyd.retry.first_failed_at"
HEADER_LAST_ERROR = "notifyd.retry.last_error"
HEADER_DUE = "notifyd.delay.due"                      # when the notification is to be delivered
HEADER_HOP_DUE = "notifyd.delay.hop_due"              # when it leaves the delay topic it is in
HEADER_SOURCE_TOPIC = "notifyd.source.topic"          # where the channel first read it
HEADER_SOURCE_PARTITION = "notifyd.source.partition"
HEADER_SOURCE_OFFSET = "notifyd.source.offset"
HEADER_SOURCE_TIMESTAMP = "notifyd.source.timestamp"  # that record's own timestamp: a hop is written "now"

DELAY_HEADERS = frozenset({
    HEADER_ATTEMPTS, HEADER_FIRST_FAILED_AT, HEADER_LAST_ERROR, HEADER_DUE, HEADER_HOP_DUE,
    HEADER_SOURCE_TOPIC, HEADER_SOURCE_PARTITION, HEADER_SOURCE_OFFSET, HEADER_SOURCE_TIMESTAMP,
})

Headers = list[tuple[str, bytes | None]]


@dataclass(frozen=True)
class DelayState:
    """What a delayed record carries besides the notification: its attempts and its times (epoch seconds)."""

    attempts: int
    due: float
    hop_due: float
    source_topic: str
    source_partition: int
    source_offset: int
    first_failed_at: float | None = None
    last_error: str = ""
    source_timestamp: int | None = None  # epoch ms, as Kafka gives it


def encode(state: DelayState, *, hop_due: float | None = None) -> Headers:
    """``state`` as headers, in a fixed order; ``hop_due``, if given, instead of ``state.hop_due``.

    A hand-over sets the hop it writes that way: ``dataclasses.replace`` of the state cost
    ~3 us, once per failed attempt.
    """
    fields = {
        HEADER_ATTEMPTS: str(state.attempts),
        HEADER_DUE: _millis_up(state.due),
        HEADER_HOP_DUE: _millis_up(state.hop_due if hop_due is None else hop_due),
        HEADER_SOURCE_TOPIC: state.source_topic,
        HEADER_SOURCE_PARTITION: str(state.source_partition),
        HEADER_SOURCE_OFFSET: str(state.source_offset),
        HEADER_LAST_ERROR: state.last_error,
    }
    if state.first_failed_at is not None:
        fields[HEADER_FIRST_FAILED_AT] = _millis(state.first_failed_at)
    if state.source_timestamp is not None:
        fields[HEADER_SOURCE_TIMESTAMP] = str(state.source_timestamp)
    return [(name, value.encode("utf-8")) for name, value in fields.items()]


def decode(headers: Iterable[tuple[str, bytes | None]] | None, *, topic: str, partition: int,
           offset: int, timestamp: int | None = None) -> DelayState:
    """The state a delayed record carries; anything unreadable falls back to "due now, from here".

    ``timestamp`` is the delayed record's own: the source's for a record written before the
    source timestamp had a header of its own.
    """
    text = {name: (value or b"").decode("utf-8", errors="replace") for name, value in headers or ()
            if name in DELAY_HEADERS}
    due = _seconds(text.get(HEADER_DUE), 0.0)
    return DelayState(
        attempts=max(0, int(_number(text.get(HEADER_ATTEMPTS), 0))),
        due=due,
        hop_due=_seconds(text.get(HEADER_HOP_DUE), due),
        source_topic=text.get(HEADER_SOURCE_TOPIC) or topic,
        source_partition=int(_number(text.get(HEADER_SOURCE_PARTITION), partition)),
        source_offset=int(_number(text.get(HEADER_SOURCE_OFFSET), offset)),
        first_failed_at=_seconds(text.get(HEADER_FIRST_FAILED_AT), None),
        last_error=text.get(HEADER_LAST_ERROR, ""),
        source_timestamp=_whole(text.get(HEADER_SOURCE_TIMESTAMP), timestamp),
    )


def without_delay_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> Headers:
    """The headers the record had before it was first delayed, in their order."""
    return [(name, value) for name, value in headers or () if name not in DELAY_HEADERS]


def _millis(seconds: float) -> str:
    return str(round(seconds * 1000))


def _millis_up(seconds: float) -> str:
    """A due time in whole ms, rounded up: rounded to the nearest, it came back up to 0.5 ms early."""
    return str(math.ceil(seconds * 1000))


def _seconds(text: str | None, default: float | None) -> float | None:
    value = _number(text, None)
    return default if value is None else value / 1000


def _whole(text: str | None, default: int | None) -> int | None:
    value = _number(text, None)
    return default if value is None else int(value)


def _number(text: str | None, default: float | None) -> float | None:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return value if value == value and abs(value) != float("inf") else default
