"""What a ledger storage does, and the SQL every storage shares.

A storage reads one record, writes a batch of rows (and of events: failed attempts,
suppressed duplicates, outcomes other than sent, for ``notifyd trace``) in one
transaction, and prunes old rows. It also keeps the per-key queues of strict channels
(``notifyd.ledger.order``), written at once rather than batched. A batched claim never overwrites a ``sent`` row another
process wrote meanwhile.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from notifyd.ledger.decision import Record
from notifyd.ledger.order import Head

# (channel, id, state, owner, claimed_at, sent_at, provider_id, attempts, updated_at, received_at)
Row = tuple[str, str, str, str, float, float | None, str | None, int, float, float]


class Batch(NamedTuple):
    """What one flush of a ledger writes: its records by id, of one channel and owner, all updated ``at``.

    A record is a ``Record`` or a plain tuple of its fields in the same order (the ledger's own), read by index.
    """

    channel: str
    owner: str
    at: float
    records: dict[str, tuple]


def rows_of(batch: Batch) -> list[Row]:
    """A batch's records as the table's rows."""
    channel, at = batch.channel, batch.at
    return [(channel, key, r[0], r[1], r[2], r[3], r[4], r[5], at, r[6]) for key, r in batch.records.items()]


TABLE = "notifyd_ledger"
COLUMNS = "channel, id, state, owner, claimed_at, sent_at, provider_id, attempts, updated_at, received_at"

CREATE_TABLE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    channel TEXT NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    owner TEXT NOT NULL,
    claimed_at DOUBLE PRECISION NOT NULL,
    sent_at DOUBLE PRECISION,
    provider_id TEXT,
    attempts INTEGER NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    received_at DOUBLE PRECISION,
    PRIMARY KEY (channel, id))"""
# A ledger made before ``received_at`` existed gets the column (NULL in its old rows).
RECEIVED_COLUMN = "received_at DOUBLE PRECISION"
CREATE_INDEX = f"CREATE INDEX IF NOT EXISTS {TABLE}_updated ON {TABLE} (updated_at)"

# (channel, id, at, kind, attempt, detail): the rarer moments of a notification's history.
Event = tuple[str, str, float, str, int, str]
EVENTS = "notifyd_ledger_events"
CREATE_EVENTS = f"""CREATE TABLE IF NOT EXISTS {EVENTS} (
    channel TEXT NOT NULL,
    id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    detail TEXT NOT NULL)"""
CREATE_EVENTS_INDEX = f"CREATE INDEX IF NOT EXISTS {EVENTS}_id ON {EVENTS} (id)"


def insert_event_sql(placeholder: str, rows: int = 1) -> str:
    """The batched write of events, ``rows`` of them a statement."""
    return f"INSERT INTO {EVENTS} (channel, id, at, kind, attempt, detail) VALUES {values_sql(placeholder, 6, rows)}"


def values_sql(placeholder: str, width: int, rows: int) -> str:
    """``rows`` parenthesised tuples of ``width`` parameter markers, for a multi-row ``VALUES``."""
    row = f"({', '.join([placeholder] * width)})"
    return ", ".join([row] * rows)


def trace_sql(placeholder: str) -> tuple[str, str]:
    """The reads of one id's records (every channel) and its events, oldest first."""
    return (f"SELECT channel, state, owner, claimed_at, sent_at, provider_id, attempts, received_at FROM {TABLE} "
            f"WHERE id = {placeholder} ORDER BY channel",
            f"SELECT channel, id, at, kind, attempt, detail FROM {EVENTS} WHERE id = {placeholder} ORDER BY at")


def upsert_sql(placeholder: str, rows: int = 1) -> str:
    """The batched write, ``rows`` records a statement; ``placeholder`` is the driver's marker (``?`` or ``%s``).

    ``received_at`` is written with a new row only: it is when the channel first claimed the id.
    """
    return (f"INSERT INTO {TABLE} ({COLUMNS}) VALUES {values_sql(placeholder, 10, rows)} "
            "ON CONFLICT (channel, id) DO UPDATE SET "
            "state = excluded.state, owner = excluded.owner, claimed_at = excluded.claimed_at, "
            "sent_at = excluded.sent_at, provider_id = excluded.provider_id, attempts = excluded.attempts, "
            f"updated_at = excluded.updated_at WHERE excluded.state = 'sent' OR {TABLE}.state <> 'sent'")


def select_sql(placeholder: str) -> str:
    """The read of one record by channel and id."""
    return (f"SELECT state, owner, claimed_at, sent_at, provider_id, attempts FROM {TABLE} "
            f"WHERE channel = {placeholder} AND id = {placeholder}")


def select_many_sql(placeholder: str, count: int) -> str:
    """The read of ``count`` records of one channel at once, each row led by its id."""
    marks = ", ".join([placeholder] * count)
    return (f"SELECT id, state, owner, claimed_at, sent_at, provider_id, attempts FROM {TABLE} "
            f"WHERE channel = {placeholder} AND id IN ({marks})")


def prune_sql(placeholder: str) -> tuple[str, str]:
    """The deletions of rows untouched, and events written, before a time."""
    return (f"DELETE FROM {TABLE} WHERE updated_at < {placeholder}",
            f"DELETE FROM {EVENTS} WHERE at < {placeholder}")


def record_of(row: tuple | None) -> Record | None:
    """The record of a selected row."""
    return None if row is None else Record(*row)


def records_by_id(rows: list[tuple]) -> dict[str, Record]:
    """The records of rows selected by ``select_many_sql``."""
    return {row[0]: Record(*row[1:]) for row in rows}


class Store(Protocol):
    """A ledger storage; ``blocking`` says a read may wait on the network."""

    blocking: bool

    def get(self, channel: str, notification_id: str) -> Record | None:
        """The record of one notification, or None."""

    def get_many(self, channel: str, ids: list[str]) -> dict[str, Record]:
        """The records of those of ``ids`` the ledger holds, in one query."""

    def put(self, batch: Batch, events: list[Event]) -> None:
        """Write ``batch`` and ``events`` in one transaction."""

    def trace(self, notification_id: str) -> tuple[list[tuple[str, Record]], list[Event]]:
        """Every channel's record of one id, and its events."""

    def prune(self, before: float) -> int:
        """Delete rows untouched since ``before``; how many went."""

    def order_head(self, channel: str, key: str) -> Head | None:
        """The head of a key's queue (``notifyd.ledger.order``), or None when it is empty."""

    def order_park(self, channel: str, key: str, notification_id: str, due: float) -> None:
        """Append an id to its key's queue, or update its due if it is queued; committed on return."""

    def order_touch(self, channel: str, key: str, notification_id: str, due: float) -> None:
        """Update a queued id's due; nothing if it is not queued."""

    def order_pop(self, channel: str, key: str, notification_id: str) -> None:
        """Remove an id from its key's queue; committed on return."""

    def close(self) -> None:
        """Release the connections."""


class StoreUnavailable(Exception):
    """The storage cannot be opened or reached."""
