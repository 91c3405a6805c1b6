"""Cooperative rebalancing by default: a member joining moves only the newcomer's share, not every partition."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from notifyd.config.kafka import channel_consumer
from notifyd.config.settings import ChannelSettings, KafkaSettings
from notifyd.exitcodes import ExitCode
from tests.kit.handlers import read_records
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until
from tests.kit.workerprocess import start_worker

PARTITIONS = 6


def test_cooperative_sticky_is_the_default_and_the_yaml_may_override_it() -> None:
    channel = ChannelSettings(name="c", topics=("t",), handler="log", group_id="g")
    assert channel_consumer(KafkaSettings("b:9092"), channel)["partition.assignment.strategy"] == "cooperative-sticky"
    eager = KafkaSettings("b:9092", {"partition.assignment.strategy": "range,roundrobin"})
    assert channel_consumer(eager, channel)["partition.assignment.strategy"] == "range,roundrobin"


def events(log: Path, name: str | tuple[str, ...], consumer: str | None = None) -> list[dict[str, Any]]:
    """``name`` events, in order, of the source consumer (``consumer=None``) or of the ``"delay"`` one."""
    names = (name,) if isinstance(name, str) else name
    found = []
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return [e for e in found if e.get("event") in names and e.get("consumer") == consumer]


def owned(log: Path, consumer: str | None = None) -> set[str]:
    """The partitions a member holds by its log: every assignment less every revocation, in order."""
    held: set[str] = set()
    for change in events(log, ("partitions assigned", "partitions revoked"), consumer):
        if change["event"] == "partitions assigned":
            held |= set(change["partitions"])
        else:
            held -= set(change["partitions"])
    return held


@pytest.mark.kafka
def test_an_existing_member_keeps_its_partitions_while_a_newcomer_gets_its_share(
        kafka: KafkaKit, unique, tmp_path: Path, write_config) -> None:
    topic, group, deliveries = unique("coop"), unique("group"), tmp_path / "deliveries.jsonl"
    kafka.create_topics(topic, partitions=PARTITIONS)
    config = write_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)},
        "channels": {"c": {"topics": [topic], "group_id": group, "handler": "tests.kit.handlers:Recorder",
                           "options": {"path": str(deliveries)}, "consumer_config": {"auto.commit.interval.ms": 200}}},
    })
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    first = start_worker(config, logs[0])
    second = None
    try:
        wait_until(lambda: len(owned(logs[0])) == PARTITIONS, timeout=40, what="the first member to own everything")
        everything = owned(logs[0])
        second = start_worker(config, logs[1])
        wait_until(lambda: len(owned(logs[1])) == PARTITIONS // 2, timeout=60, what="the newcomer's share")
        wait_until(lambda: owned(logs[0]) | owned(logs[1]) == everything, what="every partition owned")
        kept = owned(logs[0])
        assert len(kept) == PARTITIONS // 2 and not kept & owned(logs[1])
        revoked = [set(e["partitions"]) for e in events(logs[0], "partitions revoked")]
        assert revoked == [everything - kept], "the first member gave up more than the newcomer's share"
        assert len(events(logs[0], "partitions assigned")) == 1, "the first member's partitions were reassigned"
        for seq in range(60):  # both members deliver from their own partitions
            kafka.produce(topic, json.dumps({"id": f"c-{seq}", "to": "a", "body": "b"}), partition=seq % PARTITIONS)
        kafka.flush()
        wait_until(lambda: len(read_records(deliveries)) >= 60, what="every delivery")
        assert len({r["pid"] for r in read_records(deliveries)}) == 2
        # The delay tiers (10 topics of 6 partitions) are balanced in a group of their own.
        wait_until(lambda: len(owned(logs[0], "delay")) == len(owned(logs[1], "delay")) == 30,
                   what="the delay tiers split evenly")
    finally:
        for process in (first, second):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                assert process.wait(30) == ExitCode.OK
