"""The pure side of ``notifyd dlq``: selecting and planning a replay, summaries of bad records, times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifyd.cli import main
from notifyd.records import dlqheaders as h
from notifyd.tools.replay import DlqRecord, Selection, plan_replay, replayed_headers
from notifyd.tools.timespec import BadTime, parse_time


def record(offset: int, *, reason: str = "permanent", failed_at: str = "2026-11-24T10:00:00+00:00",
           value: bytes = b'{"id": "n"}', original: str | None = "orig") -> DlqRecord:
    headers = [("keep", b"1"), (h.HEADER_ERROR_REASON, reason.encode()), (h.HEADER_FAILED_AT, failed_at.encode()),
               (h.REPLAYED_FROM, b"older:0:9")]
    if original:
        headers.append((h.HEADER_ORIGINAL_TOPIC, original.encode()))
    return DlqRecord.of(topic="d", partition=0, offset=offset, key=None, value=value, headers=headers, timestamp_ms=1)


def test_selection_and_plan_are_pure():
    since = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    assert Selection(since=since).matches(record(0))
    assert not Selection(since=since).matches(record(0, failed_at="2026-11-24T09:00:00Z"))
    assert not Selection(reasons=frozenset({"invalid"})).matches(record(0))
    assert Selection(ids=frozenset({"n"})).matches(record(0))
    plan = plan_replay([record(0), record(1), record(2, original=None)], already_replayed={"d:0:1"})
    assert [r.offset for r in plan.replay] == [0]
    skipped = [(r.offset, why) for r, why in plan.skipped]
    assert skipped == [(1, "already replayed"), (2, "no notifyd.original.topic header")]
    assert replayed_headers(record(5)) == [("keep", b"1"), (h.REPLAYED_FROM, b"d:0:5")]


def test_undecodable_headers_never_break_a_summary():
    headers = [(h.HEADER_FAILED_AT, b"\xff\xfe"), (h.HEADER_ATTEMPTS, b"many"), (h.HEADER_ERROR_MESSAGE, None),
               (h.HEADER_ORIGINAL_PARTITION, b"\x00")]
    broken = DlqRecord.of(topic="d", partition=0, offset=3, key=None, value=None, headers=headers,
                          timestamp_ms=1_700_000_000_000)
    summary = broken.summary()
    assert (summary["id"], summary["attempts"], summary["original_partition"]) == ("-", None, None)
    assert summary["failed_at"] == "2023-11-14T22:13:20+00:00"
    assert Selection(since=datetime(2023, 1, 1, tzinfo=UTC)).matches(broken)


@pytest.mark.parametrize("value", [b"", b"\xff", b"[1]", b'{"id": true}', b'{"id": null}', b"null"])
def test_id_of_a_bad_value_is_a_dash(value):
    assert record(0, value=value).id == "-"


def test_parse_time():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_time("90m", now=now) == datetime(2026, 11, 24, 10, 30, tzinfo=UTC)
    assert parse_time("2d", now=now) == datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_time("2026-11-24T08:00:00+02:00", now=now) == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    assert parse_time("2026-11-24T08:00", now=now) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    with pytest.raises(BadTime):
        parse_time("last tuesday", now=now)
    with pytest.raises(BadTime):  # an OverflowError and a traceback before
        parse_time("9999999w", now=now)


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00"])
def test_an_iso_time_whose_utc_is_out_of_range_is_a_bad_time(text):
    # Its conversion to UTC raised OverflowError: a traceback from dlq inspect --since.
    with pytest.raises(BadTime):
        parse_time(text, now=datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


def test_a_dead_letter_without_its_value_is_skipped_with_where_the_original_is():
    stub = DlqRecord.of(topic="d", partition=0, offset=7, key=b"k", value=b"", timestamp_ms=1, headers=[
        (h.HEADER_ORIGINAL_TOPIC, b"orig"), (h.HEADER_ORIGINAL_PARTITION, b"2"), (h.HEADER_ORIGINAL_OFFSET, b"41"),
        (h.HEADER_VALUE_OMITTED, b"50001 bytes of value and 0 original headers left out: ...")])
    plan = plan_replay([stub, record(8)], already_replayed=set())
    assert [r.offset for r in plan.replay] == [8]
    (skipped, why), = plan.skipped
    assert skipped.offset == 7 and "50001 bytes" in why and "orig[2] offset 41" in why


@pytest.mark.parametrize("argv", [
    ["dlq", "inspect", "--channel", "c", "--limit", "0"], ["dlq", "inspect", "--channel", "c", "--limit", "-5"],
    ["dlq", "inspect", "--channel", "c", "--timeout", "nan"], ["status", "--timeout", "-1"],
])
def test_a_count_or_a_timeout_that_is_not_over_0_is_a_usage_error(argv, capsys):
    # --limit 0 printed "(no dead letters)" with exit 0; --timeout nan ended in a traceback.
    assert main(argv) == 2 and "over 0" in capsys.readouterr().err
