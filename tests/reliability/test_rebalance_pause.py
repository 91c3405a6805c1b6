"""How long delivery stops on a surviving member when a second daemon joins, and when it is SIGKILLed.

Cooperative rebalancing (the default) moves only the partitions that change hands: the
first daemon's other partitions should keep delivering while the group rebalances. The
figure is the longest gap between two deliveries of the first daemon's kept partitions
while traffic flows at a steady rate.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.handlers import read_records
from tests.kit.kafka import FIGURES_GROUP
from tests.kit.scenario import channel
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

PARTITIONS = 6
RATE = 300  # notifications/s, spread over every partition


class Traffic:
    """A steady stream over every partition, from a thread, until stopped."""

    def __init__(self, kafka, topic: str) -> None:
        self._kafka, self._topic, self.sent = kafka, topic, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._kafka.flush()

    def _run(self) -> None:
        while not self._stop.wait(1 / RATE):
            partition = self.sent % PARTITIONS
            value = json.dumps({"id": f"t-{self.sent}", "to": "a", "body": "b", "data": {"p": partition}})
            self._kafka.produce(self._topic, value, partition=partition)
            self.sent += 1


def longest_gap(records: list[dict], pid: int, partitions: set[int], since: float, until: float) -> float:
    """The longest time without a delivery by ``pid`` of ``partitions`` within [since, until]."""
    times = sorted(r["at"] for r in records if r["pid"] == pid and r["data"]["p"] in partitions
                   and since <= r["at"] <= until)
    edges = [since, *times, until]
    return max(b - a for a, b in zip(edges, edges[1:]))


def delivered_partitions(records: list[dict], pid: int, since: float) -> set[int]:
    return {r["data"]["p"] for r in records if r["pid"] == pid and r["at"] >= since}


# The eager strategies (librdkafka's former default) for comparison: every member stops.
@pytest.mark.parametrize("strategy", ["cooperative-sticky", "range,roundrobin"])
def test_delivery_pauses_on_the_surviving_member(kafka, unique, tmp_path, write_config, daemon, figures,
                                                 strategy: str):
    topic, out = unique("pause"), tmp_path / "pause.jsonl"
    kafka.create_topics(topic, partitions=PARTITIONS)
    config = write_config(daemon_config(kafka.bootstrap, {
        "pause": channel(topic, out, group_id=unique("g"), concurrency=16,
                         consumer_config={"partition.assignment.strategy": strategy, **FIGURES_GROUP}),
    }))
    with Traffic(kafka, topic):
        first = daemon(config)
        first.wait_ready()
        first_pid = first.child_pids("pause")[0]
        wait_until(lambda: len(delivered_partitions(read_records(out), first_pid, 0)) == PARTITIONS,
                   what="the first daemon delivering from every partition")
        joined_at = time.time()
        second = daemon(config)
        second.wait_ready()
        second_pid = second.child_pids("pause")[0]
        wait_until(lambda: delivered_partitions(read_records(out), second_pid, 0), timeout=60,
                   what="the second daemon delivering")
        settled_at = time.time() + 2.0
        wait_until(lambda: read_records(out)[-1]["at"] >= settled_at, what="two more seconds of traffic")
        records = read_records(out)
        kept = set(range(PARTITIONS)) - delivered_partitions(records, second_pid, 0)
        join_gap = longest_gap(records, first_pid, kept, joined_at, settled_at)
        join_takeover = min(r["at"] for r in records if r["pid"] == second_pid) - joined_at

        killed_at = time.time()
        for pid in (second.process.pid, second_pid):
            os.kill(pid, signal.SIGKILL)
        second.process.wait(10)
        wait_until(lambda: len(delivered_partitions(read_records(out), first_pid, killed_at)) == PARTITIONS,
                   timeout=60, what="the first daemon taking every partition back")
        back_at = time.time() + 2.0
        wait_until(lambda: read_records(out)[-1]["at"] >= back_at, what="two more seconds of traffic")
        records = read_records(out)
        kill_gap = longest_gap(records, first_pid, kept, killed_at, back_at)
        orphaned = set(range(PARTITIONS)) - kept
        kill_takeover = min(r["at"] for r in records if r["pid"] == first_pid and r["data"]["p"] in orphaned
                            and r["at"] >= killed_at) - killed_at
    figures.add(f"rebalancing: a second daemon joins, then is SIGKILLed ({strategy}, session 6 s)",
                partitions=PARTITIONS, rate_per_s=RATE, kept_by_first=len(kept),
                join_longest_gap_on_kept_partitions_s=join_gap, join_first_delivery_by_newcomer_s=join_takeover,
                kill_longest_gap_on_kept_partitions_s=kill_gap, kill_orphans_delivered_again_after_s=kill_takeover)
    assert 0 < len(kept) < PARTITIONS
    if strategy == "cooperative-sticky":
        assert join_gap < 2.0, "the first daemon's own partitions stopped while the newcomer joined"
        assert kill_gap < 2.0, "the survivor's own partitions stopped while the group noticed the kill"
    assert first.stop() == 0
