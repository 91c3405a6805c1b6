"""What an on-call engineer sees of a fresh daemon: every documented series, per-partition lag, /readyz."""

from __future__ import annotations

import json
import math

import pytest
from confluent_kafka import Consumer
from prometheus_client.parser import text_string_to_metric_families

from notifyd.metrics import CHANNEL, DOCUMENTED
from tests.kit.daemon import ROOT, daemon_config
from tests.kit.kafka import FAST_GROUP
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def missing_series(text: str, channels: list[str]) -> list[str]:
    """Each documented series (for each channel and known label value) absent from a scrape."""
    found = {(name, tuple(sorted(labels.items()))) for name, labels, _ in samples(text)}
    missing = []
    for series in DOCUMENTED:
        if series.per_partition:
            continue
        for labels in _expand(series.labels, channels):
            if (series.name, tuple(sorted(labels.items()))) not in found:
                missing.append(f"{series.name}{labels}")
    return missing


def _expand(labels: dict[str, tuple[str, ...]], channels: list[str]) -> list[dict[str, str]]:
    combos: list[dict[str, str]] = [{}]
    for name, values in labels.items():
        values = tuple(channels) if values == (CHANNEL,) else values
        combos = [{**combo, name: value} for combo in combos for value in values]
    return combos


def lag_partitions(text: str, channel: str, topic: str) -> dict[int, float]:
    """The lag series of ``topic``'s partitions (the channel's delay topics have theirs too)."""
    return {int(labels["partition"]): value for name, labels, value in samples(text)
            if name == "notifyd_consumer_lag" and labels["channel"] == channel and labels["topic"] == topic}


def test_every_documented_series_exists_from_the_first_scrape(kafka, unique, write_config, daemon):
    mail, push = unique("mail"), unique("push")
    kafka.create_topics(mail, partitions=3)
    kafka.create_topics(push)
    config = write_config(daemon_config(kafka.bootstrap, {
        "mail": {"topics": [mail], "handler": "log", "group_id": unique("g")},
        "push": {"topics": [push], "handler": "log", "group_id": unique("g"), "processes": 2},
    }))
    notifyd = daemon(config)
    wait_until(lambda: notifyd.get("/metrics")[0] == 200, what="the first scrape")
    first = notifyd.get("/metrics")[1]
    assert missing_series(first, ["mail", "push"]) == []
    assert {value for name, _, value in samples(first) if name.endswith("_total")} == {0.0}
    assert notifyd.get("/readyz")[0] == 503  # no channel has its partitions yet

    notifyd.wait_ready()
    body = json.loads(notifyd.get("/readyz")[1])
    assert body["ready"] and body["channels"]["mail"]["partitions"] == 3
    assert sorted(p["partitions"] for p in body["channels"]["push"]["processes"]) == [0, 1], \
        "a member the group gave nothing is ready, and says so"
    wait_until(lambda: lag_partitions(notifyd.get("/metrics")[1], "mail", mail) == {0: 0.0, 1: 0.0, 2: 0.0},
               what="a lag series for every partition, none of them read from yet")
    # Each process reports its lag on its own turn: push's may come a moment after mail's.
    wait_until(lambda: lag_partitions(notifyd.get("/metrics")[1], "push", push) == {0: 0.0},
               what="push's one partition's lag series")
    assert notifyd.stop() == 0


def test_a_revoked_partition_drops_its_lag_series(kafka, unique, write_config, daemon):
    topic, group = unique("lag"), unique("g")
    kafka.create_topics(topic, partitions=4)
    notifyd = daemon(write_config(daemon_config(kafka.bootstrap, {
        "mail": {"topics": [topic], "handler": "log", "group_id": group},
    })))
    notifyd.wait_ready()
    wait_until(lambda: set(lag_partitions(notifyd.get("/metrics")[1], "mail", topic)) == {0, 1, 2, 3}, what="lag of 4")

    intruder = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": group, **FAST_GROUP,
                         "partition.assignment.strategy": "cooperative-sticky"})  # as the channel consumers
    try:
        intruder.subscribe([topic])
        wait_until(lambda: intruder.poll(0.2) is None and bool(intruder.assignment()), timeout=40,
                   what="a second member taking partitions")
        taken = {tp.partition for tp in intruder.assignment()}

        def kept() -> set[int]:
            intruder.poll(0.1)  # stay in the group
            return set(lag_partitions(notifyd.get("/metrics")[1], "mail", topic))

        wait_until(lambda: kept() == {0, 1, 2, 3} - taken, timeout=40, what="the revoked partitions' lag gone")
        assert not any(math.isnan(v) for v in lag_partitions(notifyd.get("/metrics")[1], "mail", topic).values())
    finally:
        intruder.close()
    assert notifyd.stop() == 0


def test_the_example_config_lists_every_documented_series():
    example = (ROOT / "config" / "notifyd.example.yaml").read_text()
    names = {series.name.removesuffix("_count") for series in DOCUMENTED}
    assert sorted(name for name in names if name not in example) == []
