"""The faults of the reliability suite again, with the delivery ledger on: duplicates bounded by what was in flight.

"In flight" at a fault: notifications the handler finished (the provider accepted them)
that were not yet written to the ledger. Only those may be sent twice.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.scenario import Deliveries, Tally, channel, produce
from tests.kit.wait import wait_until
from tests.reliability.test_broker_outage import OUTAGE

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

TOTAL = 6000


def sent_in_ledger(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM notifyd_ledger WHERE state = 'sent'").fetchone()[0]


def marked_by(path: Path, pid: int) -> set[str]:
    """The ids the ledger has as sent by the process ``pid`` (its owner name is ``host:pid:nonce``)."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT id, owner FROM notifyd_ledger WHERE state = 'sent'").fetchall()
    return {key for key, owner in rows if owner.split(":")[1] == str(pid)}


def settled(deliveries: Deliveries) -> int:
    """Deliveries once the handler file stops growing (the killed processes' last writes are in)."""
    seen: list[int] = []

    def quiet() -> bool:
        seen.append(sum(deliveries.refresh().counts.values()))
        return len(seen) >= 10 and len(set(seen[-10:])) == 1

    wait_until(quiet, what="the handler file to stop growing")
    return seen[-1]


def test_sigkill_of_the_whole_daemon_with_the_ledger(kafka, unique, tmp_path, write_config, daemon, figures):
    topic, group, out, ledger = unique("lwhole"), unique("g"), tmp_path / "whole.jsonl", tmp_path / "ledger.sqlite3"
    kafka.create_topics(topic, partitions=2)
    config = write_config(daemon_config(kafka.bootstrap, {
        "whole": channel(topic, out, group_id=group, concurrency=16, options={"delay": 0.005}),
    }, ledger={"path": str(ledger)}))
    ids = [f"lw-{i}" for i in range(TOTAL)]
    first = daemon(config)
    first.wait_ready()
    produce(kafka, topic, ids)
    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() >= TOTAL // 3, what="a third delivered")

    for pid in [first.process.pid, *first.child_pids("whole")]:
        os.kill(pid, signal.SIGKILL)
    killed_at = time.time()
    assert first.process.wait(10) == -signal.SIGKILL
    sent_before, marked = settled(deliveries), sent_in_ledger(ledger)
    committed = sum(max(0, c) for c in kafka.committed(group, topic, 2))

    second = daemon(config)
    second.wait_ready()
    wait_until(lambda: deliveries.distinct() == TOTAL, timeout=60, what="every notification after the restart")
    done_after = time.time() - killed_at
    # Only notifications marked sent past the committed offsets come back to be suppressed; a kill
    # just after a commit may leave none.
    redelivered_marked = marked > committed
    wait_until(lambda: not redelivered_marked
               or second.metric("notifyd_duplicates_suppressed_total", channel="whole") > 0, timeout=30,
               what=f"the redelivered notifications suppressed ({marked} marked sent, {committed} committed)")
    suppressed = second.metric("notifyd_duplicates_suppressed_total", channel="whole")

    tally = Tally.of(ids, deliveries.counts)
    in_flight = sent_before - marked
    figures.add("ledger on, daemon kill: SIGKILL of supervisor and children, then restart", messages=TOTAL,
                delivered_before_kill=sent_before, committed_before_kill=committed, in_flight_at_kill=in_flight,
                lost=len(tally.lost), duplicates=tally.duplicates, duplicates_suppressed=int(suppressed),
                all_delivered_after_kill_s=done_after)
    assert not tally.lost
    assert tally.duplicates <= in_flight, "a notification the ledger had as sent was sent again"
    assert second.stop() == 0


def test_sigkill_of_a_channel_process_with_the_ledger(kafka, unique, tmp_path, write_config, daemon, figures):
    # The supervisor restarts the process; its successor gets the partitions once the group
    # drops the dead member, and redelivers what was not committed.
    topic, group, out, ledger = unique("lchild"), unique("g"), tmp_path / "child.jsonl", tmp_path / "ledger.sqlite3"
    kafka.create_topics(topic, partitions=2)
    config = write_config(daemon_config(kafka.bootstrap, {
        "child": channel(topic, out, group_id=group, concurrency=16, options={"delay": 0.005}),
    }, ledger={"path": str(ledger)}))
    ids = [f"lc-{i}" for i in range(TOTAL)]
    running = daemon(config)
    running.wait_ready()
    produce(kafka, topic, ids)
    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() >= TOTAL // 3, what="a third delivered")

    victim = running.child_pids("child")[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    # Read at once: a re-send of one of these by the successor would overwrite its owner.
    marked = marked_by(ledger, victim)
    wait_until(lambda: len(running.child_pids("child")) == 2, what="the supervisor restarting the process")
    wait_until(lambda: deliveries.distinct() == TOTAL, timeout=90, what="every notification after the restart")
    done_after = time.time() - killed_at
    by_victim = {key for key, pid in zip(deliveries.refresh().ids, deliveries.pids) if pid == victim}
    after = [at for at, pid in zip(deliveries.times, deliveries.pids) if pid != victim]
    suppressed = running.metric("notifyd_duplicates_suppressed_total", channel="child")

    tally = Tally.of(ids, deliveries.counts)
    in_flight = len(by_victim - marked)
    figures.add("ledger on, channel process kill: SIGKILL of the one delivering process, restarted by the "
                "supervisor", messages=TOTAL, delivered_before_kill=len(by_victim), in_flight_at_kill=in_flight,
                lost=len(tally.lost), duplicates=tally.duplicates, duplicates_suppressed=int(suppressed),
                first_delivery_after_kill_s=min(after) - killed_at, all_delivered_after_kill_s=done_after)
    assert not tally.lost
    assert tally.duplicates <= in_flight, "a notification the ledger had as sent was sent again"
    assert running.stop() == 0


def test_cut_broker_connection_with_the_ledger(proxied_kafka, unique, tmp_path, write_config, daemon, figures):
    proxy, kafka = proxied_kafka
    topic, group, out, ledger = unique("loutage"), unique("g"), tmp_path / "outage.jsonl", tmp_path / "l.sqlite3"
    kafka.create_topics(topic, partitions=2)
    config = write_config(daemon_config(kafka.bootstrap, {
        "outage": channel(topic, out, group_id=group, concurrency=8, options={"delay": 0.01}),
    }, ledger={"path": str(ledger)}))
    ids = [f"lo-{i}" for i in range(3000)]
    notifyd = daemon(config)
    notifyd.wait_ready()
    produce(kafka, topic, ids)
    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() >= 200, what="deliveries before the cut")

    proxy.cut()
    cut_at = time.monotonic()
    wait_until(lambda: notifyd.get("/readyz")[0] == 503, timeout=30, what="/readyz reporting the outage")
    time.sleep(max(0.0, OUTAGE - (time.monotonic() - cut_at)))  # the outage's length is the scenario
    proxy.restore()
    wait_until(lambda: deliveries.distinct() == len(ids), timeout=90, what="every notification after the outage")
    wait_until(lambda: sum(kafka.committed(group, topic, 2)) == len(ids), timeout=60, what="everything committed")
    suppressed = notifyd.metric("notifyd_duplicates_suppressed_total", channel="outage")

    tally = Tally.of(ids, deliveries.counts)
    figures.add("ledger on, broker outage: every connection cut for 8 s, then restored", messages=len(ids),
                lost=len(tally.lost), duplicates=tally.duplicates, duplicates_suppressed=int(suppressed))
    assert not tally.lost
    assert tally.duplicates == 0, "the process kept its marks across the cut: nothing may be sent twice"
    assert notifyd.stop() == 0
