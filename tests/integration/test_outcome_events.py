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


def published(kafka: KafkaKit, config: Path, tmp_path: Path, topic: str, events: str, ids: tuple[str, ...], *,
              count: int) -> list:
    """Produce ``ids`` (each its own key), run the channel until ``count`` outcome events are out, read them."""
    for notification_id in ids:
        kafka.produce(topic, json.dumps({"id": notification_id, "to": "a", "body": "b"}), key=notification_id)
    kafka.flush()
    worker = start_worker(config, tmp_path / "w.log")
    try:
        wait_until(lambda: len(kafka.read(events, count, timeout=1.0)) == count, timeout=45,
                   what=f"{count} outcome events")
    finally:
        finish(worker)
    return kafka.read(events, count)


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
    # the second ok-1: a duplicate; flaky-1's third attempt comes back from a delay topic
    records = published(kafka, config, tmp_path, topic, events, ("ok-1", "flaky-1", "perm-1", "ok-1"), count=6)
    outcomes = defaultdict(list)
    for record in records:
        value = json.loads(record.value())
        assert not list(validator("outcome").iter_errors(value)), value
        assert record.key().decode() == value["id"] and value["channel"] == "c"
        outcomes[value["id"]].append((value["outcome"], value["attempt"]))
    assert outcomes["ok-1"] == [("delivered", 1), ("duplicate_suppressed", 1)]
    assert outcomes["flaky-1"] == [("attempt_failed", 1), ("attempt_failed", 2), ("delivered", 3)]
    assert outcomes["perm-1"] == [("dead_lettered", 1)]


@pytest.mark.parametrize("handler", ["tests.kit.handlers:AsyncHangs", "tests.kit.handlers:Hangs"])
def test_an_attempt_the_timeout_cuts_off_is_published_too(kafka: KafkaKit, unique, tmp_path: Path, write_config,
                                                          handler: str) -> None:
    # The reporter wraps the handler's send: a coroutine cancelled by the timeout, or a call
    # still hanging on a pool thread, never ended there, and published nothing.
    topic, events = unique("outcomes.timeout"), unique("outcomes.timeout.events")
    kafka.create_topics(topic, events)
    config = write_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)}, "ledger": False,
        "channels": {"c": {"topics": [topic], "group_id": unique("group"), "handler": handler,
                           "options": {"path": str(tmp_path / "deliveries.jsonl")}, "events": events,
                           "timeout": 0.5, "retries": 1, "backoff": {"initial": 0.01, "max": 0.05}}},
    })
    records = published(kafka, config, tmp_path, topic, events, ("hang-1", "ok-1"), count=3)
    values = [json.loads(record.value()) for record in records]
    assert not [error for value in values for error in validator("outcome").iter_errors(value)]
    hang = [(v["outcome"], v["attempt"], v.get("error", "")) for v in values if v["id"] == "hang-1"]
    assert [(outcome, attempt) for outcome, attempt, _error in hang] == [("attempt_failed", 1), ("dead_lettered", 2)]
    assert all("no answer within the channel timeout of 0.5 s" in error for _outcome, _attempt, error in hang)
