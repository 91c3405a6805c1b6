"""A broker outage on the on-call engineer's screen: one line when it starts, one when it ends, both counted."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from notifyd.channel.outage import _VARYING
from tests.kit.daemon import daemon_config
from tests.kit.scenario import channel
from tests.kit.wait import wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]

OUTAGE_LINE, RECOVERY_LINE = "every broker is down", "broker reachable again"
OUTAGE = 5.0  # librdkafka retries a dozen times in this long (backoff from 100 ms, doubling)


def test_an_outage_logs_once_at_each_end_and_is_counted(proxied_kafka, unique, tmp_path, write_config,
                                                         daemon):
    proxy, kafka = proxied_kafka
    topic = unique("outage")
    kafka.create_topics(topic)
    config = write_config(daemon_config(kafka.bootstrap, {
        "outage": channel(topic, tmp_path / "out.jsonl", group_id=unique("g")),
    }))
    notifyd = daemon(config)
    notifyd.wait_ready()
    assert notifyd.metric("notifyd_broker_outages_total", channel="outage") == 0

    proxy.cut()
    wait_until(lambda: notifyd.metric("notifyd_broker_unreachable", channel="outage") == 1, timeout=30,
               what="the outage in the metrics")
    assert notifyd.metric("notifyd_broker_outages_total", channel="outage") == 1
    time.sleep(OUTAGE)  # the outage's length is the scenario, not a wait
    proxy.restore()
    wait_until(lambda: notifyd.events(RECOVERY_LINE), timeout=60, what="the recovery line")
    wait_until(lambda: notifyd.metric("notifyd_broker_unreachable", channel="outage") == 0, what="gauge back to 0")
    notifyd.wait_ready(timeout=60)
    assert notifyd.stop() == 0

    assert len(notifyd.events(OUTAGE_LINE)) == 1 and len(notifyd.events(RECOVERY_LINE)) == 1
    assert notifyd.events(RECOVERY_LINE)[0]["outage_seconds"] >= OUTAGE
    failures = Counter(_VARYING.sub("", e["event"]) for e in notifyd.events() if _connection_failure(e))
    assert failures, "librdkafka's first failure lines (which address failed) are kept"
    assert max(failures.values()) == 1, f"librdkafka's retries were logged again: {failures.most_common(3)}"


def _connection_failure(event: dict) -> bool:
    return event.get("source") == "librdkafka" and event.get("event", "").startswith(("FAIL ", "ERROR "))
