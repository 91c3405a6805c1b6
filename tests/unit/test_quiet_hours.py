"""Quiet hours: windows crossing midnight, time zones and the days daylight saving time changes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from notifyd.recipients.quiethours import BadQuietHours, parse_window, quiet_hours_problem, quiet_until


def at(text: str) -> float:
    """Epoch seconds of an ISO time with an offset."""
    return datetime.fromisoformat(text).timestamp()


def local(epoch: float, tz: str) -> str:
    return datetime.fromtimestamp(epoch, ZoneInfo(tz)).isoformat()


@pytest.mark.parametrize(("now", "expected"), [
    ("2026-06-10T21:59:59+02:00", None),
    ("2026-06-10T22:00:00+02:00", "2026-06-11T07:00:00+02:00"),
    ("2026-06-10T23:30:00+02:00", "2026-06-11T07:00:00+02:00"),
    ("2026-06-11T00:00:00+02:00", "2026-06-11T07:00:00+02:00"),
    ("2026-06-11T06:59:59.5+02:00", "2026-06-11T07:00:00+02:00"),
    ("2026-06-11T07:00:00+02:00", None),
    ("2026-06-11T12:00:00+02:00", None),
])
def test_a_window_crossing_midnight(now: str, expected: str | None) -> None:
    until = quiet_until("22:00-07:00", "Europe/Berlin", at(now))
    assert until == (at(expected) if expected else None)


@pytest.mark.parametrize(("now", "expected"), [
    ("2026-06-10T12:59:00-04:00", None),
    ("2026-06-10T13:00:00-04:00", "2026-06-10T14:00:00-04:00"),
    ("2026-06-10T13:59:59-04:00", "2026-06-10T14:00:00-04:00"),
    ("2026-06-10T14:00:00-04:00", None),
    ("2026-06-10T23:00:00-04:00", None),
])
def test_a_window_within_one_day(now: str, expected: str | None) -> None:
    until = quiet_until("13:00-14:00", "America/New_York", at(now))
    assert until == (at(expected) if expected else None)


def test_the_window_is_read_on_the_users_clock() -> None:
    now = at("2026-06-10T23:00:00+00:00")  # 01:00 in Berlin, 19:00 in New York, 08:00 in Tokyo
    assert local(quiet_until("22:00-07:00", "Europe/Berlin", now), "Europe/Berlin") == "2026-06-11T07:00:00+02:00"
    assert quiet_until("22:00-07:00", "America/New_York", now) is None
    assert quiet_until("22:00-07:00", "Asia/Tokyo", now) is None
    assert quiet_until("22:00-07:00", "UTC", now) == at("2026-06-11T07:00:00+00:00")


def test_equal_ends_mean_no_window() -> None:
    assert parse_window("07:00-07:00") is None
    assert quiet_until("00:00-00:00", "Europe/Berlin", at("2026-06-10T00:00:00+02:00")) is None


def test_the_whole_night_until_midnight() -> None:
    assert quiet_until("20:00-00:00", "Europe/Berlin", at("2026-06-10T23:59:00+02:00")) == at(
        "2026-06-11T00:00:00+02:00")
    assert quiet_until("00:00-06:00", "Europe/Berlin", at("2026-06-10T00:00:00+02:00")) == at(
        "2026-06-10T06:00:00+02:00")


# Europe/Berlin springs forward on 2026-03-29 at 02:00 CET to 03:00 CEST and falls back on
# 2026-10-25 at 03:00 CEST to 02:00 CET; America/New_York on 2026-03-08 at 02:00 EST to 03:00
# EDT and on 2026-11-01 at 02:00 EDT to 01:00 EST.

def test_a_night_shortened_by_the_spring_change_ends_at_the_local_end() -> None:
    until = quiet_until("22:00-07:00", "Europe/Berlin", at("2026-03-28T23:00:00+01:00"))
    assert local(until, "Europe/Berlin") == "2026-03-29T07:00:00+02:00"
    assert until - at("2026-03-28T23:00:00+01:00") == 7 * 3600  # one hour less than the wall clock shows


def test_a_night_lengthened_by_the_autumn_change_ends_at_the_local_end() -> None:
    until = quiet_until("22:00-07:00", "America/New_York", at("2026-10-31T23:00:00-04:00"))
    assert local(until, "America/New_York") == "2026-11-01T07:00:00-05:00"
    assert until - at("2026-10-31T23:00:00-04:00") == 9 * 3600


@pytest.mark.parametrize(("window", "tz", "now", "expected"), [
    # The end 02:30 does not exist that night: the window ends when the clock jumps to 03:00.
    ("22:00-02:30", "Europe/Berlin", "2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00"),
    ("22:00-02:30", "Europe/Berlin", "2026-03-28T22:00:00+01:00", "2026-03-29T03:00:00+02:00"),
    ("01:00-02:00", "America/New_York", "2026-03-08T01:30:00-05:00", "2026-03-08T03:00:00-04:00"),
    ("22:00-02:15", "America/New_York", "2026-03-07T23:00:00-05:00", "2026-03-08T03:00:00-04:00"),
])
def test_an_end_skipped_by_the_spring_change_gives_the_first_instant_after_it(window, tz, now, expected) -> None:
    assert quiet_until(window, tz, at(now)) == at(expected)


def test_an_end_that_happens_twice_gives_its_first_occurrence_still_ahead() -> None:
    # 01:30 happens at 05:30 UTC (EDT) and again at 06:30 UTC (EST).
    first_pass = quiet_until("00:00-01:30", "America/New_York", at("2026-11-01T01:10:00-04:00"))
    assert first_pass == at("2026-11-01T01:30:00-04:00")
    assert quiet_until("00:00-01:30", "America/New_York", at("2026-11-01T01:40:00-04:00")) is None
    second_pass = quiet_until("00:00-01:30", "America/New_York", at("2026-11-01T01:10:00-05:00"))
    assert second_pass == at("2026-11-01T01:30:00-05:00")
    berlin = quiet_until("23:00-02:30", "Europe/Berlin", at("2026-10-25T02:10:00+01:00"))
    assert berlin == at("2026-10-25T02:30:00+01:00")


def test_a_start_skipped_by_the_spring_change_still_holds_the_rest_of_the_window() -> None:
    assert quiet_until("02:30-06:00", "Europe/Berlin", at("2026-03-29T03:00:00+02:00")) == at(
        "2026-03-29T06:00:00+02:00")


@pytest.mark.parametrize("window", ["22:00", "22-07", "24:00-07:00", "22:60-07:00", "7:00-8:00", "", "22:00-07:00x"])
def test_bad_windows_are_refused(window: str) -> None:
    with pytest.raises(BadQuietHours, match="HH:MM-HH:MM"):
        quiet_until(window, "Europe/Berlin", 0.0)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "../../etc/passwd", "Europe/Berlin "])
def test_bad_time_zones_are_refused(tz: str) -> None:
    with pytest.raises(BadQuietHours, match="IANA"):
        quiet_until("22:00-07:00", tz, 0.0)


def test_problems_of_a_users_fields() -> None:
    assert quiet_hours_problem(None, None) is None
    assert quiet_hours_problem(None, "Europe/Berlin") is None
    assert quiet_hours_problem("22:00 - 07:00", "Europe/Berlin") is None
    assert "needs a timezone" in quiet_hours_problem("22:00-07:00", None)
    assert "IANA" in quiet_hours_problem("22:00-07:00", "Europe/Berlinn")
    assert "IANA" in quiet_hours_problem(None, 7)
    assert "HH:MM" in quiet_hours_problem(["22:00-07:00"], "UTC")


def inside(window: str, tz: str, epoch: float) -> bool:
    """The plain reading: the user's wall clock at ``epoch`` is within ``window``."""
    start, end = parse_window(window)
    wall = datetime.fromtimestamp(epoch, ZoneInfo(tz))
    clock = wall.hour * 3600 + wall.minute * 60 + wall.second
    return start <= clock < end if start < end else clock >= start or clock < end


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"])
@pytest.mark.parametrize("window", ["22:00-07:00", "01:30-02:30", "02:15-03:00", "13:00-14:00", "00:00-02:00"])
def test_quiet_until_agrees_with_the_wall_clock_around_every_change_of_2026(tz: str, window: str) -> None:
    """Every 10 minutes over two days around each DST change: held exactly while the wall clock is
    inside the window, and until the first instant it no longer is (to the minute)."""
    zone = ZoneInfo(tz)
    changes = [day for day in range(365) if zone.utcoffset(datetime(2026, 1, 1) + timedelta(days=day))
               != zone.utcoffset(datetime(2026, 1, 1) + timedelta(days=day + 1))] or [100]
    for day in changes:
        first = datetime(2026, 1, 1, tzinfo=zone).timestamp() + (day - 1) * 86400
        for now in range(int(first), int(first) + 3 * 86400, 600):
            until = quiet_until(window, tz, now)
            assert (until is not None) == inside(window, tz, now), (tz, window, local(now, tz))
            if until is None:
                continue
            assert until > now and not inside(window, tz, until), (tz, window, local(now, tz), local(until, tz))
            assert all(inside(window, tz, t) for t in range(now, int(until), 60)), (tz, window, local(now, tz))


@pytest.mark.parametrize("tz", [["Europe/Berlin"], {"name": "Europe/Berlin"}])
def test_a_time_zone_that_is_a_list_or_mapping_is_a_problem_not_a_crash(tz, tmp_path) -> None:
    """YAML or an attributes JSON can hold any type: an unhashable one once reached the zone cache."""
    from notifyd.recipients.directory import FileUsers

    assert "IANA" in quiet_hours_problem("22:00-07:00", tz)
    users = tmp_path / "users.yaml"
    users.write_text(json.dumps({"users": {
        "u-1": {"email": "a@example.com", "timezone": tz, "quiet_hours": "22:00-07:00"},
        "u-2": {"email": "b@example.com"}}}))
    source = FileUsers(str(users))
    assert source.fetch("u-2").email == "b@example.com"  # the others' notifications are not affected
    assert source.fetch("u-1").timezone is None and "IANA" in source.fetch("u-1").schedule_problem
