"""Dead-letter records as the operator tools see them, and which of them to replay.

Pure logic: a ``DlqRecord`` is built from a consumed message's parts, selection is a
function of the record and the filters, and the replayed copy is a function of the
record. Reading and producing live in ``notifyd.commands.dlq``.

Idempotency: a replayed copy carries ``notifyd.replayed.from = <dlq topic>:<partition>:<offset>``.
Before replaying, the original topic is read from the time of the oldest selected DLQ
record onwards (a copy can only be newer than its DLQ record), and every DLQ record
whose marker is already there is skipped. The proof of a replay is the replayed record
itself, so a run interrupted halfway, a re-run, or runs with different filters never send
a record twice, and nothing is marked replayed that did not reach the topic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from notifyd.records import dlqheaders as h
from notifyd.tools.timespec import from_millis, parse_iso

Headers = list[tuple[str, bytes | None]]

CLOCK_SKEW_MARGIN_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class DlqRecord:
    """One record of a DLQ topic, with its notifyd headers decoded."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers
    timestamp_ms: int | None = None
    fields: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, *, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
           headers: Headers | None, timestamp_ms: int | None = None) -> DlqRecord:
        """A record from the parts of a consumed message."""
        headers = list(headers or [])
        return cls(topic, partition, offset, key, value, headers, timestamp_ms, h.header_text(headers))

    @property
    def id(self) -> str:
        """The notification id from the value, or ``-`` when the value is not a JSON object with one."""
        return notification_id(self.value)

    @property
    def marker(self) -> str:
        """The ``notifyd.replayed.from`` value of this record's replayed copy."""
        return h.replay_marker(self.topic, self.partition, self.offset)

    @property
    def failed_at(self) -> datetime | None:
        """When delivery was given up: the header, else the record's own timestamp."""
        stated = parse_iso(self.fields.get(h.HEADER_FAILED_AT, ""))
        if stated is None and self.timestamp_ms is not None and self.timestamp_ms > 0:
            return from_millis(self.timestamp_ms)
        return stated

    @property
    def original_topic(self) -> str | None:
        return self.fields.get(h.HEADER_ORIGINAL_TOPIC) or None

    @property
    def original_partition(self) -> int | None:
        return _int_or_none(self.fields.get(h.HEADER_ORIGINAL_PARTITION))

    def summary(self) -> dict[str, Any]:
        """What ``dlq inspect`` shows of the record."""
        failed_at = self.failed_at
        return {
            "id": self.id,
            "reason": self.fields.get(h.HEADER_ERROR_REASON, "-"),
            "error": _error_text(self.fields),
            "attempts": _int_or_none(self.fields.get(h.HEADER_ATTEMPTS)),
            "original_topic": self.original_topic,
            "original_partition": self.original_partition,
            "original_offset": _int_or_none(self.fields.get(h.HEADER_ORIGINAL_OFFSET)),
            "failed_at": failed_at.isoformat() if failed_at else None,
            "dlq_partition": self.partition,
            "dlq_offset": self.offset,
        }


def notification_id(value: bytes | None) -> str:
    """The ``id`` of a JSON object value, or ``-``; never raises on bad bytes."""
    try:
        document = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError):
        return "-"
    found = document.get("id") if isinstance(document, dict) else None
    return str(found) if isinstance(found, (str, int)) and not isinstance(found, bool) else "-"


@dataclass(frozen=True)
class Selection:
    """The filters of ``dlq replay``; an empty filter selects everything."""

    reasons: frozenset[str] = frozenset()
    since: datetime | None = None
    ids: frozenset[str] = frozenset()

    def matches(self, record: DlqRecord) -> bool:
        if self.reasons and record.fields.get(h.HEADER_ERROR_REASON) not in self.reasons:
            return False
        if self.ids and record.id not in self.ids:
            return False
        if self.since is not None:
            failed_at = record.failed_at
            return failed_at is not None and failed_at >= self.since
        return True


@dataclass(frozen=True)
class Plan:
    """What a replay run does: records to send, and those skipped with the reason why."""

    replay: list[DlqRecord]
    skipped: list[tuple[DlqRecord, str]]


def plan_replay(selected: Iterable[DlqRecord], *, already_replayed: set[str]) -> Plan:
    """Split the selected records into those to replay and those to skip."""
    replay: list[DlqRecord] = []
    skipped: list[tuple[DlqRecord, str]] = []
    for record in selected:
        if record.marker in already_replayed:
            skipped.append((record, "already replayed"))
        elif record.original_topic is None:
            skipped.append((record, f"no {h.HEADER_ORIGINAL_TOPIC} header"))
        elif h.HEADER_VALUE_OMITTED in record.fields:
            skipped.append((record, f"the DLQ holds no value ({record.fields[h.HEADER_VALUE_OMITTED]}); the original "
                                    f"is {record.original_topic}[{record.original_partition}] offset "
                                    f"{record.fields.get(h.HEADER_ORIGINAL_OFFSET, '?')}"))
        else:
            replay.append(record)
    return Plan(replay, skipped)


def replayed_headers(record: DlqRecord) -> Headers:
    """The original headers byte for byte, plus the marker naming this DLQ record."""
    return h.original_headers(record.headers) + [(h.REPLAYED_FROM, record.marker.encode("utf-8"))]


def scan_start_ms(records: Sequence[DlqRecord]) -> int | None:
    """From when to look for replayed copies: the oldest DLQ record's time (None: the beginning).

    A copy is produced after its DLQ record, but the two timestamps come from the clocks
    of different hosts, hence the margin.
    """
    stamps = [r.timestamp_ms for r in records]
    if not stamps or any(s is None or s <= 0 for s in stamps):
        return None
    return max(0, min(stamps) - CLOCK_SKEW_MARGIN_MS)


def _error_text(fields: dict[str, str]) -> str:
    error_class, message = fields.get(h.HEADER_ERROR_CLASS, ""), fields.get(h.HEADER_ERROR_MESSAGE, "")
    if error_class and message:
        return f"{error_class}: {message}"
    return error_class or message or "-"


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None
