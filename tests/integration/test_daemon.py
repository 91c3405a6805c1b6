"""``notifyd run`` end to end: real supervisor, real channel processes, real broker."""

from __future__ import annotations

import json
import os
import signal
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from notifyd.exitcodes import ExitCode
from tests.kit.daemon import daemon_config
from tests.kit.handlers import read_records
from tests.kit.kafka import KafkaKit
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka


def recorder_channel(topic: str, path: Path, **extra: Any) -> dict[str, Any]:
    return {"topics": [topic], "handler": "tests.kit.handlers:Recorder", "options": {"path": str(path)},
            "backoff": {"initial": 0.05, "max": 0.2}, **extra}


def produce(kafka: KafkaKit, topic: str, ids: list[str]) -> None:
    for notification_id in ids:
        kafka.produce(topic, json.dumps({"id": notification_id, "to": "a@example.com", "body": "hi"}),
                      key=notification_id)
    kafka.flush()


def delivered(path: Path) -> Counter[str]:
    return Counter(r["id"] for r in read_records(path))


def test_sigkill_of_a_child_restarts_it_alone_and_loses_nothing(kafka, unique, tmp_path, write_config, daemon):
    email, sms = unique("email"), unique("sms")
    kafka.create_topics(email, sms, partitions=2)
    out_email, out_sms = tmp_path / "email.jsonl", tmp_path / "sms.jsonl"
    config = write_config(daemon_config(kafka.bootstrap, {
        "email": recorder_channel(email, out_email, group_id=unique("g")),
        "sms": recorder_channel(sms, out_sms, group_id=unique("g")),
    }))
    notifyd = daemon(config)
    notifyd.wait_ready()
    produce(kafka, email, [f"e-{i}" for i in range(200)])
    wait_until(lambda: len(delivered(out_email)) == 200, what="first batch delivered")

    victim, bystander = notifyd.child_pids("email")[-1], notifyd.child_pids("sms")[-1]
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(notifyd.child_pids("email")) == 2, what="email restarted")
    assert notifyd.child_pids("email")[-1] != victim
    assert notifyd.child_pids("sms") == [bystander]
    crash = [e for e in notifyd.events("channel process crashed; restarting") if e["pid"] == victim]
    assert crash and crash[0]["exit"] == "signal SIGKILL"

    produce(kafka, email, [f"e2-{i}" for i in range(200)])
    wait_until(lambda: len(delivered(out_email)) == 400, what="second batch delivered after the restart")
    notifyd.wait_ready()
    assert notifyd.metric("notifyd_channel_restarts_total", channel="email") == 1
    assert notifyd.metric("notifyd_channel_restarts_total", channel="sms") == 0
    assert notifyd.stop() == 0


def test_sigterm_lets_slow_deliveries_finish_and_commits(kafka, unique, tmp_path, write_config, daemon):
    topic, group, out = unique("slow"), unique("g"), tmp_path / "slow.jsonl"
    kafka.create_topics(topic)
    config = write_config(daemon_config(kafka.bootstrap, {
        "slow": recorder_channel(topic, out, group_id=group, concurrency=8, options={"path": str(out), "delay": 1.5}),
    }))
    notifyd = daemon(config)
    notifyd.wait_ready()
    ids = [f"s-{i}" for i in range(8)]
    produce(kafka, topic, ids)
    wait_until(lambda: notifyd.metric("notifyd_inflight_deliveries", channel="slow") >= 8, what="8 in flight")
    assert len(delivered(out)) == 0, "deliveries finished before the stop request; make them slower"
    assert notifyd.stop() == 0
    assert set(delivered(out)) == set(ids)
    assert kafka.committed(group, topic) == [8]

    again = daemon(config)
    again.wait_ready()
    produce(kafka, topic, ["after-restart"])
    wait_until(lambda: "after-restart" in delivered(out), what="a new notification after the restart")
    assert max(delivered(out).values()) == 1, "a notification was delivered twice"
    assert again.stop() == 0


def test_sighup_adds_a_channel_keeps_the_untouched_one_and_refuses_a_broken_file(
        kafka, unique, tmp_path, write_config, daemon):
    first, second = unique("first"), unique("second")
    kafka.create_topics(first, second)
    out_first, out_second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    channels = {"first": recorder_channel(first, out_first, group_id=unique("g"))}
    config = write_config(daemon_config(kafka.bootstrap, channels), name="notifyd.yaml")
    notifyd = daemon(config)
    notifyd.wait_ready()
    first_pid = notifyd.child_pids("first")[-1]

    channels["second"] = recorder_channel(second, out_second, group_id=unique("g"))
    config.write_text(yaml.safe_dump(daemon_config(kafka.bootstrap, channels)))
    notifyd.signal(signal.SIGHUP)
    wait_until(lambda: notifyd.child_pids("second"), what="the added channel started")
    notifyd.wait_ready()
    produce(kafka, second, ["new-channel"])
    produce(kafka, first, ["old-channel"])
    wait_until(lambda: delivered(out_second) and delivered(out_first), what="both channels deliver")
    assert notifyd.child_pids("first") == [first_pid], "the untouched channel was restarted"
    assert notifyd.metric("notifyd_config_reloads_total", result="success") == 1

    config.write_text("kafka: [this is not\n")
    notifyd.signal(signal.SIGHUP)
    wait_until(lambda: notifyd.metric("notifyd_config_reloads_total", result="failure") == 1,
               what="the failed reload counted")
    assert notifyd.events("reload refused: config invalid")
    produce(kafka, first, ["still-running"])
    wait_until(lambda: "still-running" in delivered(out_first), what="the old config keeps delivering")
    assert notifyd.child_pids("first") == [first_pid]
    assert notifyd.stop() == 0

    messages = notifyd.sd_notifications()
    assert messages[0].startswith("READY=1")
    assert sum(m.startswith("RELOADING=1\nMONOTONIC_USEC=") for m in messages) == 2
    assert any(m.startswith("STOPPING=1") for m in messages)


def test_metrics_match_a_known_workload_across_two_channels(kafka, unique, tmp_path, write_config, daemon):
    mail, push = unique("mail"), unique("push")
    kafka.create_topics(mail, push, unique("unused"))
    out = tmp_path / "deliveries.jsonl"
    config = write_config(daemon_config(kafka.bootstrap, {
        "mail": recorder_channel(mail, out, group_id=unique("g"), dlq=f"{mail}.dlq"),
        "push": {**recorder_channel(push, out, group_id=unique("g"), dlq=f"{push}.dlq"),
                 "handler": "tests.kit.handlers:Scripted", "retries": 2},
    }))
    kafka.create_topics(f"{mail}.dlq", f"{push}.dlq")
    notifyd = daemon(config, WATCHDOG_USEC="1000000")
    notifyd.wait_ready()
    assert notifyd.metric("notifyd_build_info") == 1
    produce(kafka, mail, [f"m-{i}" for i in range(30)])
    produce(kafka, push, [f"ok-{i}" for i in range(10)] + ["flaky-1", "perm-1", "fail-1"])
    kafka.produce(push, b"\xff not json")
    kafka.flush()

    def settled() -> bool:
        return notifyd.metric("notifyd_notifications_delivered_total", channel="push") == 11 and \
            notifyd.metric("notifyd_notifications_dead_lettered_total", channel="push", reason="retries_exhausted") == 1
    wait_until(settled, what="push settled")
    wait_until(lambda: notifyd.metric("notifyd_notifications_delivered_total", channel="mail") == 30, what="mail")

    m = notifyd.metric
    assert m("notifyd_notifications_received_total", channel="mail") == 30
    assert m("notifyd_delivery_attempts_total", channel="mail", result="success") == 30
    assert m("notifyd_delivery_duration_seconds_count", channel="mail") == 30
    assert m("notifyd_notifications_delivered_total", channel="push") == 11
    assert m("notifyd_delivery_attempts_total", channel="push", result="success") == 11
    assert m("notifyd_delivery_attempts_total", channel="push", result="retryable_error") == 2 + 3
    assert m("notifyd_delivery_attempts_total", channel="push", result="permanent_error") == 1
    assert m("notifyd_notifications_dead_lettered_total", channel="push", reason="permanent") == 1
    assert m("notifyd_notifications_dead_lettered_total", channel="push", reason="invalid") == 1
    assert m("notifyd_channel_up", channel="mail") == 1 and m("notifyd_channel_up", channel="push") == 1
    # The gauge is sampled by the poll loop (about every 0.1 s), after the counters move.
    wait_until(lambda: m("notifyd_inflight_deliveries", channel="mail") == 0, what="mail in-flight back to 0")
    lag_line = f'notifyd_consumer_lag{{channel="mail",partition="0",topic="{mail}"}} 0.0'
    wait_until(lambda: lag_line in notifyd.get("/metrics")[1], what="consumer lag of the mail partition reported as 0")
    status, body = notifyd.get("/healthz")
    assert status == 200
    assert "WATCHDOG=1" in notifyd.sd_notifications(), "no watchdog ping while every channel is healthy"
    assert notifyd.stop() == 0


def test_a_channel_that_cannot_load_stops_the_daemon_with_78(kafka, unique, tmp_path, write_config, daemon):
    config = write_config(daemon_config(kafka.bootstrap, {
        "broken": {"topics": [unique("t")], "handler": "tests.kit.handlers:Broken"},
    }))
    notifyd = daemon(config)
    assert notifyd.process.wait(60) == ExitCode.CONFIG
    assert notifyd.events("channel cannot start: config or handler error; stopping the daemon")


def test_an_invalid_config_exits_78_before_starting_anything(tmp_path, write_config, daemon):
    config = write_config(text="kafka: {}\nchannels: {}\n")
    notifyd = daemon(config)
    assert notifyd.process.wait(30) == ExitCode.CONFIG
    assert "is invalid; not starting" in notifyd.tail()


def test_a_metrics_address_in_use_exits_78_with_a_message(kafka, unique, write_config, daemon):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    with taken:
        port = taken.getsockname()[1]
        config = write_config(daemon_config(kafka.bootstrap, {"quiet": {"topics": [unique("t")], "handler": "log"}}))
        notifyd = daemon(config, NOTIFYD_METRICS_PORT=str(port))
        assert notifyd.process.wait(30) == ExitCode.CONFIG
    [line] = notifyd.events("cannot listen for /metrics; not starting")
    assert line["address"] == f"127.0.0.1:{port}" and "in use" in line["error"]
    assert "Traceback" not in notifyd.tail()
