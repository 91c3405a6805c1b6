"""SIGKILL of channel processes while notifications cycle through the delay tiers: nothing is lost."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.kit.handlers import read_records
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until
from tests.kit.workerprocess import start_worker

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]
EACH = 200  # of ok-, flaky- (delivered at the third attempt) and fail- (dead-lettered after three)
KILLS = 5


def test_sigkill_while_retries_cycle_through_the_tiers_loses_nothing(kafka: KafkaKit, unique, tmp_path: Path,
                                                                      write_config) -> None:
    topic, group, out = unique("tiers.kill"), unique("group"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic, partitions=2)
    ids = [f"{kind}-{n}" for n in range(EACH) for kind in ("ok", "flaky", "fail")]
    config = write_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)},
        "channels": {"c": {
            "topics": [topic], "group_id": group, "handler": "tests.kit.handlers:Outcomes",
            "options": {"path": str(out), "delay": 0.03}, "dlq": f"{topic}.dlq", "concurrency": 8,
            "retry_schedule": ["3s", "9s"],  # 9 s: the 5 s tier, then the 1 s tier four times
            "consumer_config": {"auto.commit.interval.ms": 200},
        }},
    })
    log = tmp_path / "workers.log"
    workers = [start_worker(config, log), start_worker(config, log)]
    try:
        for seq, notification_id in enumerate(ids):
            kafka.produce(topic, json.dumps({"id": notification_id, "to": "a", "body": "b"}), key=f"user{seq % 30}")
        kafka.flush()
        wait_until(lambda: read_records(out), timeout=30, what="the first attempt")
        def settled() -> bool:
            delivered = {r["id"] for r in read_records(out) if r.get("ok")}
            return delivered | dead_lettered(kafka, topic) >= set(ids)

        for kill in range(KILLS):
            victim = workers[kill % 2]
            # Each victim is working when it dies: ten attempts in, with more in flight.
            wait_until(lambda: sum(r["pid"] == victim.pid for r in read_records(out)) >= 10, timeout=60,
                       what=f"attempts by victim {kill}")
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(10) == -signal.SIGKILL
            workers[kill % 2] = start_worker(config, log)
        assert not settled(), "the kills ended after the work: they proved nothing"

        wait_until(settled, timeout=120, what="every notification delivered or dead-lettered")
    finally:
        for worker in workers:
            worker.kill()
            worker.wait(10)
    delivered = {r["id"] for r in read_records(out) if r.get("ok")}
    dead = dead_lettered(kafka, topic)
    assert delivered | dead == set(ids)
    assert {i for i in ids if not i.startswith("fail")} <= delivered
    assert dead == {i for i in ids if i.startswith("fail")}
    assert len({r["pid"] for r in read_records(out)}) >= KILLS + 1  # every victim attempted something


def dead_lettered(kafka: KafkaKit, topic: str) -> set[str]:
    try:
        messages = kafka.read(f"{topic}.dlq", EACH, timeout=1.0)
    except KeyError:  # the DLQ topic does not exist yet
        return set()
    return {json.loads(m.value())["id"] for m in messages}
