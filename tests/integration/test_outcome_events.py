"""Outcome events on a channel's ``events`` topic, read back from the real broker and checked against their schema."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from notifyd.schemas import validator
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until
from tests.kit.workerprocess import finish, start_worker

pytestmark = pytest.mark.kafka


def test_every_outcome_is_published_keyed_by_notification_id(kafka: KafkaKit, unique, tmp_path: Path,
                                                             write_config) -> None:
    topic, events, group = unique("outcomes"), unique("outcomes.events"), unique("group")
    kafka.create_topics(topic, events)
    config = write_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
        "channels": {"c": {"topics": [topic], "group_id": group, "handler": "tests.kit.handlers:Scripted",
                           "options": {"path": str(tmp_path / "deliveries.jsonl")}, "events": events,
                           "retries": 3, "backoff": {"initial": 0.01, "max": 0.05},
                           "consumer_config": {"auto.commit.interval.ms": 200}}},
    })
    for notification_id in ("ok-1", "flaky-1", "perm-1", "ok-1"):  # the second ok-1: a duplicate
        kafka.produce(topic, json.dumps({"id": notification_id, "to": "a", "body": "b"}), key=notification_id)
    kafka.flush()
    worker = start_worker(config, tmp_path / "w.log")
    try:
        # flaky-1's third attempt comes back from a delay topic after its source offset is done
        wait_until(lambda: len(kafka.read(events, 6, timeout=1.0)) == 6, timeout=45, what="all six outcomes")
    finally:
        finish(worker)
    records = kafka.read(events, 6)
    outcomes = defaultdict(list)
    for record in records:
        value = json.loads(record.value())
        assert not list(validator("outcome").iter_errors(value)), value
        assert record.key().decode() == value["id"] and value["channel"] == "c"
        outcomes[value["id"]].append((value["outcome"], value["attempt"]))
    assert outcomes["ok-1"] == [("delivered", 1), ("duplicate_suppressed", 1)]
    assert outcomes["flaky-1"] == [("attempt_failed", 1), ("attempt_failed", 2), ("delivered", 3)]
    assert outcomes["perm-1"] == [("dead_lettered", 1)]
