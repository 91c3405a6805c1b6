"""Per-notification log lines are sampled: the first 20 a second of each message, the rest counted."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog

from notifyd.logs import configure_logging
from notifyd.logsampling import FIRST, LEFT_OUT, LineSampler
from tests.kit.wait import wait_until

RETRY = "delivery failed, will retry"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def restore_structlog() -> Iterator[None]:
    """configure_logging binds this test's captured stderr; later tests must not inherit it."""
    yield
    structlog.reset_defaults()


def lines(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]


def test_the_first_lines_of_a_second_pass_and_the_next_window_says_how_many_were_left_out() -> None:
    clock = Clock()
    sampler = LineSampler(first=3, clock=clock)
    assert [sampler.admit(RETRY) for _ in range(5)] == [0, 0, 0, None, None]
    assert sampler.admit("notification held back") == 0  # each message has its own window
    clock.now += 0.99
    assert sampler.admit(RETRY) is None
    clock.now += 0.01
    assert [sampler.admit(RETRY) for _ in range(2)] == [3, 0]


def test_an_ended_window_reports_its_count_once_and_a_running_one_waits() -> None:
    clock = Clock()
    sampler = LineSampler(first=1, clock=clock)
    for _ in range(4):
        sampler.admit(RETRY)
    clock.now += 0.25
    assert sampler.take_overdue() == ({}, 0.75)  # running: to be looked at again when it ends
    clock.now += 0.75
    assert sampler.take_overdue() == ({RETRY: 3}, None)
    assert sampler.take_overdue() == ({}, None)
    assert sampler.admit(RETRY) == 0  # reported already: the next line does not say it again


def test_a_failure_storm_logs_twenty_lines_a_second_and_other_lines_all(capsys) -> None:
    configure_logging("info", sample=LineSampler(), channel="sms")
    log = structlog.get_logger()
    for n in range(200):
        log.info(RETRY, notification_id=f"n{n}")
        log.info("partitions assigned", n=n)
    logged = lines(capsys)
    retries = [line for line in logged if line["event"] == RETRY]
    assert [line["notification_id"] for line in retries] == [f"n{n}" for n in range(FIRST)]
    assert sum(line["event"] == "partitions assigned" for line in logged) == 200


def test_what_no_later_line_reported_is_logged_once_the_second_is_over(capsys) -> None:
    configure_logging("info", sample=LineSampler(first=2, interval=0.05), channel="sms")
    log = structlog.get_logger()
    for n in range(10):
        log.info(RETRY, notification_id=f"n{n}")
    report = wait_until(lambda: [line for line in lines(capsys) if line["event"] == LEFT_OUT], timeout=5,
                        what="the left-out report")
    assert report == [{**report[0], "line": RETRY, "suppressed": 8}]


def test_at_debug_level_every_line_is_logged(capsys) -> None:
    configure_logging("debug", sample=LineSampler(), channel="sms")
    log = structlog.get_logger()
    for n in range(100):
        log.info(RETRY, notification_id=f"n{n}")
    assert len(lines(capsys)) == 100
