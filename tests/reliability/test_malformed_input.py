"""Malformed records end in the DLQ with a reason, byte for byte; no process crashes."""

from __future__ import annotations

import json
import time

import pytest
from confluent_kafka import Producer

from notifyd.records import dlqheaders as h
from tests.kit.daemon import daemon_config
from tests.kit.scenario import Deliveries, channel, dlq_reasons, notification
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

TEN_MB = 10 * 1024 * 1024
# (label, value): every one must be dead-lettered with reason "invalid".
MALFORMED: list[tuple[str, bytes | None]] = [
    ("not JSON", b"hello, this is not JSON"),
    ("truncated JSON", b'{"id": "t-1", "to": "a@example.com", "bo'),
    ("invalid UTF-8", b'{"id": "\xff\xfe", "to": "a@example.com", "body": "hi"}'),
    ("UTF-16 JSON", json.dumps({"id": "u16", "to": "a", "body": "b"}).encode("utf-16")),
    ("JSON array", b"[1, 2, 3]"),
    ("JSON string", b'"just a string"'),
    ("JSON null", b"null"),
    ("id of the wrong type", b'{"id": 5, "to": "a@example.com", "body": "hi"}'),
    ("no address", b'{"id": "no-to", "body": "hi"}'),
    ("unknown field", b'{"id": "unknown-field", "to": "a@example.com", "body": "hi", "colour": "red"}'),
    ("nested 100k deep", b"[" * 100_000 + b"]" * 100_000),
    ("tombstone", None),
    ("10 MB of garbage", b"\x00garbage" * (TEN_MB // 8)),
    ("10 MB JSON of the wrong shape", json.dumps({"id": "huge", "to": "a", "body": "b",
                                                   "attachment": "x" * TEN_MB}).encode()),
]


def test_malformed_records_are_dead_lettered_with_a_reason(kafka, unique, tmp_path, write_config, daemon, figures):
    topic, dlq, out = unique("bad"), unique("bad.dlq"), tmp_path / "bad.jsonl"
    kafka.create_topics(topic, dlq)
    config = write_config(daemon_config(kafka.bootstrap, {
        "bad": channel(topic, out, group_id=unique("g"), dlq=dlq),
    }))
    notifyd = daemon(config)
    notifyd.wait_ready()
    big = Producer({"bootstrap.servers": kafka.bootstrap, "message.max.bytes": 2 * TEN_MB, "linger.ms": 5})
    started = time.monotonic()
    expected_offsets, good = {}, []
    for offset, (label, value) in enumerate(_interleaved()):
        big.produce(topic, value, key=label.encode())
        if label.startswith("good"):
            good.append(label)
        else:
            expected_offsets[offset] = (label, value)
    assert big.flush(60) == 0

    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() == len(good), timeout=60, what="the valid notifications delivered")
    dead = dlq_reasons(kafka, dlq, len(MALFORMED), timeout=60)
    settled = time.monotonic() - started
    missing = {label for offset, (label, _) in expected_offsets.items() if offset not in dead}
    figures.add("malformed input: 14 kinds interleaved with valid notifications", records=len(expected_offsets) +
                len(good), dead_lettered=len(dead), missing=len(missing), restarts=len(notifyd.child_pids("bad")) - 1,
                settled_s=settled)
    assert not missing, f"not dead-lettered: {sorted(missing)}"
    assert set(deliveries.counts) == {f"good-{i}" for i in range(len(good))}
    for offset, headers in dead.items():
        assert headers[h.HEADER_ERROR_REASON] == "invalid", expected_offsets[offset][0]
        assert headers[h.HEADER_ERROR_MESSAGE], expected_offsets[offset][0]
        assert len(headers[h.HEADER_ERROR_MESSAGE]) <= 1100, "a huge value leaked into the error header"
    _assert_byte_for_byte(kafka, dlq, expected_offsets)
    assert len(notifyd.child_pids("bad")) == 1, "a channel process crashed"
    assert notifyd.metric("notifyd_notifications_dead_lettered_total", channel="bad", reason="invalid") == len(MALFORMED)
    assert notifyd.stop() == 0


def _interleaved() -> list[tuple[str, bytes | None]]:
    records = []
    for index, (label, value) in enumerate(MALFORMED):
        records.append((f"good-{index}", notification(f"good-{index}").encode()))
        records.append((label, value))
    return records


def _assert_byte_for_byte(kafka, dlq: str, expected: dict[int, tuple[str, bytes | None]]) -> None:
    for message in kafka.read(dlq, len(expected), timeout=60):
        offset = int(dlqheaders_text(message)[h.HEADER_ORIGINAL_OFFSET])
        label, value = expected[offset]
        assert message.value() == value, f"{label}: the DLQ copy differs from the original"


def dlqheaders_text(message) -> dict[str, str]:
    return h.header_text(message.headers())
