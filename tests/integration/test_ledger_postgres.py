"""The delivery ledger in PostgreSQL: a real server the test starts itself (``tests/pgserver.py``)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import structlog

from notifyd.api import Notification
from notifyd.config.settings import LedgerSettings
from notifyd.ledger.decision import DUPLICATE, HELD, SEND, SENT
from notifyd.ledger.guard import DuplicateSuppressed, guard
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.opening import LedgerUnavailable, open_store
from tests.integration.test_ledger_delivery import ledger_config, produce, receiver, webhook_ids
from tests.kit.kafka import KafkaKit
from tests.kit.wait import wait_until
from tests.kit.workerprocess import finish, start_worker

LOG = structlog.get_logger("test")


def pg_ledger(dsn: str, owner: str) -> Ledger:
    store = open_store(LedgerSettings(type="postgres", dsn=dsn))
    return Ledger(store, channel="pg", owner=owner, window=60.0, lease=30.0, retention=600.0, flush_interval=60.0,
                  log=LOG)


def test_claims_marks_and_the_lease_across_hosts(postgres_dsn: str) -> None:
    first, second = pg_ledger(postgres_dsn, "host-a:1:x"), pg_ledger(postgres_dsn, "host-b:1:y")
    assert first.claim("p-1", attempt=1).action == SEND
    first.flush()
    held = second.claim("p-1", attempt=1)
    assert held.action == HELD and 25 < held.retry_after <= 30  # host-a is not ours to check: the lease decides
    first.mark_sent("p-1", "provider-1", 2, time.time())
    first.flush()
    assert second.claim("p-1", attempt=1).action == DUPLICATE
    record = second.store.get("pg", "p-1")
    assert (record.state, record.provider_id, record.attempts) == (SENT, "provider-1", 2)
    (_, traced), = second.store.trace("p-1")[0]
    assert traced.received_at is not None and traced.received_at <= traced.sent_at  # kept from the first claim
    assert first.store.prune(time.time() + 1) >= 1
    assert second.claim("p-1", attempt=1).action == SEND
    first.close()
    second.close()


def test_the_async_guard_reads_postgres_off_the_loop(postgres_dsn: str) -> None:
    ledger, sent = pg_ledger(postgres_dsn, "host-a:2:z"), []

    class Handler:
        blocking = False

        async def send(self, notification: Notification) -> None:
            sent.append(notification.id)

        def close(self) -> None:
            pass

    guarded = guard(Handler(), ledger, retries=3, on_duplicate=lambda: None)
    asyncio.run(guarded.send(Notification(id="p-2", channel="pg")))
    with pytest.raises(DuplicateSuppressed):
        asyncio.run(guarded.send(Notification(id="p-2", channel="pg")))
    assert sent == ["p-2"] and ledger.blocking
    ledger.close()


def test_an_unreachable_server_is_unavailable() -> None:
    with pytest.raises(LedgerUnavailable, match="cannot open the PostgreSQL ledger"):
        open_store(LedgerSettings(type="postgres", dsn="host=127.0.0.1 port=1 user=x connect_timeout=2"))


@pytest.mark.kafka
def test_a_channel_process_on_the_postgres_ledger_sends_a_redelivery_once(
        postgres_dsn: str, kafka: KafkaKit, unique, tmp_path: Path, write_config) -> None:
    total, topic = 50, unique("ledger.pg")
    kafka.create_topics(topic)
    produce(kafka, topic, total, "pg")
    ledger = {"type": "postgres", "dsn": postgres_dsn}
    with receiver() as server:
        for group in (unique("group"), unique("group")):  # a second group reads everything again
            config = write_config(ledger_config(kafka.bootstrap, topic=topic, group=group, url=server.url,
                                                ledger=ledger, commit_ms=200))
            worker = start_worker(config, tmp_path / "w.log")
            try:
                wait_until(lambda: sum(kafka.committed(group, topic)) == total, timeout=45, what="all committed")
            finally:
                finish(worker)
        counts = webhook_ids(server)
    assert set(counts) == {f"pg-{seq}" for seq in range(total)} and set(counts.values()) == {1}


def test_hosts_starting_at_once_make_the_tables_once(postgres_dsn: str) -> None:
    import psycopg  # the postgres extra, as the fixture needs

    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS fresh_start")
        admin.execute("CREATE DATABASE fresh_start")
    dsn = postgres_dsn.replace("dbname=postgres", "dbname=fresh_start")
    with ThreadPoolExecutor(6) as pool:  # without the schema lock: "duplicate key value violates unique constraint"
        stores = list(pool.map(lambda _: open_store(LedgerSettings(type="postgres", dsn=dsn)), range(6)))
    for store in stores:
        store.close()
