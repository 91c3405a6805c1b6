"""The delivery ledger in a real channel process, against the real broker and a real webhook receiver.

A channel process is SIGKILLed after the provider accepted notifications whose offsets
were not committed, so Kafka redelivers them to the next process: with the ledger on,
the receiver sees each id at most once more than the sends the ledger had not recorded
yet; with ``ledger: off``, everything uncommitted is sent again (today's behaviour).
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from notifyd.exitcodes import ExitCode
from notifyd.ledger.store import CREATE_TABLE
from tests.kit.httpserver import ProviderServer, Reply
from tests.kit.kafka import FAST_GROUP, KafkaKit
from tests.kit.wait import wait_until
from tests.kit.workerprocess import finish, kill, start_worker

pytestmark = [pytest.mark.kafka, pytest.mark.reliability]
ROOT = Path(__file__).resolve().parents[2]
NEVER = 600_000  # ms: no background commit happens before the kill


def receiver() -> ProviderServer:
    return ProviderServer(lambda request: Reply(200, {"received": True}))


def webhook_ids(server: ProviderServer) -> Counter[str]:
    return Counter(request.headers.get("webhook-id") for request in list(server.requests))


def ledger_config(bootstrap: str, *, topic: str, group: str, url: str, ledger: dict[str, Any] | None,
                  commit_ms: int, **channel: Any) -> dict[str, Any]:
    settings = {"topics": [topic], "group_id": group, "handler": "webhook", "options": {"url": url},
                "concurrency": 16, "consumer_config": {"auto.commit.interval.ms": commit_ms}, **channel}
    config = {"kafka": {"bootstrap_servers": bootstrap, "config": dict(FAST_GROUP)}, "shutdown_timeout": 10,
              "channels": {"c": settings}}
    if ledger is not None:
        config["ledger"] = ledger
    else:
        settings["ledger"] = False
    return config


def sent_in_ledger(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(path) as connection:
        return connection.execute("SELECT count(*) FROM notifyd_ledger WHERE state = 'sent'").fetchone()[0]


def produce(kafka: KafkaKit, topic: str, count: int, prefix: str) -> None:
    for seq in range(count):
        kafka.produce(topic, json.dumps({"id": f"{prefix}-{seq}", "to": "x", "body": "b"}), key=f"k{seq % 40}")
    kafka.flush()


def settled(count: Any) -> int:
    """``count()`` once it has stopped changing: requests the killed process had on the wire have arrived."""
    seen: list[int] = []

    def quiet() -> bool:
        seen.append(count())
        return len(seen) >= 10 and len(set(seen[-10:])) == 1

    wait_until(quiet, what="the receiver to go quiet")
    return seen[-1]




@pytest.mark.parametrize("ledger_on", [True, False], ids=["ledger-on", "ledger-off"])
def test_a_redelivered_notification_is_not_sent_twice(kafka: KafkaKit, unique, tmp_path: Path, write_config,
                                                      ledger_on: bool) -> None:
    total, topic, group, path = 300, unique("ledger.kill"), unique("group"), tmp_path / "state" / "ledger.sqlite3"
    kafka.create_topics(topic, partitions=2)
    produce(kafka, topic, total, "n")
    with receiver() as server:
        ledger = {"path": str(path)} if ledger_on else None
        victim = start_worker(write_config(ledger_config(kafka.bootstrap, topic=topic, group=group, url=server.url,
                                                         ledger=ledger, commit_ms=NEVER)), tmp_path / "w.log")
        try:
            wait_until(lambda: len(webhook_ids(server)) == total, what="every notification at the receiver")
            if ledger_on:
                wait_until(lambda: sent_in_ledger(path) == total, what="every send in the ledger")
        finally:
            kill(victim)
        assert sum(max(0, c) for c in kafka.committed(group, topic, 2)) == 0, "committed before the kill"
        survivor = start_worker(write_config(ledger_config(kafka.bootstrap, topic=topic, group=group, url=server.url,
                                                          ledger=ledger, commit_ms=200)), tmp_path / "w.log")
        try:
            wait_until(lambda: sum(kafka.committed(group, topic, 2)) == total, timeout=45,
                       what="the redelivered notifications committed")
        finally:
            finish(survivor)
        counts = webhook_ids(server)
    assert set(counts) == {f"n-{seq}" for seq in range(total)}
    if ledger_on:
        assert max(counts.values()) == 1, "a notification the ledger had as sent was sent again"
        assert '"delivery ledger open"' in (tmp_path / "w.log").read_text()
    else:
        assert set(counts.values()) == {2}, "ledger: off is at-least-once: every uncommitted one again"
        assert not path.exists(), "ledger: off opened no ledger in the default state directory"


def test_sigkill_mid_stream_resends_at_most_what_was_not_yet_marked(kafka: KafkaKit, unique, tmp_path: Path,
                                                                    write_config) -> None:
    total, topic, group, path = 3000, unique("ledger.mid"), unique("group"), tmp_path / "ledger.sqlite3"
    kafka.create_topics(topic, partitions=2)
    produce(kafka, topic, total, "m")
    with receiver() as server:
        config = write_config(ledger_config(kafka.bootstrap, topic=topic, group=group, url=server.url,
                                            ledger={"path": str(path)}, commit_ms=1000))
        victim = start_worker(config, tmp_path / "w.log")
        try:
            wait_until(lambda: len(webhook_ids(server)) >= total // 2, what="half at the receiver")
        finally:
            kill(victim)
        sent_before, marked = settled(lambda: sum(webhook_ids(server).values())), sent_in_ledger(path)
        survivor = start_worker(config, tmp_path / "w.log")
        try:
            wait_until(lambda: sum(kafka.committed(group, topic, 2)) == total, timeout=60, what="everything committed")
        finally:
            finish(survivor)
        counts = webhook_ids(server)
    assert set(counts) == {f"m-{seq}" for seq in range(total)}
    duplicates = sum(counts.values()) - total
    in_flight = sent_before - marked  # accepted by the receiver, not yet in the ledger at the kill
    print(f"\nledger on, SIGKILL mid-stream: {duplicates} duplicates; {in_flight} in flight at the kill; "
          f"{sent_before} sent before it")
    assert duplicates <= in_flight


def test_the_claim_of_a_dead_process_expires_and_the_notification_is_delivered(
        kafka: KafkaKit, unique, tmp_path: Path, write_config) -> None:
    topic, group, path, lease = unique("ledger.lease"), unique("group"), tmp_path / "ledger.sqlite3", 3.0
    kafka.create_topics(topic)
    claimed_at = time.time()
    with sqlite3.connect(path) as connection:  # what a process killed in the middle of a send leaves
        connection.execute(CREATE_TABLE)
        connection.execute("INSERT INTO notifyd_ledger (channel, id, state, owner, claimed_at, sent_at,"
                           " provider_id, attempts, updated_at) VALUES ('c', 'held-0', 'claimed', 'gone:1:x', ?, NULL,"
                           " NULL, 1, ?)", (claimed_at, claimed_at))
    produce(kafka, topic, 1, "held")
    with receiver() as server:
        worker = start_worker(write_config(ledger_config(
            kafka.bootstrap, topic=topic, group=group, url=server.url, ledger={"path": str(path), "lease": lease},
            commit_ms=200, timeout=2, backoff={"initial": 0.1, "max": 0.2})), tmp_path / "w.log")
        try:
            wait_until(lambda: webhook_ids(server)["held-0"] >= 1, timeout=40, what="the held notification")
            delivered_at = time.time()
            wait_until(lambda: sum(kafka.committed(group, topic, 1)) == 1, what="its offset committed")
        finally:
            finish(worker)
        assert webhook_ids(server)["held-0"] == 1
    assert delivered_at >= claimed_at + lease - 0.5, "sent while another process's claim was still live"


def test_a_ledger_that_cannot_be_opened_stops_the_channel_with_the_config_code(tmp_path: Path, write_config) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    data = {"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "ledger": {"path": str(blocker / "l.db")},
            "channels": {"c": {"topics": ["t"], "handler": "log"}}}
    command = [sys.executable, "-m", "notifyd", "worker", "--config", str(write_config(data)), "--channel", "c"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=30)
    assert result.returncode == ExitCode.CONFIG  # the config check already sees the directory cannot be written
    assert "ledger.path: the ledger's directory" in result.stderr.decode()
    (tmp_path / "garbage.db").write_bytes(b"not a database " * 512)  # writable, there: only opening tells
    data["ledger"]["path"] = str(tmp_path / "garbage.db")
    command[command.index("--config") + 1] = str(write_config(data))
    result = subprocess.run(command, cwd=ROOT, capture_output=True, timeout=30)
    assert result.returncode == ExitCode.CONFIG
    line = json.loads(result.stderr.decode().strip().splitlines()[-1])
    assert line["event"] == "cannot start: the delivery ledger cannot be opened"
    assert "cannot open the SQLite ledger" in line["error"]
