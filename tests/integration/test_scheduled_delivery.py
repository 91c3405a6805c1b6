"""Scheduled delivery and expiry against a real broker (issue 20.4).

A notification with ``send_at`` waits in the channel's delay topics until its time, across
a restart of the channel process; one past its ``expires_at`` is never sent, also while it
waits for a retry, and is dead-lettered with reason ``expired``. Quiet hours (issue 20.5)
park a notification on the delay topics until the user's window ends, and so does
``recipient_limit`` with ``action: defer`` (issue 22.5) until the recipient's window has room.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from notifyd.config.delays import delay_topics
from notifyd.config.loading import build_config
from notifyd.records import delayheaders as dh
from notifyd.records import dlqheaders as h
from tests.kit.handlers import read_records
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until
from tests.kit.worker import channel_config, notification

pytestmark = pytest.mark.kafka
HANDLER = "tests.kit.handlers:Outcomes"
# The recipient cap counts a notification when it is admitted, the handler stamps it when called:
# a window measured between two stamps can look up to this much shorter than it was.
ADMIT_TO_CALL = 0.05


def first_attempts(path: Path) -> dict[str, float]:
    """When each id was first attempted (epoch seconds)."""
    found: dict[str, float] = {}
    for entry in read_records(path):
        found.setdefault(entry["id"], entry["at"])
    return found


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone(offset=datetime.now().astimezone().utcoffset())).isoformat()


def test_a_scheduled_notification_is_delivered_at_its_time_across_a_restart(kafka: KafkaKit, unique,
                                                                           tmp_path: Path, start) -> None:
    topic, path = unique("sched.at"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    send_at = time.time() + 8
    kafka.produce(topic, notification("now-1"), key="k")
    kafka.produce(topic, notification("later-text", send_at=rfc3339(send_at)), key="k")
    kafka.produce(topic, notification("later-epoch", send_at=send_at), key="j")
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "options": {"path": str(path)}})
    worker = start(config, "c")
    wait_until(lambda: "now-1" in first_attempts(path), timeout=30, what="the unscheduled notification")
    worker.finish()  # the schedule lives on Kafka, not in the process
    assert kafka.committed(config.channels["c"].group_id, topic) == [3], "all three finished at the source"
    assert set(first_attempts(path)) == {"now-1"}
    start(config, "c")
    wait_until(lambda: {"later-text", "later-epoch"} <= set(first_attempts(path)), timeout=30, what="both")
    for notification_id in ("later-text", "later-epoch"):
        late = first_attempts(path)[notification_id] - send_at
        assert 0.0 <= late < 1.0, f"{notification_id} attempted {late:+.3f} s from its send_at"


def test_an_expired_notification_is_never_sent_and_dead_lettered_as_expired(kafka: KafkaKit, unique,
                                                                           tmp_path: Path, start) -> None:
    topic, path = unique("sched.expiry"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    now = time.time()
    kafka.produce(topic, notification("stale-1", expires_at=now - 60), key="a")
    kafka.produce(topic, notification("fail-1", expires_at=rfc3339(now + 12)), key="b")  # expires while it waits
    kafka.produce(topic, notification("later-1", send_at=now + 3, expires_at=now + 2), key="c")
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "dlq": f"{topic}.dlq",
                                                "options": {"path": str(path)}, "retry_schedule": ["5s", "10s"]})
    worker = start(config, "c")
    dead = {json.loads(m.value())["id"]: dict(m.headers()) for m in kafka.read(f"{topic}.dlq", 3, timeout=40)}
    worker.finish()
    assert {i: d[h.HEADER_ERROR_REASON] for i, d in dead.items()} == {
        "stale-1": b"expired", "fail-1": b"expired", "later-1": b"expired"}
    assert dead["stale-1"][h.HEADER_ATTEMPTS] == b"0" and dead["later-1"][h.HEADER_ATTEMPTS] == b"0"
    assert dead["fail-1"][h.HEADER_ATTEMPTS] == b"2", "a retry due after expires_at is not waited for"
    attempted: list[dict[str, Any]] = read_records(path)
    assert [e["id"] for e in attempted] == ["fail-1", "fail-1"]


@pytest.mark.parametrize("wait", ["behind its key", "at the rate limit"])
def test_a_notification_that_expires_while_it_waits_in_the_process_is_not_sent(kafka: KafkaKit, unique, tmp_path: Path,
                                                                             start, wait: str) -> None:
    # A slow provider (2 s a call) holds "otp-1" behind "slow-1" of its key, or a rate limit of one
    # attempt every 2 s holds it at the flow gate; it expires 1 s after it was read.
    topic, path = unique("sched.waits"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    channel: dict[str, Any] = {"topics": [topic], "handler": HANDLER, "dlq": f"{topic}.dlq", "concurrency": 4,
                               "options": {"path": str(path), "delay": 2.0 if wait == "behind its key" else 0.0}}
    if wait == "at the rate limit":
        channel["rate_limit"] = {"per_second": 0.5, "burst": 1}
    config = channel_config(kafka.bootstrap, c=channel)
    worker = start(config, "c")
    kafka.produce(topic, notification("warm-1"), key="w")
    kafka.flush()
    wait_until(lambda: "warm-1" in first_attempts(path), timeout=40, what="the channel's first delivery")
    kafka.produce(topic, notification("slow-1"), key="k")
    otp_key = "k" if wait == "behind its key" else "o"
    kafka.produce(topic, notification("otp-1", expires_at=time.time() + 1.0), key=otp_key)
    kafka.flush()
    dead_letters = kafka.read(f"{topic}.dlq", 1, timeout=30)
    wait_until(lambda: "slow-1" in first_attempts(path), timeout=30, what="the notification ahead of it")
    worker.finish()
    assert dead_letters, f"nothing dead-lettered; attempted: {sorted(first_attempts(path))}"
    dead = dead_letters[0]
    headers = dict(dead.headers())
    assert json.loads(dead.value())["id"] == "otp-1"
    assert (headers[h.HEADER_ERROR_REASON], headers[h.HEADER_ATTEMPTS]) == (b"expired", b"0")
    assert "otp-1" not in first_attempts(path), "sent after its expires_at"


def test_quiet_hours_hold_a_notification_until_they_end_but_not_a_high_priority_one(
        kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path, users = unique("sched.quiet"), tmp_path / "attempts.jsonl", tmp_path / "users.yaml"
    kafka.create_topics(topic)
    now = time.time()
    window = f"{_utc_clock(now - 3600)}-{_utc_clock(now + 7200)}"  # now is inside; it ends in about two hours
    users.write_text(json.dumps({"users": {
        "night": {"email": "night@example.com", "timezone": "UTC", "quiet_hours": window},
        "day": {"email": "day@example.com"},
    }}))
    for notification_id, user, extra in [("held-1", "night", {}), ("urgent-1", "night", {"priority": "high"}),
                                         ("day-1", "day", {})]:
        kafka.produce(topic, json.dumps({"id": notification_id, "user_id": user, "body": "b", **extra}), key=user)
    kafka.flush()
    config = build_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)}, "shutdown_timeout": 10,
        "directory": {"type": "file", "path": str(users)},
        "channels": {"c": {"topics": [topic], "handler": HANDLER, "options": {"path": str(path)},
                           "group_id": unique("g"), "respect_quiet_hours": True, "recipient": "email"}},
    }, "test.yaml")
    worker = start(config, "c")
    wait_until(lambda: {"urgent-1", "day-1"} <= set(first_attempts(path)), timeout=30, what="the two not held")
    worker.finish()
    assert "held-1" not in first_attempts(path)
    assert kafka.committed(config.channels["c"].group_id, topic) == [3], "the held one is parked on Kafka"
    parked = _delayed(kafka, delay_topics(config.channels["c"]))
    assert [json.loads(m.value())["id"] for m in parked] == ["held-1"]
    due = int(dict(parked[0].headers())[dh.HEADER_DUE]) / 1000
    assert due == (now + 7200) // 60 * 60, "held until the window's end"
    assert dict(parked[0].headers())[dh.HEADER_ATTEMPTS] == b"0", "a hold is not an attempt"


def _utc_clock(epoch: float) -> str:
    return time.strftime("%H:%M", time.gmtime(epoch))


def _delayed(kafka: KafkaKit, tiers: tuple[str, ...]) -> list[Any]:
    """Every record in the delay ``tiers`` (each of one partition)."""
    probe = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "probe", **FAST_GROUP})
    try:
        counts = {tier: probe.get_watermark_offsets(TopicPartition(tier, 0), timeout=10)[1] for tier in tiers}
    finally:
        probe.close()
    return [m for tier, count in counts.items() if count > 0 for m in kafka.read(tier, count)]


def test_recipient_limit_defer_parks_what_is_over_the_cap_until_the_window_has_room(
        kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path = unique("sched.cap"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    for n in range(4):
        kafka.produce(topic, notification(f"cap-{n}", to="busy@example.com"), key="busy")
    kafka.produce(topic, notification("other-1", to="calm@example.com"), key="calm")
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "options": {"path": str(path)},
                                                "recipient_limit": {"max": 2, "per": "4s", "action": "defer"}})
    start(config, "c")
    wait_until(lambda: len(first_attempts(path)) == 5, timeout=30, what="every notification, two of them later")
    sent = first_attempts(path)
    first = min(sent["cap-0"], sent["cap-1"])
    assert sent["other-1"] - first < 1.0, "another recipient does not wait"
    for later in ("cap-2", "cap-3"):  # the window opened when cap-0 was admitted, a moment before its handler's stamp
        after = sent[later] - first
        assert 4.0 - ADMIT_TO_CALL <= after < 6.0, f"{later} sent {after:.4f} s after the first"
    assert [e["id"] for e in read_records(path)].count("cap-2") == 1, "deferred, not dropped or sent twice"
