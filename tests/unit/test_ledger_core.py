"""The delivery ledger without Kafka: the claim decision, the SQLite storage, batching and the handler guard."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from notifyd.api import Handler, Notification, PermanentError, RetryableError
from notifyd.config.loading import check_text
from notifyd.config.settings import LedgerSettings
from notifyd.ledger.decision import (
    CLAIMED,
    DUPLICATE,
    FAILED,
    HELD,
    SEND,
    SENT,
    WAITING,
    Record,
    decide,
    prune_before,
)
from notifyd.ledger.guard import DuplicateSuppressed, guard
from notifyd.ledger.ledger import Ledger
from notifyd.ledger.opening import LedgerUnavailable, open_ledger, owner_gone
from notifyd.ledger.sqlitestore import SqliteStore
from notifyd.ledger.store import Batch

LOG = structlog.get_logger("test")


def test_decision_by_state_window_and_lease() -> None:
    times = {"now": 1000.0, "window": 100.0, "lease": 10.0}
    assert decide(None, owner="a", **times).action == SEND
    assert decide(Record(SENT, "b", 950, sent_at=950), owner="a", **times).action == DUPLICATE
    assert decide(Record(SENT, "b", 850, sent_at=850), owner="a", **times).action == SEND  # outside the window
    held = decide(Record(CLAIMED, "b", 996), owner="a", **times)
    assert held.action == HELD and held.retry_after == pytest.approx(6.0)
    assert decide(Record(CLAIMED, "b", 985), owner="a", **times).action == SEND  # the lease ran out
    assert decide(Record(CLAIMED, "a", 999), owner="a", **times).action == SEND  # our own claim: a retry
    assert decide(Record(FAILED, "b", 999), owner="a", **times).action == SEND
    assert prune_before(now=1000.0, retention=50.0, window=100.0) == 900.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def make_ledger(path: Path, *, owner: str, clock: Clock, lease: float = 10.0) -> Ledger:
    return Ledger(SqliteStore(str(path)), channel="c", owner=owner, window=100.0, lease=lease, retention=1000.0,
                  flush_interval=60.0, log=LOG, clock=clock)


def deliver_once(ledger: Ledger, notification_id: str, *, at: float) -> None:
    """Claim ``notification_id`` and mark it sent at ``at``, as its first delivery does."""
    ledger.claim(notification_id, attempt=1)
    ledger.mark_sent(notification_id, None, 1, at)


def test_claims_and_marks_reach_other_processes_at_the_flush(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "ledger.sqlite3"
    first, second = make_ledger(path, owner="p1", clock=clock), make_ledger(path, owner="p2", clock=clock)
    assert first.claim("n-1", attempt=1).action == SEND
    assert second.claim("n-1", attempt=1).action == SEND  # not written yet: the in-flight window
    first.flush()
    first.claim("n-2", attempt=1)
    first.mark_sent("n-2", "prov-7", 1, clock.now)
    assert first.claim("n-2", attempt=1).action == DUPLICATE  # this process sees its own mark at once
    first.flush()
    assert second.claim("n-2", attempt=1).action == DUPLICATE
    third = make_ledger(path, owner="p3", clock=clock)
    clock.now += 5
    assert third.claim("n-1", attempt=1).action == HELD  # p1's claim is 5 s old, the lease 10 s
    clock.now += 6
    assert third.claim("n-1", attempt=1).action == SEND
    third.close()
    row = sqlite3.connect(path).execute("SELECT state, provider_id, attempts FROM notifyd_ledger WHERE id='n-2'")
    assert row.fetchone() == (SENT, "prov-7", 1)
    first.close()
    second.close()


def test_a_failed_attempt_with_a_retry_to_follow_may_be_retried_by_another_process(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "ledger.sqlite3"
    first, second = make_ledger(path, owner="p1", clock=clock), make_ledger(path, owner="p2", clock=clock)
    assert first.claim("n", attempt=1).action == SEND
    first.attempt_failed("n", attempts=1)  # its retry comes back to p2 through the delay tiers
    first.flush()
    assert second.claim("n", attempt=2).action == SEND, "p1's claim must not hold the retry for the lease"
    row = sqlite3.connect(path).execute("SELECT state, attempts FROM notifyd_ledger WHERE id='n'").fetchone()
    assert row == (WAITING, 1)
    first.close()
    second.close()


def test_a_late_claim_never_overwrites_a_sent_row(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "ledger.sqlite3"
    first, second = make_ledger(path, owner="p1", clock=clock), make_ledger(path, owner="p2", clock=clock)
    first.claim("n", attempt=1)
    second.claim("n", attempt=1)
    first.mark_sent("n", None, 1, clock.now)
    first.flush()
    second.flush()
    assert second.store.get("c", "n").state == SENT
    first.close()
    second.close()


def test_the_same_id_twice_in_one_process_waits_for_the_first(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=Clock())
    assert ledger.claim("n", attempt=1).action == SEND
    assert ledger.claim("n", attempt=1).action == HELD
    assert ledger.claim("n", attempt=2).action == SEND  # the first one's retry
    ledger.release("n", attempts=2)
    assert ledger.claim("n", attempt=1).action == SEND
    ledger.close()


def test_an_attempt_repeated_after_a_provider_failure_is_not_held_by_its_own_claim(tmp_path: Path) -> None:
    # An open circuit repeats an attempt the provider failed with the same number (it costs no
    # retry): held as "the same id twice", every probe failed and the circuit never closed.
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=Clock())
    sender = guard(Counting(fail=[RetryableError("503")]), ledger, retries=3, on_duplicate=lambda: None)
    with pytest.raises(RetryableError):
        sender.send(Notification(id="n", channel="c", attempt=1))
    assert ledger.claim("n", attempt=1).action == SEND  # the repeat
    assert ledger.claim("n", attempt=1).action == HELD  # while it runs, another copy waits
    ledger.close()


def test_a_batch_read_taken_before_this_processs_mark_was_written_never_sends_again(tmp_path: Path) -> None:
    # Seen under load: the next consume batch's read came while the first copy's mark was
    # unwritten, found nothing, and answered the second copy's claim after the flush.
    clock = Clock()
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=clock)
    deliver_once(ledger, "n", at=clock.now)
    ledger.prefetch(["n", "other"])
    ledger.flush()
    assert ledger.claim("n", attempt=1).action == DUPLICATE
    ledger.close()


def test_while_a_flush_is_being_written_its_marks_answer_claims_and_batch_reads_wait(tmp_path: Path) -> None:
    clock = Clock()
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=clock)
    deliver_once(ledger, "n", at=clock.now)
    during_the_write = []
    real_put = ledger.store.put

    def slow_put(batch: Batch, events: list) -> None:
        during_the_write.append(ledger.claim("n", attempt=1).action)
        ledger.prefetch(["n"])  # reads the storage before the batch is in it
        real_put(batch, events)

    ledger.store.put = slow_put
    ledger.flush()
    assert during_the_write == [DUPLICATE]
    assert ledger.claim("n", attempt=1).action == DUPLICATE
    ledger.close()


def read_during(ledger: Ledger, ids: list[str], *, flushes: list[str], clock: Clock) -> list[tuple]:
    """``prefetch(ids)`` while a flush of each of ``flushes`` (one delivered id each) finishes; the reads one by one after."""
    real_get_many, reads_one_by_one = ledger.store.get_many, []

    def get_many_then_flushes(channel: str, ids: list[str]) -> dict:
        read = real_get_many(channel, ids)
        for notification_id in flushes:
            deliver_once(ledger, notification_id, at=clock.now)
            ledger.flush()  # written after the read: the read holds nothing of it
        return read

    ledger.store.get_many = get_many_then_flushes
    ledger.prefetch(ids)
    ledger.store.get_many = real_get_many
    real_get = ledger.store.get
    ledger.store.get = lambda *args: reads_one_by_one.append(args) or real_get(*args)
    return reads_one_by_one


def test_a_batch_read_that_a_flush_finished_during_keeps_none_of_that_flushs_ids(tmp_path: Path) -> None:
    clock = Clock()
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=clock)
    reads_one_by_one = read_during(ledger, ["n", "other"], flushes=["n"], clock=clock)
    assert ledger.claim("n", attempt=1).action == DUPLICATE
    assert ledger.claim("other", attempt=1).action == SEND
    assert [args[1] for args in reads_one_by_one] == ["n"]  # "other" came from the batch read
    ledger.close()


def test_a_batch_read_that_two_flushes_finished_during_is_not_kept(tmp_path: Path) -> None:
    clock = Clock()
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=clock)
    reads_one_by_one = read_during(ledger, ["n", "m", "other"], flushes=["n", "m"], clock=clock)
    assert [ledger.claim(key, attempt=1).action for key in ("n", "m", "other")] == [DUPLICATE, DUPLICATE, SEND]
    assert [args[1] for args in reads_one_by_one] == ["n", "m", "other"]
    ledger.close()


def test_a_batch_read_that_only_events_were_written_during_is_kept(tmp_path: Path) -> None:
    clock = Clock()
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=clock)
    real_get_many = ledger.store.get_many
    reads_one_by_one = []

    def get_many_then_an_event_flush(channel: str, ids: list[str]) -> dict:
        read = real_get_many(channel, ids)
        ledger.note("other", "attempt_failed", attempt=1)
        ledger.flush()  # no record written: the read is as good as before
        return read

    ledger.store.get_many = get_many_then_an_event_flush
    ledger.prefetch(["n"])
    ledger.store.get_many = real_get_many
    ledger.store.get = lambda *args: reads_one_by_one.append(args)
    assert ledger.claim("n", attempt=1).action == SEND and reads_one_by_one == []
    ledger.close()


def test_a_failing_storage_keeps_the_batch_for_the_next_flush(tmp_path: Path) -> None:
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=Clock())
    ledger.claim("n", attempt=1)
    ledger.mark_sent("n", None, 1, 1.0)
    real_put = ledger.store.put
    ledger.store.put = lambda rows, events: (_ for _ in ()).throw(sqlite3.OperationalError("disk I/O error"))
    ledger.flush()
    ledger.store.put = real_put
    ledger.flush()
    assert ledger.store.get("c", "n").state == SENT
    ledger.close()


def test_an_unopenable_ledger_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LedgerUnavailable, match="cannot open the SQLite ledger"):
        open_ledger(LedgerSettings(path=str(blocker / "ledger.sqlite3")), channel="c", log=LOG)
    with pytest.raises(LedgerUnavailable, match="PostgreSQL"):
        open_ledger(LedgerSettings(type="postgres", dsn="host=127.0.0.1 port=1 connect_timeout=2"),
                    channel="c", log=LOG)


class Counting(Handler):
    def __init__(self, fail: list[BaseException] | None = None) -> None:
        super().__init__()
        self.sent: list[str] = []
        self.fail = fail or []

    def send(self, notification: Notification) -> str:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append(notification.id)
        return f"provider-{notification.id}"


class AsyncCounting(Counting):
    async def send(self, notification: Notification) -> str:  # type: ignore[override]
        return Counting.send(self, notification)


def test_the_guard_sends_once_and_counts_the_duplicate(tmp_path: Path) -> None:
    ledger, duplicates = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=Clock()), []
    handler = Counting()
    guarded = guard(handler, ledger, retries=3, on_duplicate=lambda: duplicates.append(1))
    assert guarded.blocking is True and not asyncio.iscoroutinefunction(guarded.send)
    guarded.send(Notification(id="n", channel="c"))
    with pytest.raises(DuplicateSuppressed):
        guarded.send(Notification(id="n", channel="c"))
    assert handler.sent == ["n"] and duplicates == [1]
    ledger.flush()
    assert ledger.store.get("c", "n").provider_id == "provider-n"
    ledger.close()


def test_the_async_guard_lets_a_retry_go_anywhere_and_releases_a_given_up_claim(tmp_path: Path) -> None:
    clock = Clock()
    ledger = make_ledger(tmp_path / "l.sqlite3", owner="p1", clock=clock)
    other = make_ledger(tmp_path / "l.sqlite3", owner="p2", clock=clock)
    handler = AsyncCounting(fail=[RetryableError("503"), PermanentError("410")])
    guarded = guard(handler, ledger, retries=3, on_duplicate=lambda: None)
    assert asyncio.iscoroutinefunction(guarded.send)
    with pytest.raises(RetryableError):
        asyncio.run(guarded.send(Notification(id="n", channel="c")))
    ledger.flush()
    assert ledger.store.get("c", "n").state == WAITING
    # The retry comes back to another process (the delay tiers are balanced on their own): it sends.
    assert guard(Counting(), other, retries=3, on_duplicate=lambda: None).send(
        Notification(id="n", channel="c", attempt=2)) == "provider-n"
    with pytest.raises(PermanentError):
        asyncio.run(guarded.send(Notification(id="m", channel="c")))
    ledger.flush()
    assert ledger.store.get("c", "m").state == FAILED
    ledger.close()
    other.close()


def test_config_ledger_section_and_per_channel_off(tmp_path: Path) -> None:
    text = """
kafka: {bootstrap_servers: "localhost:9092"}
state_dir: state
ledger: {window: 3600, lease: 45}
channels:
  with: {topics: [a], handler: log}
  without: {topics: [b], handler: log, ledger: off}
"""
    config, findings = check_text(text, str(tmp_path / "n.yaml"), {})
    assert findings == []
    assert config.channels["without"].ledger is None
    ledger = config.channels["with"].ledger
    assert (ledger.type, ledger.window, ledger.lease) == ("sqlite", 3600.0, 45.0)
    assert ledger.path == str(tmp_path / "state" / "ledger.sqlite3")
    config, _ = check_text("kafka: {bootstrap_servers: x}\nchannels: {c: {topics: [a], handler: log}}\n",
                           str(tmp_path / "n.yaml"), {"STATE_DIRECTORY": str(tmp_path / "sd")})
    assert config.channels["c"].ledger.path == str(tmp_path / "sd" / "ledger.sqlite3")  # no section: on, by default
    _, findings = check_text(text.replace("lease: 45", "lease: 20"), str(tmp_path / "n.yaml"), {})
    assert [(f.key_path, f.message) for f in findings] == [
        ("channels.with.timeout", "timeout (30.0) must be less than the ledger's lease (20); raise ledger.lease, "
         "or set ledger: off on this channel")]
    _, findings = check_text(text.replace("{window: 3600, lease: 45}", "{type: postgres}"),
                             str(tmp_path / "n.yaml"), {})
    assert any("'dsn' is a required property" in f.message for f in findings)


def test_a_claim_of_a_dead_process_of_this_host_expires_at_once() -> None:
    times = {"now": 1000.0, "window": 100.0, "lease": 10.0}
    assert decide(Record(CLAIMED, "b", 999), owner="a", owner_gone=True, **times).action == SEND
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    assert owner_gone(f"{socket.gethostname()}:{dead_pid}:abcd1234")
    assert not owner_gone(f"{socket.gethostname()}:{os.getpid()}:abcd1234")
    assert not owner_gone(f"another-host:{dead_pid}:abcd1234")  # only the lease can tell


def test_a_ledger_file_another_process_holds_at_start_up_is_opened_once_it_is_free(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    # Two channel processes making one new file at once: a step may fail at once with
    # "database is locked" (SQLite's deadlock avoidance skips the busy handler). That
    # stopped the whole daemon (exit 78) in a CI run of the quickstart.
    from notifyd.ledger import sqlitestore

    real, failures = sqlitestore._open, [sqlite3.OperationalError("database is locked")] * 2

    def contended(path: str):
        if failures:
            raise failures.pop()
        return real(path)

    monkeypatch.setattr(sqlitestore, "_open", contended)
    store = sqlitestore.SqliteStore(str(tmp_path / "ledger.sqlite3"))
    assert not failures and store.get("c", "n") is None
    store.close()


def test_the_sqlite_writer_keeps_a_bigger_cache_and_checkpoints_less_often(tmp_path: Path) -> None:
    # Random ids (UUIDv4) touch pages all over the index: SQLite's 2 MiB cache and 1,000-page
    # checkpoints made each written row ~1.6x dearer (bench case 6, "ledger writes").
    store = SqliteStore(str(tmp_path / "ledger.sqlite3"))
    try:
        assert store._writer.execute("PRAGMA cache_size").fetchone()[0] == -16384
        assert store._writer.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10000
    finally:
        store.close()


def test_a_batch_binds_its_channel_owner_and_time_once_and_a_record_of_another_owner_keeps_its_own(
        tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "ledger.sqlite3"))
    mine, theirs = Record(SENT, "p1", 1.0, 2.0, "prov-a", 1, 0.5), Record(SENT, "p2", 1.5, 2.5, None, 1, 1.5)
    try:
        store.put(Batch("c", "p1", 3.0, {"a": mine, "b": theirs}), [])
        assert store.get("c", "a") == mine._replace(received_at=None)  # get reads no received_at
        assert store.get("c", "b") == theirs._replace(received_at=None)
        assert [record.received_at for _, record in store.trace("a")[0]] == [0.5]
        updated = store._reader.execute("SELECT id, updated_at FROM notifyd_ledger ORDER BY id").fetchall()
        assert updated == [("a", 3.0), ("b", 3.0)]
    finally:
        store.close()


@pytest.mark.parametrize("count", [1, 199, 200, 201, 450])
def test_a_batch_is_written_many_records_a_statement_and_reads_back_whole(tmp_path: Path, count: int) -> None:
    store = SqliteStore(str(tmp_path / "ledger.sqlite3"))
    sent = {f"s{i}": Record(SENT, "p1", 1.0, 2.0, f"prov-{i}", 1, 1.0) for i in range(count)}
    retried = {f"r{i}": Record(SENT, "p1", 1.0, 2.0, None, 2, 1.0) for i in range(count)}
    claimed = {f"k{i}": Record(CLAIMED, "p1", 1.0, None, None, 1, 1.0) for i in range(count)}
    events = [("c", f"r{i}", 1.5, "attempt_failed", 1, "503") for i in range(count)]
    try:
        store.put(Batch("c", "p1", 3.0, {**sent, **retried, **claimed}), events)
        ids = [*sent, *retried, *claimed]
        found = {key: record for start in range(0, len(ids), 500)
                 for key, record in store.get_many("c", ids[start:start + 500]).items()}
        assert len(found) == 3 * count
        assert found[f"s{count - 1}"].provider_id == f"prov-{count - 1}"
        assert found[f"r{count - 1}"].attempts == 2 and found[f"k{count - 1}"].state == CLAIMED
        assert len(store.trace(f"r{count - 1}")[1]) == 1
    finally:
        store.close()
