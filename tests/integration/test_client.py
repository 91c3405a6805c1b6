"""notifyd.tools.client.Publisher against the real test broker."""

from __future__ import annotations

import json
import time

import pytest

from notifyd.config.kafka import topic_reader
from notifyd.config.loading import load_config
from notifyd.tools.client import DeliveryFailed, InvalidNotification, Publisher, UnknownChannel, prepare
from notifyd.tools.devbroker import free_port
from notifyd.tools.topicscan import read_to_end
from tests.kit.config import base_config


@pytest.fixture
def channel(kafka, unique, write_config):
    """A config whose channel ``audit`` consumes a fresh topic; yields (config, topic)."""
    topic = unique("client")
    kafka.create_topics(topic)
    data = base_config(kafka.bootstrap)
    data["channels"]["audit"]["topics"] = [topic]
    data["channels"]["audit"]["dlq"] = f"{topic}.dlq"
    return load_config(str(write_config(data))), topic


def records(bootstrap: str, topic: str):
    return list(read_to_end(topic_reader({"bootstrap.servers": bootstrap}), topic, timeout=10))


def test_send_waits_for_the_broker_and_returns_the_id(channel, kafka):
    config, topic = channel
    with Publisher(config) as publisher:
        sent = publisher.send("audit", to="ops@example.com", body="disk full", key="user-7", data={"host": "db1"})
    [record] = records(kafka.bootstrap, topic)
    assert record.key() == b"user-7"
    assert json.loads(record.value()) == {"id": sent, "to": "ops@example.com", "body": "disk full",
                                          "data": {"host": "db1"}}


def test_given_id_is_kept_and_path_is_accepted(channel, kafka):
    config, topic = channel
    with Publisher(config.path) as publisher:
        assert publisher.send("audit", id="n-1", user_id="u-1", template="welcome") == "n-1"
    [record] = records(kafka.bootstrap, topic)
    assert json.loads(record.value())["id"] == "n-1"


def test_send_many_sends_every_notification_and_reports_progress(channel, kafka):
    config, topic = channel
    seen: list[int] = []
    batch = [{"to": f"u{i}@example.com", "body": "hi", "id": f"m-{i}"} for i in range(300)]
    with Publisher(config) as publisher:
        assert publisher.send_many("audit", batch, key_field="to", progress=seen.append) == 300
    assert seen[-1] == 300
    sent = {json.loads(r.value())["id"]: r.key() for r in records(kafka.bootstrap, topic)}
    assert sent == {n["id"]: n["to"].encode() for n in batch}


def test_an_invalid_notification_in_a_batch_sends_nothing(channel, kafka):
    config, topic = channel
    batch = [{"to": "a@example.com", "body": "ok"}, {"to": "b@example.com"}]
    with Publisher(config) as publisher, pytest.raises(InvalidNotification) as caught:
        publisher.send_many("audit", batch)
    assert caught.value.index == 1
    assert "body or template" in str(caught.value)
    assert records(kafka.bootstrap, topic) == []


def test_unknown_channel_is_refused(channel):
    config, _ = channel
    with Publisher(config) as publisher, pytest.raises(UnknownChannel, match="'nope'.*audit"):
        publisher.send("nope", to="a@example.com", body="x")


def test_unreachable_broker_fails_within_the_timeout(write_config):
    config = load_config(str(write_config(base_config(f"127.0.0.1:{free_port()}"))))
    started = time.monotonic()
    with Publisher(config, timeout=2) as publisher, pytest.raises(DeliveryFailed) as caught:
        publisher.send("audit", to="a@example.com", body="x")
    assert caught.value.unreachable
    assert time.monotonic() - started < 10


def test_prepare_checks_the_schema_and_drops_none():
    assert prepare({"id": "x", "to": "a", "body": "b", "subject": None}) == {"id": "x", "to": "a", "body": "b"}
    with pytest.raises(InvalidNotification, match="exactly one of to, user_id"):
        prepare({"to": "a", "user_id": "u", "body": "b"})
    with pytest.raises(InvalidNotification, match="colour"):
        prepare({"to": "a", "body": "b", "colour": "red"})
