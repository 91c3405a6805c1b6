"""ordering: strict against a real broker: a key's later notifications wait behind one waiting for a retry.

Issue 20, point 3. The same run with the default ordering shows the overtaking the strict
one prevents; other keys are never delayed either way.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.kit.handlers import read_records
from tests.kit.kafka import KafkaKit
from tests.kit.wait import wait_until
from tests.kit.worker import channel_config, notification

pytestmark = pytest.mark.kafka
HANDLER = "tests.kit.handlers:Outcomes"  # "flaky-*" fails its first two attempts, the others succeed
SAME_KEY = ["k-1", "k-2", "k-3"]
OTHER_KEYS = [f"o-{n}" for n in range(6)]


def deliveries(path: Path) -> list[dict[str, Any]]:
    return [entry for entry in read_records(path) if entry.get("ok")]


def run(kafka: KafkaKit, unique, tmp_path: Path, start, ordering: str) -> tuple[list[str], dict[str, float]]:
    """Deliver a flaky head, its key's followers and other keys; the key's delivery order and each id's time."""
    topic, path = unique(f"strict.{ordering}"), tmp_path / f"attempts-{ordering}.jsonl"
    kafka.create_topics(topic)
    kafka.produce(topic, notification(f"flaky-{ordering}"), key="k")
    for notification_id in SAME_KEY:
        kafka.produce(topic, notification(f"{notification_id}-{ordering}"), key="k")
    for n, notification_id in enumerate(OTHER_KEYS):
        kafka.produce(topic, notification(f"{notification_id}-{ordering}"), key=f"other{n}")
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "ordering": ordering,
                                                "options": {"path": str(path)}, "retry_schedule": ["1s", "1s", "1s"]})
    worker = start(config, "c")
    wait_until(lambda: len(deliveries(path)) == 1 + len(SAME_KEY) + len(OTHER_KEYS), timeout=40,
               what=f"every notification delivered ({ordering})")
    worker.finish()
    done = deliveries(path)
    order = [entry["id"].removesuffix(f"-{ordering}") for entry in done if not entry["id"].startswith("o-")]
    return order, {entry["id"].removesuffix(f"-{ordering}"): entry["at"] for entry in done}


def test_strict_order_keeps_a_keys_followers_behind_its_retried_head(kafka: KafkaKit, unique, tmp_path: Path,
                                                                     start) -> None:
    order, at = run(kafka, unique, tmp_path, start, "strict")
    first = min(at.values())
    print("strict:", {name: round(when - first, 2) for name, when in at.items()})
    assert order == ["flaky", *SAME_KEY]
    assert max(at[n] for n in OTHER_KEYS) - first < 1.0, "other keys waited behind the parked key"
    assert at["flaky"] - first >= 2.0  # two retries of 1 s

    order, at = run(kafka, unique, tmp_path, start, "default")
    assert order[-1] == "flaky" and order[:-1] == SAME_KEY  # overtaken while it waited for its retries
    assert max(at[n] for n in OTHER_KEYS) - min(at.values()) < 1.0


def parked(ledger: str) -> int:
    """Entries in the order queues of the ledger file ``ledger`` (-1 before the channel made its table)."""
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as connection:
            return connection.execute("SELECT count(*) FROM notifyd_order_queue").fetchone()[0]
    except sqlite3.Error:
        return -1


def test_the_order_holds_across_a_restart_while_a_key_is_parked(kafka: KafkaKit, unique, tmp_path: Path,
                                                                 start) -> None:
    topic, path = unique("strict.restart"), tmp_path / "attempts.jsonl"
    kafka.create_topics(topic)
    for notification_id in ["flaky-r", "k-1"]:
        kafka.produce(topic, notification(notification_id), key="k")
    kafka.flush()
    config = channel_config(kafka.bootstrap, c={"topics": [topic], "handler": HANDLER, "ordering": "strict",
                                                "options": {"path": str(path)}, "retry_schedule": ["6s", "1s"]})
    ledger = config.channels["c"].ledger.path
    worker = start(config, "c")
    wait_until(lambda: parked(ledger) == 2, timeout=30, what="the key's head and its follower parked")
    worker.finish()  # nothing of the key is in memory now: the queue and the tiers hold it
    start(config, "c")
    for notification_id in ["k-2", "k-3"]:  # read by the new process while the head still waits
        kafka.produce(topic, notification(notification_id), key="k")
    kafka.flush()
    wait_until(lambda: len(deliveries(path)) == 4, timeout=40, what="the key delivered")
    assert [entry["id"] for entry in deliveries(path)] == ["flaky-r", "k-1", "k-2", "k-3"]
    assert parked(ledger) == 0
    with sqlite3.connect(ledger) as connection:  # what notifyd trace shows
        held = connection.execute("SELECT detail FROM notifyd_ledger_events WHERE id = 'k-2' AND kind = 'held'").fetchall()
    assert held and all(detail.startswith("ordering until ") for (detail,) in held)
