"""The channel process against a real broker: delivery, order, retries, DLQ, pause, drain, rebalance."""

from __future__ import annotations

import dataclasses
import threading
import time
import traceback
from collections import defaultdict
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from notifyd.channel import lifecycle, pollloop
from notifyd.channel.pollloop import StopRequest
from notifyd.channel.rebalance import Rebalancer
from notifyd.channel.worker import serve
from notifyd.exitcodes import ExitCode
from tests.kit.handlers import read_records
from tests.kit.kafka import KafkaKit
from tests.kit.wait import wait_until
from tests.kit.worker import Worker, channel_config, delivered_ids, notification

pytestmark = pytest.mark.kafka
QUICK_BACKOFF = {"initial": 0.01, "max": 0.05}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_thousand_notifications_with_concurrency_32_arrive_once_each_in_key_order(
        kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path = unique("worker.bulk"), tmp_path / "deliveries.jsonl"
    kafka.create_topics(topic, partitions=3)
    for seq in range(1000):
        key = f"user-{seq % 40}"
        kafka.produce(topic, notification(f"n-{seq}", data={"key": key, "seq": seq}), key=key)
    kafka.flush()
    config = channel_config(kafka.bootstrap, bulk={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(path), "delay": 0.002},
        "concurrency": 32, "group_id": unique("group")})
    worker = start(config, "bulk")

    wait_until(lambda: len(delivered_ids(path)) == 1000, what="1000 deliveries")
    assert worker.finish() == ExitCode.OK

    records = read_records(path)
    assert {r["id"] for r in records} == {f"n-{seq}" for seq in range(1000)}
    by_key: dict[str, list[int]] = defaultdict(list)
    for r in records:
        by_key[r["data"]["key"]].append(r["data"]["seq"])
    assert all(seqs == sorted(seqs) for seqs in by_key.values()), "same-key messages out of order"
    assert max(r["running"] for r in records) > 1, "different keys did not run in parallel"
    assert max(r["running"] for r in records) <= 32
    assert sum(kafka.committed(config.channels["bulk"].group_id, topic, 3)) == 1000


def test_an_async_handler_runs_on_the_event_loop(kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path = unique("worker.async"), tmp_path / "deliveries.jsonl"
    kafka.create_topics(topic)
    for seq in range(200):
        kafka.produce(topic, notification(f"a-{seq}"), key=f"k{seq % 50}")
    kafka.flush()
    config = channel_config(kafka.bootstrap, push={
        "topics": [topic], "handler": "tests.kit.handlers:AsyncRecorder",
        "options": {"path": str(path), "delay": 0.01}, "concurrency": 50})
    worker = start(config, "push")
    wait_until(lambda: len(delivered_ids(path)) == 200, what="200 async deliveries")
    assert worker.finish() == ExitCode.OK
    records = read_records(path)
    assert all(r["via"] == "async" for r in records)
    assert {r["loop"] for r in records} == {"uvloop"}, "the channel's event loop is not uvloop"
    times = [r["at"] for r in records]
    assert max(times) - min(times) < 200 * 0.01 / 2, "async sends did not overlap"


def test_failures_retry_then_reach_the_dlq_with_every_header(kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path = unique("worker.fail"), tmp_path / "attempts.jsonl"
    dlq = f"{topic}.dlq"
    kafka.create_topics(topic, dlq)
    original_headers = [("traceparent", b"00-trace-01"), ("raw", b"\x00\xff")]
    values: dict[str, bytes] = {
        "flaky-1": notification("flaky-1").encode(), "fail-1": notification("fail-1").encode(),
        "perm-1": notification("perm-1").encode(), "hang-1": notification("hang-1").encode(),
        "bad-bytes": b"\xff\x00 not json at all", "bad-schema": b'{"id": "bad-schema", "to": "x"}',
    }
    for name, value in values.items():
        kafka.produce(topic, value, key=name, headers=original_headers)
    for seq in range(20):
        kafka.produce(topic, notification(f"ok-{seq}"), key=f"ok-{seq}")
    kafka.flush()
    config = channel_config(kafka.bootstrap, email={
        "topics": [topic], "handler": "tests.kit.handlers:Scripted", "options": {"path": str(path)},
        "retries": 3, "backoff": QUICK_BACKOFF, "timeout": 0.5, "dlq": dlq, "concurrency": 8})
    worker = start(config, "email")

    dead = {m.key().decode(): m for m in kafka.read(dlq, 5, timeout=30)}
    assert set(dead) == {"fail-1", "perm-1", "hang-1", "bad-bytes", "bad-schema"}
    wait_until(lambda: "flaky-1" in {r["id"] for r in read_records(path) if r["attempt"] == 3}, what="flaky-1")
    assert worker.finish() == ExitCode.OK

    attempts = defaultdict(list)
    for r in read_records(path):
        attempts[r["id"]].append(r["attempt"])
    assert attempts["flaky-1"] == [1, 2, 3]
    assert attempts["fail-1"] == [1, 2, 3, 4]  # retries + 1
    assert attempts["hang-1"] == [1, 2, 3, 4]
    assert attempts["perm-1"] == [1]
    assert "bad-bytes" not in attempts and "bad-schema" not in attempts
    assert {f"ok-{seq}" for seq in range(20)} <= set(attempts)

    expected = {"fail-1": ("retries_exhausted", "4", "ConnectionError"), "perm-1": ("permanent", "1", "PermanentError"),
                "hang-1": ("retries_exhausted", "4", "RetryableError"),
                "bad-bytes": ("invalid", "0", "InvalidNotification"),
                "bad-schema": ("invalid", "0", "InvalidNotification")}
    for name, (reason, tries, error_class) in expected.items():
        record = dead[name]
        assert record.value() == values[name]
        headers = record.headers()
        assert headers[:2] == original_headers
        added = {k: v.decode() for k, v in headers[2:]}
        assert added["notifyd.channel"] == "email"
        assert added["notifyd.original.topic"] == topic
        assert added["notifyd.original.partition"] == "0"
        assert int(added["notifyd.original.offset"]) == list(values).index(name)
        assert int(added["notifyd.original.timestamp"]) > 1_600_000_000_000
        assert (added["notifyd.error.reason"], added["notifyd.attempts"], added["notifyd.error.class"]) == (
            reason, tries, error_class)
        assert added["notifyd.error.message"]
        assert added["notifyd.failed.at"].endswith("+00:00")
    assert "timeout" in dict(dead["hang-1"].headers())["notifyd.error.message"].decode()
    assert sum(kafka.committed(config.channels["email"].group_id, topic)) == len(values) + 20


def test_without_a_dlq_failures_are_logged_skipped_and_counted(kafka: KafkaKit, unique, tmp_path: Path,
                                                               start) -> None:
    topic, path = unique("worker.nodlq"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    kafka.produce(topic, b"{{{")
    kafka.produce(topic, notification("perm-2"))
    kafka.produce(topic, notification("ok-1"))
    kafka.flush()
    channel = unique("sms")
    config = channel_config(kafka.bootstrap, **{channel: {
        "topics": [topic], "handler": "tests.kit.handlers:Scripted", "options": {"path": str(path)}}})
    worker = start(config, channel)
    wait_until(lambda: "ok-1" in delivered_ids(path), what="ok-1")
    wait_until(lambda: metric("notifyd_notifications_dead_lettered_total", channel=channel, reason="permanent"),
               what="the permanent failure counted")
    assert worker.finish() == ExitCode.OK
    assert metric("notifyd_notifications_dead_lettered_total", channel=channel, reason="invalid") == 1
    assert metric("notifyd_notifications_received_total", channel=channel) == 3
    assert metric("notifyd_notifications_delivered_total", channel=channel) == 1
    assert metric("notifyd_delivery_attempts_total", channel=channel, result="permanent_error") == 1
    assert kafka.committed(config.channels[channel].group_id, topic) == [3]


def test_a_slow_handler_pauses_consumption_within_concurrency_and_reports_status(
        kafka: KafkaKit, unique, tmp_path: Path, start, monkeypatch: pytest.MonkeyPatch) -> None:
    topic, path = unique("worker.limit"), tmp_path / "deliveries.jsonl"
    kafka.create_topics(topic)
    # More than the read-ahead buffer, delivered slowly enough that it stays full for longer
    # than PAUSE_AFTER: consumption must pause (keeping the group alive) and resume.
    monkeypatch.setattr(pollloop, "PAUSE_AFTER", 0.2)
    for seq in range(600):
        kafka.produce(topic, notification(f"l-{seq}"), key=f"k{seq}")
    kafka.flush()
    config = channel_config(kafka.bootstrap, slow={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(path), "delay": 0.005},
        "concurrency": 1})
    receiver, sender = Pipe(duplex=False)
    with capture_logs() as logs:
        worker = start(config, "slow", sender)
        wait_until(lambda: len(delivered_ids(path)) == 600, what="600 deliveries")
        assert worker.finish() == ExitCode.OK
    events_logged = [entry["event"] for entry in logs]
    assert 1 <= events_logged.count("consumption paused: deliveries are behind") <= 4, "pause/resume flapping"
    assert "consumption resumed" in events_logged
    assert max(r["running"] for r in read_records(path)) == 1
    events = []
    while receiver.poll():
        events.append(receiver.recv())
    names = [e.name for e in events]
    assert names[0] == lifecycle.EVENT_READY
    assert lifecycle.EVENT_HEARTBEAT in names
    assert names[-1] == lifecycle.EVENT_DRAINING
    assert {(e.channel, e.member) for e in events} == {("slow", 0)}


def test_stopping_drains_in_flight_work_then_commits(kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path = unique("worker.drain"), tmp_path / "deliveries.jsonl"
    kafka.create_topics(topic)
    for seq in range(6):
        kafka.produce(topic, notification(f"d-{seq}"), key=f"k{seq}")
    kafka.flush()
    channel = unique("drain")
    config = channel_config(kafka.bootstrap, **{channel: {
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(path), "delay": 1.0},
        "concurrency": 6}})
    worker = start(config, channel)
    wait_until(lambda: metric("notifyd_inflight_deliveries", channel=channel) > 0, what="deliveries in flight")
    assert delivered_ids(path) == set()
    assert worker.finish() == ExitCode.OK
    assert delivered_ids(path) == {f"d-{seq}" for seq in range(6)}
    assert kafka.committed(config.channels[channel].group_id, topic) == [6]


def test_a_memory_limit_passed_drains_and_asks_for_a_recycle(kafka: KafkaKit, unique, tmp_path: Path) -> None:
    topic = unique("worker.memory")
    kafka.create_topics(topic)
    config = channel_config(kafka.bootstrap, big={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(tmp_path / "x")},
        "memory_limit_mb": 1})
    assert serve(config, "big", stop=StopRequest()) == ExitCode.RECYCLE


def test_a_channel_stopped_during_its_first_join_takes_its_assignments_before_closing(
        kafka: KafkaKit, unique, tmp_path: Path, monkeypatch) -> None:
    # An assignment served inside close() has hung the whole process: confluent-kafka calls
    # librdkafka's assign there with the GIL held. The memory limit stops at the first poll.
    topic, served_on = unique("worker.firstjoin"), []
    kafka.create_topics(topic)
    on_assign = Rebalancer.on_assign

    def recording(self: Rebalancer, consumer: Any, partitions: list) -> None:
        served_on.append(threading.current_thread().name)
        on_assign(self, consumer, partitions)

    monkeypatch.setattr(Rebalancer, "on_assign", recording)
    config = channel_config(kafka.bootstrap, quick={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(tmp_path / "x")},
        "memory_limit_mb": 1})
    assert serve(config, "quick", stop=StopRequest()) == ExitCode.RECYCLE
    # Once each, for the source topics' consumer and the delay topics', both on their I/O threads.
    assert sorted(name.split("_")[0] for name in served_on) == ["notifyd-delay", "notifyd-poll"], served_on


def test_a_stopped_channel_leaves_its_group_before_closing_so_no_revocation_runs_inside_close(
        kafka: KafkaKit, unique, tmp_path: Path, monkeypatch) -> None:
    # A rebalance callback served inside close() can hang with the GIL held (librdkafka #4527,
    # #4884): an assignment still on its way when a member leaves, say. Each consumer
    # unsubscribes first and takes its last revocation from consume() (fetching.leave_group).
    topic, revoked_in = unique("worker.leave"), []
    kafka.create_topics(topic)
    on_revoke = Rebalancer.on_revoke

    def recording(self: Rebalancer, consumer: Any, partitions: list) -> None:
        if partitions:
            revoked_in.append({frame.name for frame in traceback.extract_stack()})
        on_revoke(self, consumer, partitions)

    monkeypatch.setattr(Rebalancer, "on_revoke", recording)
    config = channel_config(kafka.bootstrap, leaving={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(tmp_path / "x")},
        "memory_limit_mb": 1})
    assert serve(config, "leaving", stop=StopRequest()) == ExitCode.RECYCLE
    # The source topics' consumer and the delay topics': each revoked once, from leave_group.
    assert len(revoked_in) == 2 and all("leave_group" in names for names in revoked_in), revoked_in


def test_a_channel_stopped_with_every_broker_down_does_not_wait_for_a_join(tmp_path: Path) -> None:
    config = channel_config("127.0.0.1:1", down={  # nothing listens there
        "topics": ["t"], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(tmp_path / "x")}})
    assert config.shutdown_timeout == 10
    with capture_logs() as logs:
        worker = Worker(config, "down")
        wait_until(lambda: any(e["event"] == "every broker is down" for e in logs), what="the outage")
        assert worker.finish(timeout=8) == ExitCode.OK  # within the shutdown timeout: no join waited for


def test_a_handler_that_cannot_load_is_a_config_error(tmp_path: Path) -> None:
    channels = {
        "broken": {"topics": ["t"], "handler": "tests.kit.handlers:Broken"},
        "missing": {"topics": ["t"], "handler": "tests.no_such_module:Handler"},
        "options": {"topics": ["t"], "handler": "tests.kit.handlers:Recorder", "options": {"unknown": 1}},
    }
    config = channel_config("127.0.0.1:1", **channels)
    for name in [*channels, "not-a-channel"]:
        assert serve(config, name, stop=StopRequest()) == ExitCode.CONFIG, name


def test_ten_megabyte_values_are_delivered_or_dead_lettered_intact(kafka: KafkaKit, unique, tmp_path: Path,
                                                                    start) -> None:
    topic, path = unique("worker.big"), tmp_path / "deliveries.jsonl"
    dlq = f"{topic}.dlq"
    kafka.create_topics(topic, dlq)
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "message.max.bytes": 32 * 1024 * 1024})
    huge_garbage = b"\xff" + b"x" * 10_000_000
    producer.produce(topic, huge_garbage, key=b"garbage")
    producer.produce(topic, notification("big-ok", body="y" * 10_000_000), key=b"fine")
    producer.produce(topic, notification("after"), key=b"after")
    assert producer.flush(30) == 0
    config = channel_config(kafka.bootstrap, big={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(path)}, "dlq": dlq})
    worker = start(config, "big")
    wait_until(lambda: {"big-ok", "after"} <= delivered_ids(path), what="both valid notifications")
    dead = kafka.read(dlq, 1, timeout=30)
    assert len(dead) == 1 and dead[0].value() == huge_garbage
    assert dict(dead[0].headers())["notifyd.error.reason"] == b"invalid"
    assert worker.finish() == ExitCode.OK
    assert kafka.committed(config.channels["big"].group_id, topic) == [3]


def test_a_record_the_dlq_refuses_as_too_large_is_dead_lettered_without_its_value(
        kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    # Production DLQ topics often keep the broker's 1 MB limit while the channel's topic allows
    # more; here the client's own message.max.bytes plays the refusing broker.
    topic, path = unique("worker.toolarge"), tmp_path / "deliveries.jsonl"
    dlq = f"{topic}.dlq"
    kafka.create_topics(topic, dlq)
    oversized = b"\xff" + b"x" * 50_000
    kafka.produce(topic, oversized, key="garbage", headers=[("traceparent", b"00-trace-01")])
    kafka.produce(topic, notification("after"), key="after")
    kafka.flush()
    config = channel_config(kafka.bootstrap, big={
        "topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(path)}, "dlq": dlq})
    limited = dataclasses.replace(config.kafka, config={**config.kafka.config, "message.max.bytes": 20_000})
    config = dataclasses.replace(config, kafka=limited)
    with capture_logs() as logs:
        worker = start(config, "big")
        (dead,) = kafka.read(dlq, 1, timeout=30)
        wait_until(lambda: "after" in delivered_ids(path), what="the notification after it")
        assert worker.finish() == ExitCode.OK
    assert dead.key() == b"garbage" and dead.value() == b""
    headers = dict(dead.headers())
    assert "traceparent" not in headers and headers["notifyd.error.reason"] == b"invalid"
    assert headers["notifyd.value.omitted"].startswith(b"50001 bytes of value and 1 original headers left out")
    assert any(entry["event"].startswith("the dlq refuses the record as too large") for entry in logs)
    assert kafka.committed(config.channels["big"].group_id, topic) == [2]


def test_stopping_does_not_wait_for_a_long_backoff(kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path = unique("worker.backoff"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    kafka.produce(topic, notification("fail-long"), key="a")
    kafka.produce(topic, notification("ok-next"), key="b")
    kafka.flush()
    config = channel_config(kafka.bootstrap, slow={
        "topics": [topic], "handler": "tests.kit.handlers:Scripted", "options": {"path": str(path)},
        "backoff": {"initial": 60, "jitter": False}})
    worker = start(config, "slow")
    wait_until(lambda: {"fail-long", "ok-next"} <= delivered_ids(path), what="both first attempts")
    stopping = time.monotonic()
    assert worker.finish() == ExitCode.OK
    assert time.monotonic() - stopping < 5
    # Since issue 20 the retry waits in a delay topic, acknowledged there before the source offset is done.
    assert kafka.committed(config.channels["slow"].group_id, topic) == [2]
    waiting = kafka.read(f'{config.channels["slow"].group_id}.delay.30s', 1)  # 60 s: 30 s, then 30 s
    assert b"fail-long" in waiting[0].value()
