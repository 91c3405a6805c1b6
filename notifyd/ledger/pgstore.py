"""The ledger in PostgreSQL, for daemons on several hosts (``notifyd[postgres]``: psycopg 3).

Reads and writes use separate connections, each behind a lock: psycopg serialises a
connection's commands anyway, and a read must not wait behind a batch's commit.
"""

from __future__ import annotations

import threading
from typing import Any

from notifyd.ledger import order
from notifyd.ledger.decision import Record
from notifyd.ledger.store import (
    CREATE_EVENTS,
    CREATE_EVENTS_INDEX,
    CREATE_INDEX,
    CREATE_TABLE,
    RECEIVED_COLUMN,
    TABLE,
    Batch,
    Event,
    StoreUnavailable,
    insert_event_sql,
    prune_sql,
    record_of,
    records_by_id,
    rows_of,
    select_many_sql,
    select_sql,
    trace_sql,
    upsert_sql,
)

CONNECT_TIMEOUT = 5
SCHEMA_LOCK = 0x6E6F7469  # "noti": one advisory lock key for making the tables


class PostgresStore:
    """A ledger table in the database ``dsn`` names; created when missing."""

    blocking = True

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise StoreUnavailable("the postgres ledger needs psycopg: pip install 'notifyd[postgres]'") from exc
        self._errors, self._connect, self._dsn = psycopg.Error, psycopg.connect, dsn
        try:
            self._writer = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT)
            with self._writer.transaction():
                # Two hosts' first start at once: CREATE TABLE IF NOT EXISTS is not safe against itself
                # (a unique violation on pg_type), so the makers take turns.
                self._writer.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                self._writer.execute(CREATE_TABLE)
                self._writer.execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {RECEIVED_COLUMN}")
                self._writer.execute(CREATE_INDEX)
                self._writer.execute(CREATE_EVENTS)
                self._writer.execute(CREATE_EVENTS_INDEX)
                self._writer.execute(order.CREATE_ORDER_TABLE)
                self._writer.execute(order.CREATE_ORDER_INDEX)
                self._writer.execute(order.CREATE_ORDER_SEQUENCE)
            self._reader = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot open the PostgreSQL ledger: {exc}") from exc
        self._read_lock, self._write_lock = threading.Lock(), threading.Lock()
        self._select, self._upsert = select_sql("%s"), upsert_sql("%s")
        self._prune = (*prune_sql("%s"), order.prune_order_sql("%s"))
        self._park = order.park_sql("%s", order.POSTGRES_NEXT_SEQ)

    def get(self, channel: str, notification_id: str) -> Record | None:
        """The record of one notification, or None."""
        with self._read_lock:
            return record_of(self._read(self._select, (channel, notification_id)).fetchone())

    def get_many(self, channel: str, ids: list[str]) -> dict[str, Record]:
        """The records of those of ``ids`` the ledger holds, in one query."""
        with self._read_lock:
            rows = self._read(select_many_sql("%s", len(ids)), (channel, *ids)).fetchall()
        return records_by_id(rows)

    def put(self, batch: Batch, events: list[Event]) -> None:
        """Write ``batch`` and ``events`` in one transaction."""
        with self._write_lock:
            self._writer = self._alive(self._writer)
        with self._write_lock, self._writer.transaction(), self._writer.cursor() as cursor:
            cursor.executemany(self._upsert, rows_of(batch))
            if events:
                cursor.executemany(insert_event_sql("%s"), events)

    def trace(self, notification_id: str) -> tuple[list[tuple[str, Record]], list[Event]]:
        """Every channel's record of one id, and its events."""
        records_sql, events_sql = trace_sql("%s")
        with self._read_lock:
            records = self._read(records_sql, (notification_id,)).fetchall()
            events = self._read(events_sql, (notification_id,)).fetchall()
        return [(row[0], Record(*row[1:])) for row in records], [tuple(event) for event in events]

    def prune(self, before: float) -> int:
        """Delete rows untouched, and events written, before ``before``."""
        with self._write_lock:
            self._writer = self._alive(self._writer)
        with self._write_lock, self._writer.transaction():
            return sum(self._writer.execute(sql, (before,)).rowcount for sql in self._prune)

    def order_head(self, channel: str, key: str) -> order.Head | None:
        """The head of a key's queue, or None when it is empty."""
        with self._read_lock:
            row = self._read(order.head_sql("%s"), (channel, key)).fetchone()
        return None if row is None else order.Head(*row)

    def order_park(self, channel: str, key: str, notification_id: str, due: float) -> None:
        """Append an id to its key's queue (its seq from a sequence), or update its due."""
        self._write_now(self._park, (channel, key, notification_id, due))

    def order_touch(self, channel: str, key: str, notification_id: str, due: float) -> None:
        """Update a queued id's due; nothing if it is not queued."""
        self._write_now(order.touch_sql("%s"), (due, channel, key, notification_id))

    def order_pop(self, channel: str, key: str, notification_id: str) -> None:
        """Remove an id from its key's queue."""
        self._write_now(order.pop_sql("%s"), (channel, key, notification_id))

    def close(self) -> None:
        """Close both connections."""
        self._reader.close()
        self._writer.close()

    def _write_now(self, sql: str, params: tuple) -> None:
        with self._write_lock:
            self._writer = self._alive(self._writer)
            with self._writer.transaction():
                self._writer.execute(sql, params)

    def _read(self, sql: str, params: tuple) -> Any:
        """Run a query on the reading connection (its lock held)."""
        try:
            self._reader = self._alive(self._reader, autocommit=True)
            return self._reader.execute(sql, params)
        except self._errors as exc:
            raise StoreUnavailable(f"the PostgreSQL ledger failed: {exc}") from exc

    def _alive(self, connection: Any, **options: Any) -> Any:
        """``connection``, or a new one in its place once the server dropped it (a restart, a failover).

        Without this a channel process stayed unready until restarted after any blip of
        the database; a failed reconnect raises, and the caller's next call tries again.
        """
        if not connection.broken and not connection.closed:
            return connection
        connection.close()
        return self._connect(self._dsn, connect_timeout=CONNECT_TIMEOUT, **options)
