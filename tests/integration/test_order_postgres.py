"""The per-key order queues of strict channels in PostgreSQL: the same SQL checks as SQLite's."""

from __future__ import annotations

from pathlib import Path

from notifyd.config.settings import LedgerSettings
from notifyd.ledger.opening import open_store
from tests.unit.test_order_queue import NOW, check_parking_order, queues


def test_the_postgres_queue_keeps_parking_order_and_prunes_with_the_ledger(postgres_dsn: str, tmp_path: Path,
                                                                           unique) -> None:
    store = open_store(LedgerSettings(type="postgres", dsn=postgres_dsn))
    try:
        check_parking_order(queues(tmp_path, channel=unique("pg"), store=store)[0])
        q, _ = queues(tmp_path, channel=unique("pg"), store=store)
        q.park(b"\x00k", "a", NOW)
        q.park(b"\x00k", "b", NOW + 5)
        assert store.prune(NOW + 1) >= 1  # a's due is past the retention: gone, b is the head
        assert q.turn(b"\x00k", "b") == (None, True)
    finally:
        store.close()
