"""A channel process whose poll loop stops: its thread stacks are logged before it is killed."""

from __future__ import annotations

import pytest

from tests.kit.daemon import daemon_config
from tests.kit.scenario import produce
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka

STALL_TIMEOUT = 3.0


def test_a_stalled_channel_logs_every_threads_stack_then_is_killed(kafka, unique, tmp_path, write_config, daemon):
    topic = unique("stall")
    kafka.create_topics(topic)
    config = write_config(daemon_config(kafka.bootstrap, {
        # blocking = False and a 600 s sleep: the handler holds the event loop, so no heartbeat.
        "stuck": {"topics": [topic], "group_id": unique("g"), "handler": "tests.kit.handlers:InlineRecorder",
                  "options": {"path": str(tmp_path / "out.jsonl"), "delay": 600}},
    }, shutdown_timeout=1))
    notifyd = daemon(config, NOTIFYD_STALL_TIMEOUT=str(STALL_TIMEOUT))
    notifyd.wait_ready()
    produce(kafka, topic, ["n-1"])

    killed = wait_until(lambda: notifyd.events("channel process stalled (no heartbeat); killing"), timeout=30,
                        what="the stalled process killed")[0]
    first_pid = notifyd.child_pids("stuck")[0]
    assert killed["pid"] == first_pid and killed["silent_for"] >= STALL_TIMEOUT
    stacks = killed["stacks"]
    assert "most recent call first" in stacks and stacks.count("hread 0x") >= 2, stacks
    assert "tests/kit/handlers.py" in stacks and "in send" in stacks, "the dump shows where the loop is stuck"
    asked = notifyd.events("channel process stalled (no heartbeat); asking for its stacks")
    assert len(asked) == 1 and asked[0]["pid"] == first_pid

    wait_until(lambda: len(notifyd.child_pids("stuck")) >= 2, what="the channel restarted")
    assert notifyd.metric("notifyd_channel_stalls_total", channel="stuck") >= 1
    assert notifyd.stop() == 0
