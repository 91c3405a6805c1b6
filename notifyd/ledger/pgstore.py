"""The ledger in PostgreSQL, for daemons on several hosts (``notifyd[postgres]``: psycopg 3).

Reads and writes use separate connections, each behind a lock: psycopg serialises a
connection's commands anyway, and a read must not wait behind a batch's commit.
"""

from __future__ import annotations

import threading
from typing import Any

from notifyd.ledger.decision import Record
from notifyd.ledger.store import CREATE_INDEX, CREATE_TABLE, Row, StoreUnavailable, prune_sql, record_of, \
    records_by_id, select_many_sql, select_sql, upsert_sql

CONNECT_TIMEOUT = 5


class PostgresStore:
    """A ledger table in the database ``dsn`` names; created when missing."""

    blocking = True

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise StoreUnavailable("the postgres ledger needs psycopg: pip install 'notifyd[postgres]'") from exc
        self._errors = psycopg.Error
        try:
            self._writer = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT)
            with self._writer.transaction():
                self._writer.execute(CREATE_TABLE)
                self._writer.execute(CREATE_INDEX)
            self._reader = psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot open the PostgreSQL ledger: {exc}") from exc
        self._read_lock, self._write_lock = threading.Lock(), threading.Lock()
        self._select, self._upsert, self._prune = select_sql("%s"), upsert_sql("%s"), prune_sql("%s")

    def get(self, channel: str, notification_id: str) -> Record | None:
        """The record of one notification, or None."""
        with self._read_lock:
            return record_of(self._run(self._reader, self._select, (channel, notification_id)).fetchone())

    def get_many(self, channel: str, ids: list[str]) -> dict[str, Record]:
        """The records of those of ``ids`` the ledger holds, in one query."""
        with self._read_lock:
            rows = self._run(self._reader, select_many_sql("%s", len(ids)), (channel, *ids)).fetchall()
        return records_by_id(rows)

    def put(self, rows: list[Row]) -> None:
        """Write ``rows`` in one transaction."""
        with self._write_lock, self._writer.transaction(), self._writer.cursor() as cursor:
            cursor.executemany(self._upsert, rows)

    def prune(self, before: float) -> int:
        """Delete rows untouched since ``before``."""
        with self._write_lock, self._writer.transaction():
            return self._writer.execute(self._prune, (before,)).rowcount

    def close(self) -> None:
        """Close both connections."""
        self._reader.close()
        self._writer.close()

    def _run(self, connection: Any, sql: str, params: tuple) -> Any:
        try:
            return connection.execute(sql, params)
        except self._errors as exc:
            raise StoreUnavailable(f"the PostgreSQL ledger failed: {exc}") from exc
