"""The ledger in SQLite (WAL): the default, a file on the host, no set-up.

Reads take a connection of their own and writes another, so a reader never waits for a
batch being committed (WAL lets both run). Several channel processes share the file;
``busy_timeout`` makes a writer wait for another's commit instead of failing.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from itertools import chain

from notifyd.ledger import order
from notifyd.ledger.decision import SENT, Record
from notifyd.ledger.store import (
    COLUMNS,
    CREATE_EVENTS,
    CREATE_EVENTS_INDEX,
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

BUSY_TIMEOUT_MS = 10_000
OPEN_RETRY_DELAY = 0.05
# The writer's page cache (16 MiB at most, SQLite's default 2 MiB) and checkpoint interval
# (10,000 WAL pages, ~40 MB, against 1,000). With random ids (UUIDv4) each batch touches pages
# all over the index: at 300,000 rows a write cost 13-16 us of CPU a row with SQLite's defaults,
# 8-11 with these (bench case 6, "ledger writes"). Sequential ids gain nothing, and lose nothing.
WRITER_PRAGMAS = ("PRAGMA cache_size=-16384", "PRAGMA wal_autocheckpoint=10000")
# Records a statement. sqlite3 lets the GIL go around each statement's step and takes it back
# after: with one record a statement and the poll loop busy on the other thread, the writer
# waited for the GIL at every record (a pure-Python thread beside it: 2.6 ms a record; 200
# a statement: 33 us). Each statement binds at most 2,000 parameters (fewer on an old SQLite).
ROWS_PER_STATEMENT = 200
# What a first attempt's sent row binds of its own; its channel, owner and updated_at are the batch's.
FIRST_SEND_VALUES = ("id", "claimed_at", "sent_at", "provider_id", "received_at")


class SqliteStore:
    """A ledger file; its directory is created when missing."""

    blocking = False

    def __init__(self, path: str, *, writer_pragmas: tuple[str, ...] = WRITER_PRAGMAS) -> None:
        self.path = path
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._writer, self._reader = _open_when_free(path)
            for pragma in writer_pragmas:
                self._writer.execute(pragma)
            # SQLite before 3.32 binds at most 999 parameters a statement.
            limit = self._writer.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            self._per_statement = min(ROWS_PER_STATEMENT, limit // 10)
            self._first_sends_per_statement = min(ROWS_PER_STATEMENT, (limit - 3) // len(FIRST_SEND_VALUES))
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the SQLite ledger {path}: {exc}") from exc
        self._read_lock, self._write_lock = threading.Lock(), threading.Lock()
        self._select = select_sql("?")
        self._prune = (*prune_sql("?"), order.prune_order_sql("?"))
        self._park = order.park_sql("?", order.SQLITE_NEXT_SEQ)

    def get(self, channel: str, notification_id: str) -> Record | None:
        """The record of one notification, or None."""
        with self._read_lock:
            return record_of(self._reader.execute(self._select, (channel, notification_id)).fetchone())

    def get_many(self, channel: str, ids: list[str]) -> dict[str, Record]:
        """The records of those of ``ids`` the ledger holds, in one query."""
        with self._read_lock:
            rows = self._reader.execute(select_many_sql("?", len(ids)), (channel, *ids)).fetchall()
        return records_by_id(rows)

    def put(self, batch: Batch, events: list[Event]) -> None:
        """Write ``batch`` and ``events`` in one transaction; a first attempt's sent row replaces whatever was there.

        The replace costs ~1.4 us a row less than the conditional upsert claims need. A
        retry's sent row takes the upsert, which keeps the ``received_at`` of its first claim.
        """
        owner = batch.owner
        # A Record is (state, owner, claimed_at, sent_at, provider_id, attempts, received_at), read by index:
        # a field by name is a descriptor call for each row.
        first_sends = [(key, r[2], r[3], r[4], r[6]) for key, r in batch.records.items()
                       if r[0] == SENT and r[5] == 1 and r[1] == owner]
        others = [] if len(first_sends) == len(batch.records) else [
            row for row in rows_of(batch) if not (row[2] == SENT and row[7] == 1 and row[3] == owner)]
        with self._write_lock, self._writer:
            self._write_first_sends((batch.channel, owner, batch.at), first_sends)
            self._write_many(_upsert_sql, others)
            self._write_many(_insert_events_sql, events)

    def _write_first_sends(self, shared: tuple[str, str, float], values: list[tuple]) -> None:
        """First attempts' sent rows (``FIRST_SEND_VALUES``), with ``shared`` (channel, owner, updated_at) bound once.

        sqlite3 binds with the GIL held, and a bound value costs more than SQLite's own work
        for it: five a row instead of ten took a written row from 5.1-5.3 to 4.6-4.7 us
        (sequential ids, in process; ``bench.ledger.write_cost``).
        """
        per = self._first_sends_per_statement
        statements = [shared + tuple(chain.from_iterable(values[start:start + per]))
                      for start in range(0, len(values), per)]
        full = statements if len(values) % per == 0 else statements[:-1]
        if full:
            self._writer.executemany(_replace_first_sends_sql(per), full)
        if len(full) < len(statements):
            self._writer.execute(_replace_first_sends_sql(len(values) % per), statements[-1])

    def _write_many(self, sql: Callable[[int], str], rows: list[tuple]) -> None:
        """Write ``rows`` with statements of ``ROWS_PER_STATEMENT`` rows (the remainder in one more); ``sql(n)``."""
        per = self._per_statement
        full = len(rows) - len(rows) % per
        if full:
            self._writer.executemany(sql(per), [tuple(chain.from_iterable(rows[start:start + per]))
                                                for start in range(0, full, per)])
        if full < len(rows):
            self._writer.execute(sql(len(rows) - full), tuple(chain.from_iterable(rows[full:])))

    def order_head(self, channel: str, key: str) -> order.Head | None:
        """The head of a key's queue, or None when it is empty."""
        with self._read_lock:
            row = self._reader.execute(order.head_sql("?"), (channel, key)).fetchone()
        return None if row is None else order.Head(*row)

    def order_park(self, channel: str, key: str, notification_id: str, due: float) -> None:
        """Append an id to its key's queue (its next seq read in the same statement), or update its due."""
        self._write_now(self._park, (channel, key, notification_id, channel, key, due))

    def order_touch(self, channel: str, key: str, notification_id: str, due: float) -> None:
        """Update a queued id's due; nothing if it is not queued."""
        self._write_now(order.touch_sql("?"), (due, channel, key, notification_id))

    def order_pop(self, channel: str, key: str, notification_id: str) -> None:
        """Remove an id from its key's queue."""
        self._write_now(order.pop_sql("?"), (channel, key, notification_id))

    def _write_now(self, sql: str, params: tuple) -> None:
        with self._write_lock, self._writer:
            self._writer.execute(sql, params)

    def trace(self, notification_id: str) -> tuple[list[tuple[str, Record]], list[Event]]:
        """Every channel's record of one id, and its events."""
        records_sql, events_sql = trace_sql("?")
        with self._read_lock:
            records = self._reader.execute(records_sql, (notification_id,)).fetchall()
            events = self._reader.execute(events_sql, (notification_id,)).fetchall()
        return [(row[0], Record(*row[1:])) for row in records], events

    def prune(self, before: float) -> int:
        """Delete rows untouched, and events written, before ``before``."""
        with self._write_lock, self._writer:
            return sum(self._writer.execute(sql, (before,)).rowcount for sql in self._prune)

    def close(self) -> None:
        """Close both connections."""
        self._reader.close()
        self._writer.close()


@functools.lru_cache(maxsize=2 * ROWS_PER_STATEMENT)
def _replace_first_sends_sql(rows: int) -> str:
    """``rows`` first attempts' sent rows replace whatever was there: ?1-?3 shared, then each row's own values."""
    width = len(FIRST_SEND_VALUES)
    values = ", ".join(f"(?1, ?{n + 1}, '{SENT}', ?2, ?{n + 2}, ?{n + 3}, ?{n + 4}, 1, ?3, ?{n + 5})"
                       for n in range(3, 3 + width * rows, width))
    return f"INSERT OR REPLACE INTO {TABLE} ({COLUMNS}) VALUES {values}"


@functools.lru_cache(maxsize=2 * ROWS_PER_STATEMENT)
def _upsert_sql(rows: int) -> str:
    return upsert_sql("?", rows)


@functools.lru_cache(maxsize=2 * ROWS_PER_STATEMENT)
def _insert_events_sql(rows: int) -> str:
    return insert_event_sql("?", rows)


def _open_when_free(path: str) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """The writing and reading connections, the tables made; tried again while another process holds the file.

    The channel processes of a daemon open one file at the same moment at start-up. Some
    steps of making a new file (the switch to WAL) fail at once with "database is locked"
    instead of waiting for the busy timeout: one such failure stopped the whole daemon.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return _open(path)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(OPEN_RETRY_DELAY)


def _open(path: str) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    writer = _connect(path)
    try:
        with writer:
            # No index on updated_at: it cost ~1.8 us a written row, and only the hourly prune
            # (a scan, on the writer's connection, readers unaffected) would use it.
            writer.execute(CREATE_TABLE + " WITHOUT ROWID")
            _add_received_column(writer)
            writer.execute(CREATE_EVENTS)
            writer.execute(CREATE_EVENTS_INDEX)
            writer.execute(order.CREATE_ORDER_TABLE)
            writer.execute(order.CREATE_ORDER_INDEX)
        return writer, _connect(path)
    except sqlite3.Error:
        writer.close()
        raise


def _add_received_column(writer: sqlite3.Connection) -> None:
    """Give a ledger file made by an older notifyd its ``received_at`` column (SQLite has no ``IF NOT EXISTS`` here)."""
    columns = {row[1] for row in writer.execute(f"PRAGMA table_info({TABLE})")}
    if "received_at" not in columns:
        writer.execute(f"ALTER TABLE {TABLE} ADD COLUMN {RECEIVED_COLUMN}")


def _connect(path: str) -> sqlite3.Connection:
    connection = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
    connection.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode: a commit survives a process crash; only an OS crash may lose the last ones.
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return connection
