"""Strict per-key order (``ordering: strict``): whose turn it is in a key's queue, and the queue's SQL.

Pure: a function of the queue's head, the notification asking and the time. A key's queue
lists the notifications of one Kafka message key that wait on the delay topics, in the
order they were parked (``seq``); only its head may be attempted. A head the ledger shows
as finished (sent, or given up) is dropped when seen, and so is one long past its due
time (an orphan: its record lost, or its outcome never popped it), so no key waits for ever.
"""

from __future__ import annotations

from typing import NamedTuple

MIN_WAIT = 1.0  # seconds a follower waits at least: the delay tiers' precision
MAX_RECHECK = 60.0  # seconds between a follower's looks at a head that is overdue
STALE_AFTER = 900.0  # seconds past its due after which a head is an orphan: far above a lease or a tier's lateness


class Head(NamedTuple):
    """The first entry of a key's queue."""

    id: str
    seq: int
    due: float  # epoch seconds: when it is next attempted


class Turn(NamedTuple):
    """The decision for one notification: go now (``until`` None), wait until ``until``, or drop the head first."""

    until: float | None = None
    drop: str | None = None  # why the head must go: "finished" or "stale"


GO = Turn()


def turn(head: Head | None, notification_id: str, *, now: float, head_finished: bool = False,
         since: float = 0.0) -> Turn:
    """May ``notification_id`` be attempted at ``now``, given its key's queue ``head``?

    ``since``: when the asking process started. A head counts as late from then at the
    earliest: after the daemon was stopped for longer than ``STALE_AFTER``, every head is
    that late until the delay topics are read again, and none of them is an orphan.
    """
    if head is None or head.id == notification_id:
        return GO
    if head_finished:
        return Turn(drop="finished")
    if now - max(head.due, since) > STALE_AFTER:
        return Turn(drop="stale")
    return Turn(until=wait_until(head.due, now))


def wait_until(head_due: float, now: float) -> float:
    """When a follower looks again: at the head's due, at least ``MIN_WAIT`` on, less often the later the head is."""
    if head_due >= now + MIN_WAIT:
        return head_due
    overdue = max(0.0, now - head_due)
    return now + min(max(MIN_WAIT, overdue), MAX_RECHECK)


def key_text(key: bytes) -> str:
    """A Kafka key as the queue stores it: hex, so any bytes (NUL too) fit a text column of either database."""
    return key.hex()


ORDER_TABLE = "notifyd_order_queue"
ORDER_SEQUENCE = "notifyd_order_seq"  # PostgreSQL: processes of several hosts append to one key at once
CREATE_ORDER_TABLE = f"""CREATE TABLE IF NOT EXISTS {ORDER_TABLE} (
    channel TEXT NOT NULL,
    key TEXT NOT NULL,
    id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    due DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (channel, key, id))"""
CREATE_ORDER_INDEX = f"CREATE INDEX IF NOT EXISTS {ORDER_TABLE}_seq ON {ORDER_TABLE} (channel, key, seq)"
CREATE_ORDER_SEQUENCE = f"CREATE SEQUENCE IF NOT EXISTS {ORDER_SEQUENCE}"
SQLITE_NEXT_SEQ = f"(SELECT COALESCE(MAX(seq), 0) + 1 FROM {ORDER_TABLE} WHERE channel = ? AND key = ?)"
POSTGRES_NEXT_SEQ = f"nextval('{ORDER_SEQUENCE}')"


def head_sql(placeholder: str) -> str:
    """The read of a key's head."""
    return (f"SELECT id, seq, due FROM {ORDER_TABLE} WHERE channel = {placeholder} AND key = {placeholder} "
            "ORDER BY seq, id LIMIT 1")


def park_sql(placeholder: str, next_seq: str) -> str:
    """The append of an id at its key's end; an id already queued keeps its place, its due updated."""
    p = placeholder
    return (f"INSERT INTO {ORDER_TABLE} (channel, key, id, seq, due) VALUES ({p}, {p}, {p}, {next_seq}, {p}) "
            "ON CONFLICT (channel, key, id) DO UPDATE SET due = excluded.due")


def touch_sql(placeholder: str) -> str:
    """The update of a queued id's due (it waits longer, for quiet hours or a schedule); nothing if not queued."""
    p = placeholder
    return f"UPDATE {ORDER_TABLE} SET due = {p} WHERE channel = {p} AND key = {p} AND id = {p}"


def pop_sql(placeholder: str) -> str:
    """The removal of an id from its key's queue."""
    p = placeholder
    return f"DELETE FROM {ORDER_TABLE} WHERE channel = {p} AND key = {p} AND id = {p}"


def prune_order_sql(placeholder: str) -> str:
    """The removal of entries whose due is past the retention (the ledger's hourly prune)."""
    return f"DELETE FROM {ORDER_TABLE} WHERE due < {placeholder}"
