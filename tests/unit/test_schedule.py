"""send_at, expires_at and priority: parsed from a record, checked by the schema and the client."""

from __future__ import annotations

import json

import pytest

from notifyd.records.notification import InvalidNotification, notification_problems, parse_notification
from notifyd.records.schedule import BadMoment, defer_until, expired, parse_moment
from notifyd.tools.timespec import BadTime, parse_ahead, rfc3339

BERLIN_TEN = 1796374800.0  # 2026-12-04T10:00:00+01:00


def parse(**fields):
    return parse_notification(json.dumps({"id": "n-1", "to": "a", "body": "b", **fields}).encode(), channel="c")


@pytest.mark.parametrize("value", [
    "2026-12-04T10:00:00+01:00", "2026-12-04T09:00:00Z", "2026-12-04t09:00:00z", "2026-12-04 09:00:00Z",
    "2026-12-04T09:00Z", "2026-12-04T04:00:00.000-05:00", BERLIN_TEN, int(BERLIN_TEN),
])
def test_moments_in_every_accepted_form(value) -> None:
    assert parse_moment(value) == BERLIN_TEN
    notification = parse(send_at=value, expires_at=value)
    assert notification.send_at == notification.expires_at == BERLIN_TEN


def test_fractions_are_kept() -> None:
    assert parse_moment("2026-12-04T09:00:00.25Z") == BERLIN_TEN + 0.25
    assert parse(send_at=BERLIN_TEN + 0.5).send_at == BERLIN_TEN + 0.5


def test_defaults() -> None:
    notification = parse()
    assert (notification.send_at, notification.expires_at, notification.priority) == (None, None, "normal")
    assert parse(priority="high").priority == "high"


@pytest.mark.parametrize(("fields", "words"), [
    ({"send_at": "2026-12-04T10:00:00"}, "send_at"),  # naive: no offset
    ({"send_at": "tomorrow"}, "send_at"),
    ({"expires_at": True}, "expires_at"),
    ({"expires_at": -1}, "expires_at"),
    ({"send_at": 1e20}, "send_at"),
    ({"send_at": None}, "send_at"),
    ({"send_at": "2026-02-30T10:00:00Z"}, "day is out of range"),
    ({"expires_at": "2026-12-04T25:00:00Z"}, "expires_at"),
    ({"send_at": "2026-12-04T10:00:00+01:00 and more"}, "send_at"),
    ({"priority": "urgent"}, "priority"),
])
def test_bad_values_make_the_notification_invalid(fields, words) -> None:
    with pytest.raises(InvalidNotification, match=words) as caught:
        parse(**fields)
    assert caught.value.notification_id == "n-1"
    problems = notification_problems({"id": "n-1", "to": "a", "body": "b", **fields})
    assert problems and any(words in problem for problem in problems), problems


def test_the_client_words_a_bad_moment_with_its_field() -> None:
    assert notification_problems({"id": "n", "to": "a", "body": "b", "send_at": "soon"}) == [
        "send_at: needs an RFC 3339 time with an offset (2026-12-04T10:00:00+01:00, Z for UTC) or epoch seconds"]
    assert notification_problems({"id": "n", "to": "a", "body": "b", "send_at": "2026-12-04T10:00:00Z"}) == []


@pytest.mark.parametrize("value", [False, None, [1], {"at": 1}, float("nan"), float("inf"), -0.5, "12:00", 253402300800, 1e300,
                                   "9999-12-31T23:59:59-01:00"])
def test_parse_moment_refuses_what_is_not_a_moment(value) -> None:
    with pytest.raises(BadMoment):
        parse_moment(value)


def test_defer_until_and_expired() -> None:
    scheduled = parse(send_at=BERLIN_TEN, expires_at=BERLIN_TEN + 60)
    assert defer_until(scheduled, BERLIN_TEN - 5) == BERLIN_TEN
    assert defer_until(scheduled, BERLIN_TEN) is None and defer_until(scheduled, BERLIN_TEN + 1) is None
    assert not expired(scheduled, BERLIN_TEN + 59.9)
    assert expired(scheduled, BERLIN_TEN + 60) and expired(scheduled, BERLIN_TEN + 3600)
    plain = parse()
    assert defer_until(plain, 0.0) is None and not expired(plain, 1e12)


@pytest.mark.parametrize(("text", "expected"), [
    ("+10m", 1000.0 + 600), ("+ 90s", 1090.0), ("in 2h", 1000.0 + 7200), ("IN 1D", 1000.0 + 86400),
    ("+1.5h", 1000.0 + 5400), ("1796374800", BERLIN_TEN), ("1796374800.5", BERLIN_TEN + 0.5),
    ("2026-12-04T10:00:00+01:00", BERLIN_TEN), ("2026-12-04T09:00:00Z", BERLIN_TEN),
])
def test_times_on_the_command_line(text, expected) -> None:
    assert parse_ahead(text, now=1000.0) == expected


@pytest.mark.parametrize("text", ["2026-12-04T10:00:00", "10m", "-10m", "in two hours", "", "+10y",
                                  "+99999999w", "9999-12-31T23:59:59-01:00"])
def test_bad_times_on_the_command_line(text) -> None:
    with pytest.raises(BadTime):
        parse_ahead(text, now=1000.0)


def test_rfc3339_round_trips() -> None:
    assert rfc3339(BERLIN_TEN) == "2026-12-04T09:00:00Z" and rfc3339(BERLIN_TEN + 0.25) == "2026-12-04T09:00:00.250Z"
    assert parse_moment(rfc3339(BERLIN_TEN + 0.25)) == BERLIN_TEN + 0.25


def test_a_trailing_newline_is_refused_by_the_client_as_by_the_channel() -> None:
    """Python's ``$`` (the client's schema check) matches before a final newline; the channel's does not."""
    fields = {"send_at": "2026-12-04T09:00:00Z\n"}
    with pytest.raises(InvalidNotification):
        parse(**fields)
    assert notification_problems({"id": "n-1", "to": "a", "body": "b", **fields})
    assert parse_ahead(" 2026-12-04T09:00:00Z\n", now=1000.0) == BERLIN_TEN  # the command line may pad it
