"""A strict channel's Deliverer without a broker: followers queued in memory behind a head that just failed.

Real handlers, a real BlockingPool, a real SQLite ledger file; the delay topics are a
producer that acknowledges every record at once. The look at the key's head runs in
place (SQLite) or on a thread (a storage that says it blocks, like PostgreSQL).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from notifyd.api import Notification, RetryableError
from notifyd.channel.blocking import BlockingPool
from notifyd.channel.strict import StrictOrder
from notifyd.channel.strictdelivery import StrictDeliverer
from notifyd.config.delays import delay_topics
from notifyd.config.settings import ChannelSettings
from notifyd.ledger.orderqueue import OrderQueues
from notifyd.ledger.sqlitestore import SqliteStore
from notifyd.metrics import channel_metrics
from tests.kit.wait import wait_until_async
from tests.unit.test_delivery_paths import Pooled, job

LOG = structlog.get_logger("test")


class FailsOnce(Pooled):
    """Fails the first attempt of ``ids``."""

    def __init__(self, ids: set[str]) -> None:
        super().__init__()
        self.ids = ids

    def send(self, notification: Notification) -> None:
        if notification.id in self.ids and notification.attempt == 1:
            raise RetryableError("provider down")
        super().send(notification)


class Acknowledging:
    """Delay topics whose broker has every record at once (on the loop's next turn, as ``poll`` would report it)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def write(self, topic: str, *, key: bytes | None, value: bytes | None, headers: Any,
              on_written: Callable[[], None], on_failed: Any, timestamp: int | None = None) -> None:
        self.records.append((topic, json.loads(value)["id"]))
        asyncio.get_running_loop().call_soon(on_written)


class BlockingStore(SqliteStore):
    blocking = True  # like PostgreSQL: the look runs on a thread


@pytest.mark.parametrize("store_kind", [SqliteStore, BlockingStore])
def test_followers_queued_behind_a_head_that_fails_are_parked_in_order(tmp_path: Path, store_kind: type) -> None:
    asyncio.run(followers_behind_a_failed_head(store_kind(str(tmp_path / "ledger.sqlite3"))))


async def followers_behind_a_failed_head(store: SqliteStore) -> None:
    queues = OrderQueues(store, channel="strict", finished=lambda _id: False, log=LOG)
    settings = ChannelSettings(name="strict", topics=("t",), handler="test", retry_schedule=(5.0,), retries=1,
                               ordering="strict")
    handler, producer, finished = FailsOnce({"head"}), Acknowledging(), []
    pool = BlockingPool(asyncio.get_running_loop(), size=2)
    deliverer = StrictDeliverer(
        order=StrictOrder(queues, log=LOG), before_submit=lambda _jobs: None, settings=settings, handler=handler,
        prepare=lambda n: n, pool=pool, producer=producer,
        metrics=channel_metrics(), log=LOG, redact=str, on_finished=finished.append, is_current=lambda _job: True,
        delay_topics=delay_topics(settings))
    ids = ["head", "f1", "f2"]
    jobs = [job(n, {"id": i, "to": "x", "body": "b"}, key=b"k") for n, i in enumerate(ids)]
    jobs.append(job(3, {"id": "other", "to": "x", "body": "b"}, key=b"o"))
    deliverer.submit(jobs)
    await wait_until_async(lambda: len(finished) == 4, timeout=5, what="every job handed over or delivered")
    pool.stop()

    assert [sent[0] for sent in handler.sent] == ["other"]
    assert [record[1] for record in producer.records] == ids  # the head's retry, then its followers' holds
    assert [j.attempts for j in jobs] == [1, 0, 0, 1]  # a hold uses up no attempt
    for expected in ids:  # each becomes the head once the one before it has its outcome
        head = store.order_head("strict", b"k".hex())
        assert head is not None and head.id == expected
        store.order_pop("strict", b"k".hex(), expected)
    assert store.order_head("strict", b"o".hex()) is None  # delivered at once: never queued
