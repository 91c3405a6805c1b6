"""``notifyd trace`` shows a notification's waits on the delay topics and its expiry (issue 21.4 with 20).

Against the real broker: a retried notification's history has each failed attempt, its
wait in the tiers and the final send; one that expires while it waits ends ``expired``,
in the trace and as an outcome event on the channel's events topic.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from notifyd.cli import main
from notifyd.config.loading import load_config
from notifyd.exitcodes import ExitCode
from notifyd.schemas import validator
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until

pytestmark = pytest.mark.kafka


def trace(config: Path, notification_id: str, capsys: Any) -> list[dict[str, Any]]:
    """The notification's history; empty while the ledger has not written it yet (exit code 6)."""
    capsys.readouterr()
    code = main(["trace", notification_id, "--config", str(config), "--format", "json"])
    out = capsys.readouterr().out
    assert code in (0, ExitCode.NOT_FOUND)
    if code != 0:
        return []
    # The channel runs in this process, so its log lines share stdout with the document.
    document, _ = json.JSONDecoder().raw_decode(out, out.index("{\n"))
    return document["history"]


def test_trace_shows_tier_waits_and_expiry(kafka: KafkaKit, unique, tmp_path: Path, write_config, start,
                                           capsys) -> None:
    topic, events = unique("trace.tiers"), unique("trace.events")
    kafka.create_topics(topic, events)
    path = write_config({
        "kafka": {"bootstrap_servers": kafka.bootstrap, "config": dict(FAST_GROUP)}, "shutdown_timeout": 10,
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
        "channels": {"c": {"topics": [topic], "group_id": unique("g"), "handler": "tests.kit.handlers:Outcomes",
                           "options": {"path": str(tmp_path / "attempts.jsonl")}, "events": events,
                           "retry_schedule": ["1s", "1s", "30s"]}},
    })
    kafka.produce(topic, json.dumps({"id": "flaky-1", "to": "a", "body": "b"}), key="a")
    kafka.produce(topic, json.dumps({"id": "fail-1", "to": "b", "body": "b", "expires_at": time.time() + 10}), key="b")
    kafka.flush()
    start(load_config(str(path)), "c")

    def steps(notification_id: str) -> list[str]:
        return [step["event"] for step in trace(path, notification_id, capsys)]

    wait_until(lambda: "sent" in steps("flaky-1"), timeout=30, what="flaky-1 sent")
    flaky = steps("flaky-1")
    assert flaky[0] == "received" and flaky.count("attempt_failed") == 2 and flaky.count("retry_waiting") == 2, flaky
    assert flaky.index("retry_waiting") > flaky.index("attempt_failed") and flaky[-1] == "sent", flaky
    wait_until(lambda: "expired" in steps("fail-1"), timeout=30, what="fail-1 expired")
    expired = trace(path, "fail-1", capsys)
    assert [s["event"] for s in expired].count("attempt_failed") == 3, expired
    assert expired[-1]["event"] == "expired" and expired[-1]["attempt"] == 3, "the 30 s retry would come too late"
    records = [json.loads(m.value()) for m in kafka.read(events, 7)]
    assert all(not list(validator("outcome").iter_errors(r)) for r in records), records
    assert [(r["outcome"], r["attempt"]) for r in records if r["id"] == "fail-1"][-1] == ("expired", 3)
