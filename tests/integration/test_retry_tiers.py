"""Durable retries against a real broker: isolation, precise delays, Retry-After, the DLQ, SIGKILL.

Issue 20: a failed notification waits in the channel's delay topics, not in the process.
"""

from __future__ import annotations

import json
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from notifyd.cli import main
from notifyd.config.delays import delay_topics
from notifyd.config.loading import load_config
from notifyd.records import delayheaders as dh
from notifyd.records import dlqheaders as h
from tests.kit.handlers import read_records
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until
from tests.kit.worker import channel_config, notification

pytestmark = pytest.mark.kafka
HANDLER = "tests.kit.handlers:Outcomes"
DAY_MS = 86_400_000


def attempts(path: Path) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for entry in read_records(path):
        found.setdefault(entry["id"], []).append(entry)
    return found


def delivered(path: Path) -> set[str]:
    return {entry["id"] for entry in read_records(path) if entry.get("ok")}


def test_healthy_notifications_do_not_wait_behind_failing_ones(kafka: KafkaKit, unique, tmp_path: Path,
                                                               start) -> None:
    def run(failing: int) -> float:
        topic, path = unique("tiers.isolation"), tmp_path / f"attempts-{failing}.jsonl"
        kafka.create_topics(topic)
        for n in range(failing):
            kafka.produce(topic, notification(f"fail-{n}"), key=f"bad{n % 20}")
        for n in range(200):  # ids of their own in each run: the ledger would suppress them as sent
            kafka.produce(topic, notification(f"ok{failing}-{n}"), key=f"good{n % 20}")
        kafka.flush()
        config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "concurrency": 16,
                                                    "options": {"path": str(path)}, "retry_schedule": ["1m"]})
        worker = start(config, "c")
        first = wait_until(lambda: read_records(path), timeout=60, what="a first attempt")[0]["at"]
        wait_until(lambda: len(delivered(path)) == 200, timeout=60, what="every healthy notification")
        took = max(e["at"] for e in read_records(path) if e.get("ok")) - first
        worker.finish()
        return took

    alone, behind = run(0), run(400)
    print(f"200 healthy notifications: {alone:.2f} s alone, {behind:.2f} s behind 400 always-failing ones")
    assert behind < alone + 1.0, f"200 healthy: {alone:.2f} s alone, {behind:.2f} s behind 400 failing ones"


def test_a_retry_waits_its_scheduled_delay_then_dead_letters_with_its_history(kafka: KafkaKit, unique,
                                                                            tmp_path: Path, start) -> None:
    topic, path = unique("tiers.schedule"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    started_ms = int(time.time() * 1000)
    produced_ms = started_ms - 10 * DAY_MS  # older than a 7-day retention: its hops must not carry it
    kafka.produce(topic, notification("fail-1"), key="k", headers=[("traceparent", b"00-abc-01")],
                  timestamp=produced_ms)
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "dlq": f"{topic}.dlq",
                                                "options": {"path": str(path)}, "retry_schedule": ["2s", "7s"]})
    worker = start(config, "c")
    wait_until(lambda: len(attempts(path).get("fail-1", [])) == 3, timeout=40, what="three attempts")
    times = [entry["at"] for entry in attempts(path)["fail-1"]]
    assert 2.0 <= times[1] - times[0] < 3.0  # 2 s: the 1 s tier twice
    assert 7.0 <= times[2] - times[1] < 8.0  # 7 s: the 5 s tier, then the 1 s tier twice
    dead = kafka.read(f"{topic}.dlq", 1)[0]
    worker.finish()
    headers = dict(dead.headers())
    assert dead.key() == b"k" and json.loads(dead.value())["id"] == "fail-1"
    assert headers["traceparent"] == b"00-abc-01" and not set(headers) & dh.DELAY_HEADERS
    assert (headers[h.HEADER_ATTEMPTS], headers[h.HEADER_ERROR_REASON]) == (b"3", b"retries_exhausted")
    assert (headers[h.HEADER_ORIGINAL_TOPIC], headers[h.HEADER_ORIGINAL_OFFSET]) == (topic.encode(), b"0")
    first_failure = headers[h.HEADER_FIRST_FAILED_AT].decode()
    assert abs(_epoch(first_failure) - times[0]) < 0.5
    assert headers[h.HEADER_ORIGINAL_TIMESTAMP] == str(produced_ms).encode()
    hops = [m for m in kafka.read(delay_topics(config.channels["c"])[0], 4) if json.loads(m.value())["id"] == "fail-1"]
    assert dict(hops[-1].headers())[dh.HEADER_ATTEMPTS] == b"2"
    # A broker deletes records by timestamp: each hop is stamped when it is written, the source's rides along.
    assert all(m.timestamp()[1] >= started_ms - 1000 for m in hops), [m.timestamp() for m in hops]
    assert {dict(m.headers())[dh.HEADER_SOURCE_TIMESTAMP] for m in hops} == {str(produced_ms).encode()}


def test_each_retry_is_read_within_a_fetch_wait_of_its_due_time(kafka: KafkaKit, unique, tmp_path: Path,
                                                                start) -> None:
    # Four waits of 1 s: each ends in a resumed tier partition, read once the fetch already
    # waiting at the broker returns. At librdkafka's 500 ms that added 0-0.5 s to each wait
    # (1.2-1.3 s over four, measured); at the delay consumer's 100 ms, at most 0.1 s and the work
    # (0.2 s over four).
    topic, path = unique("tiers.precision"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    kafka.produce(topic, notification("fail-1"), key="k")
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER,
                                                "options": {"path": str(path)}, "retry_schedule": ["1s"] * 4})
    worker = start(config, "c")
    wait_until(lambda: len(attempts(path).get("fail-1", [])) == 5, timeout=40, what="five attempts")
    worker.finish()
    times = [entry["at"] for entry in attempts(path)["fail-1"]]
    late = [later - earlier - 1.0 for earlier, later in pairwise(times)]
    assert min(late) >= 0 and sum(late) < 0.8, f"late by {[round(t, 3) for t in late]} s"


def test_the_providers_retry_after_chooses_the_delay(kafka: KafkaKit, unique, tmp_path: Path, start) -> None:
    topic, path = unique("tiers.retry-after"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    kafka.produce(topic, notification("flaky-1"), key="k")
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "retry_schedule": ["1h", "1h"],
                                                "options": {"path": str(path), "retry_after": 3}})
    worker = start(config, "c")
    wait_until(lambda: "flaky-1" in delivered(path), timeout=30, what="the third attempt")
    worker.finish()
    times = [entry["at"] for entry in attempts(path)["flaky-1"]]
    assert [entry["attempt"] for entry in attempts(path)["flaky-1"]] == [1, 2, 3]
    assert all(3.0 <= later - earlier < 4.0 for earlier, later in zip(times, times[1:])), times


def test_topics_ensure_creates_the_delay_topics_like_their_channels_topics(kafka: KafkaKit, unique, write_config,
                                                                          capsys) -> None:
    topic, group = unique("tiers.ensure"), unique("g")
    kafka.create_topics(topic, partitions=3)
    path = write_config({"kafka": {"bootstrap_servers": kafka.bootstrap},
                         "channels": {"c": {"topics": [topic], "handler": "log", "group_id": group}}})
    assert main(["topics", "ensure", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"created  {group}.delay.1s" in out and f"created  {group}.delay.8h" in out
    metadata = kafka.admin.list_topics(timeout=10).topics
    assert {len(metadata[f"{group}.delay.{tier}"].partitions) for tier in ("1s", "2m", "8h")} == {3}


def test_status_counts_what_waits_in_each_tier(kafka: KafkaKit, unique, write_config, tmp_path: Path, start,
                                                capsys) -> None:
    topic, path = unique("tiers.status"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    data = {"kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)}, "channels": {"c": {
        "topics": [topic], "handler": HANDLER, "group_id": unique("g"), "options": {"path": str(path)},
        "retry_schedule": ["90m"]}}}
    config_path = write_config(data)
    worker = start(load_config(str(config_path)), "c")
    for n in range(3):  # one at a time: each hand-off its own produce batch (see the end of this test)
        kafka.produce(topic, notification(f"fail-{n}"), key=f"k{n}")
        kafka.flush()
        wait_until(lambda: len(read_records(path)) == n + 1, timeout=30, what=f"first attempt {n}")

    def report() -> dict[str, Any]:
        assert main(["status", "--config", str(config_path), "--format", "json"]) == 0
        out = capsys.readouterr().out  # the worker's log lines are captured too
        return json.JSONDecoder().raw_decode(out, out.index('{\n  "channels"'))[0]["channels"][0]

    def waiting() -> dict[str, int]:
        return report()["waiting"]

    # The test broker reports the base offset of a partition's last batch as its end (shared/BROKER.md):
    # the last record is not counted there.
    wait_until(lambda: waiting()["1h"] >= 2, timeout=15, what="records waiting in the 1 h tier")
    assert set(waiting()) == {"1s", "5s", "30s", "2m", "10m", "30m", "1h", "2h", "4h", "8h"}
    first_failure = min(entry["at"] for entry in read_records(path))
    assert abs(_epoch(report()["oldest_due"]) - (first_failure + 90 * 60)) < 2, "the first failure's retry is due first"
    worker.finish()


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def test_a_replayed_dead_letter_starts_with_fresh_attempts(kafka: KafkaKit, unique, write_config, tmp_path: Path,
                                                           start, capsys) -> None:
    topic, path = unique("tiers.replay"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    config_path = write_config({"kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)},
                                "channels": {"c": {"topics": [topic], "handler": HANDLER, "group_id": unique("g"),
                                                   "dlq": f"{topic}.dlq", "options": {"path": str(path)},
                                                   "retry_schedule": ["1s"]}}})
    start(load_config(str(config_path)), "c")
    kafka.produce(topic, notification("flaky-9"), key="k")  # fails its first two attempts, every time it starts
    kafka.flush()
    first = kafka.read(f"{topic}.dlq", 1)[0]
    assert dict(first.headers())[h.HEADER_ATTEMPTS] == b"2"
    assert main(["dlq", "replay", "--config", str(config_path), "--channel", "c"]) == 0
    wait_until(lambda: len(attempts(path).get("flaky-9", [])) == 4, timeout=30, what="the replay's two attempts")
    assert [entry["attempt"] for entry in attempts(path)["flaky-9"]] == [1, 2, 1, 2]
    second = kafka.read(f"{topic}.dlq", 2)[1]
    assert dict(second.headers())[h.HEADER_ATTEMPTS] == b"2" and not set(dict(second.headers())) & dh.DELAY_HEADERS
