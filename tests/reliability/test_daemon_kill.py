"""SIGKILL of the whole daemon (supervisor and channel processes at once), then a restart."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.scenario import Deliveries, Tally, channel, produce
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

TOTAL = 6000


def test_sigkill_of_the_whole_daemon_then_restart_loses_nothing(kafka, unique, tmp_path, write_config, daemon,
                                                               figures):
    topic, group, out = unique("whole"), unique("g"), tmp_path / "whole.jsonl"
    kafka.create_topics(topic, partitions=2)
    config = write_config(daemon_config(kafka.bootstrap, {
        # ledger off: at-least-once as before the ledger, the figures test_ledger_faults compares with.
        "whole": channel(topic, out, group_id=group, concurrency=16, options={"delay": 0.005}, ledger=False),
    }))
    ids = [f"w-{i}" for i in range(TOTAL)]
    first = daemon(config)
    first.wait_ready()
    produce(kafka, topic, ids)
    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() >= TOTAL // 3, what="a third delivered")

    # What systemd does to a unit's cgroup with SIGKILL: every process at once, no drain.
    victims = [first.process.pid, *first.child_pids("whole")]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    assert first.process.wait(10) == -signal.SIGKILL
    before = deliveries.distinct()
    assert before < TOTAL, "the run finished before the kill: make it longer"
    committed = sum(max(0, c) for c in kafka.committed(group, topic, 2))

    second = daemon(config)
    second.wait_ready()
    ready_after = time.time() - killed_at
    wait_until(lambda: deliveries.distinct() == TOTAL, timeout=60, what="every notification after the restart")
    done_after = time.time() - killed_at
    new_pid = second.child_pids("whole")[-1]
    resumed_after = deliveries.times[deliveries.pids.index(new_pid)] - killed_at

    tally = Tally.of(ids, deliveries.counts)
    figures.add("daemon kill: SIGKILL of supervisor and children, then restart", messages=TOTAL,
                delivered_before_kill=before, committed_before_kill=committed, lost=len(tally.lost),
                duplicates=tally.duplicates, restart_ready_s=ready_after, first_delivery_after_kill_s=resumed_after,
                all_delivered_after_kill_s=done_after)
    assert not tally.lost
    assert tally.duplicates <= before - committed + 16, "more redelivered than was uncommitted at the kill"
    assert second.stop() == 0
    assert sum(kafka.committed(group, topic, 2)) == TOTAL
