"""The headers of a dead-letter record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from notifyd.channel.dlq import Failure, dead_letter_headers, omission
from notifyd.config.kafka import dlq_producer
from notifyd.config.settings import KafkaSettings
from notifyd.records import dlqheaders

FAILED_AT = datetime(2026, 11, 24, 12, 30, 5, 123456, tzinfo=UTC)


def build(**changes):
    arguments = dict(
        original=[("traceparent", b"00-abc-01"), ("bin", b"\x00\xff"), ("empty", None)], channel="email",
        topic="notify.email", partition=3, offset=1234, timestamp=1764000000000,
        failure=Failure("retries_exhausted", "ConnectionError", "refused", 4), failed_at=FAILED_AT,
    )
    arguments.update(changes)
    return dead_letter_headers(**arguments)


def test_original_headers_come_first_byte_for_byte() -> None:
    headers = build()
    assert headers[:3] == [("traceparent", b"00-abc-01"), ("bin", b"\x00\xff"), ("empty", None)]


def test_every_notifyd_header_is_present_with_its_value() -> None:
    added = dict(build()[3:])
    assert set(added) == dlqheaders.DLQ_HEADERS
    assert added == {
        "notifyd.channel": b"email",
        "notifyd.original.topic": b"notify.email",
        "notifyd.original.partition": b"3",
        "notifyd.original.offset": b"1234",
        "notifyd.original.timestamp": b"1764000000000",
        "notifyd.error.reason": b"retries_exhausted",
        "notifyd.error.class": b"ConnectionError",
        "notifyd.error.message": b"refused",
        "notifyd.attempts": b"4",
        "notifyd.failed.at": b"2026-11-24T12:30:05.123+00:00",
    }


def test_failed_at_is_converted_to_utc() -> None:
    local = FAILED_AT.astimezone(timezone(timedelta(hours=5)))
    assert dict(build(failed_at=local))["notifyd.failed.at"] == b"2026-11-24T12:30:05.123+00:00"


def test_missing_timestamp_and_huge_messages() -> None:
    added = dict(build(timestamp=None, failure=Failure("invalid", "InvalidNotification", "x" * 100_000, 0)))
    assert added["notifyd.original.timestamp"] == b""
    assert len(added["notifyd.error.message"]) < 1100
    assert added["notifyd.attempts"] == b"0"


def test_no_original_headers() -> None:
    assert len(build(original=None)) == len(dlqheaders.DLQ_HEADERS)


def test_producer_settings_force_idempotence_and_drop_consumer_keys() -> None:
    settings = dlq_producer(KafkaSettings("b:9092", {
        "security.protocol": "SASL_SSL", "sasl.username": "u",
        "session.timeout.ms": 6000, "group.id": "g", "acks": "1", "enable.idempotence": False,
    }))
    assert settings == {"bootstrap.servers": "b:9092", "security.protocol": "SASL_SSL", "sasl.username": "u",
                        "acks": "all", "enable.idempotence": True, "message.max.bytes": 100_000_000}


def test_a_record_written_without_its_value_says_what_was_left_out() -> None:
    text = omission(b"x" * 5000, [("traceparent", b"1"), ("raw", b"2")], "Broker: Message size too large")
    assert text.startswith("5000 bytes of value and 2 original headers left out") and "too large" in text
    headers = build(original=None, omitted=text)
    assert dict(headers)[dlqheaders.HEADER_VALUE_OMITTED] == text.encode()
    assert "notifyd.value.omitted" not in dict(build())
