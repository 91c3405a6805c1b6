"""The outcome event record (``schemas/outcome.schema.json``): one compact JSON object per delivery outcome."""

from __future__ import annotations

import time

import orjson

DELIVERED = "delivered"
ATTEMPT_FAILED = "attempt_failed"
DEAD_LETTERED = "dead_lettered"
SKIPPED = "skipped"
DUPLICATE_SUPPRESSED = "duplicate_suppressed"
EXPIRED = "expired"


def outcome_record(*, notification_id: str, channel: str, outcome: str, attempt: int, at: float,
                   **details: str | None) -> bytes:
    """The record's value; ``details`` (error, reason, provider_id) are left out when None."""
    record = {"id": notification_id, "channel": channel, "outcome": outcome, "attempt": attempt, "at": iso(at)}
    record.update((key, value) for key, value in details.items() if value is not None)
    return orjson.dumps(record)


def error_text(error: BaseException) -> str:
    """A failed attempt's ``error`` detail: the exception's class and message."""
    return f"{type(error).__name__}: {error}"


def iso(at: float) -> str:
    """``at`` (Unix seconds) as ISO 8601 UTC with milliseconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"
