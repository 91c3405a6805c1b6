"""The broker connection cut and restored through a proxy the test controls.

The dedicated broker advertises the proxy's address, so every connection librdkafka
makes (bootstrap, then the advertised broker) goes through the proxy and a cut is total.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.scenario import Deliveries, Tally, channel, produce
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

BATCH = 3000
# Longer than session.timeout.ms (6 s): the group forgets the member, which must rejoin.
OUTAGE = 8.0



def test_cut_and_restored_broker_connection(proxied_kafka, unique, tmp_path, write_config, daemon, figures):
    proxy, kafka = proxied_kafka
    topic, group, out = unique("outage"), unique("g"), tmp_path / "outage.jsonl"
    kafka.create_topics(topic, partitions=2)
    config = write_config(daemon_config(kafka.bootstrap, {
        # ledger off: at-least-once as before the ledger, the figures test_ledger_faults compares with.
        "outage": channel(topic, out, group_id=group, concurrency=8, options={"delay": 0.01}, ledger=False),
    }))
    first_ids, second_ids = [f"a-{i}" for i in range(BATCH)], [f"b-{i}" for i in range(BATCH)]
    notifyd = daemon(config)
    notifyd.wait_ready()
    produce(kafka, topic, first_ids)
    deliveries = Deliveries(out)
    wait_until(lambda: deliveries.distinct() >= 200, what="deliveries before the cut")

    proxy.cut()
    cut_at = time.monotonic()
    wait_until(lambda: notifyd.get("/readyz")[0] == 503, timeout=30, what="/readyz reporting the outage")
    detected = time.monotonic() - cut_at
    _status, body = notifyd.get("/readyz")
    assert json.loads(body)["failing_channels"] == ["outage"]
    assert notifyd.events("channel process lost every broker")
    time.sleep(max(0.0, OUTAGE - detected))  # the outage's length is the scenario, not a wait
    delivered_during = deliveries.distinct()

    proxy.restore()
    restored_at = time.monotonic()
    wait_until(lambda: notifyd.get("/readyz")[0] == 200, timeout=60, what="/readyz ready again")
    ready_again = time.monotonic() - restored_at
    produce(kafka, topic, second_ids)
    wait_until(lambda: deliveries.distinct() == 2 * BATCH, timeout=90, what="every notification after the outage")
    all_done = time.monotonic() - restored_at

    tally = Tally.of(first_ids + second_ids, deliveries.counts)
    figures.add("broker outage: every connection cut for 8 s through a proxy, then restored", messages=2 * BATCH,
                lost=len(tally.lost), duplicates=tally.duplicates, readyz_503_after_cut_s=detected,
                delivered_by_end_of_outage=delivered_during, readyz_200_after_restore_s=ready_again,
                all_delivered_after_restore_s=all_done)
    assert not tally.lost
    assert len(notifyd.child_pids("outage")) == 1, "the channel process was restarted"
    assert notifyd.events("channel process reconnected")
    assert notifyd.stop() == 0
    assert sum(kafka.committed(group, topic, 2)) == 2 * BATCH
    assert [e for e in notifyd.events() if e.get("source") == "librdkafka" and "Connect to" in e["event"]]
    assert not _logged_twice(notifyd.events()), "each failed connection is logged once, by librdkafka"


def _logged_twice(events: list[dict]) -> list[str]:
    """The "kafka client error" lines that repeat a line librdkafka logged itself."""
    librdkafka = [e["event"] for e in events if e.get("source") == "librdkafka"]
    repeated = []
    for event in events:
        if event.get("event") == "kafka client error":
            found = re.search(r'str="(.*)"', event["error"])
            reason = found.group(1) if found else event["error"]
            if any(reason in line for line in librdkafka):
                repeated.append(reason)
    return repeated
