"""ordering: strict without Kafka: whose turn it is, the SQLite queue, the channel side's park/hold/pop, the config."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import structlog

from notifyd.api import Notification
from notifyd.channel.job import Job
from notifyd.channel.strict import LOOK_FAILED_WAIT, ORDERING, StrictOrder
from notifyd.config.loading import check_text
from notifyd.ledger.order import GO, MAX_RECHECK, MIN_WAIT, STALE_AFTER, Head, Turn, key_text, turn, wait_until
from notifyd.ledger.orderqueue import MAX_DROPS, OrderQueues
from notifyd.ledger.sqlitestore import SqliteStore
from notifyd.ledger.store import Store
from notifyd.records.delayheaders import DelayState

LOG = structlog.get_logger("test")
NOW = 1_000_000.0


def test_only_the_head_or_a_key_without_a_queue_goes() -> None:
    assert turn(None, "a", now=NOW) is GO
    assert turn(Head("a", 1, NOW + 30), "a", now=NOW) is GO
    assert turn(Head("a", 1, NOW + 30), "b", now=NOW) == Turn(until=NOW + 30)
    assert turn(Head("a", 1, NOW + 30), "b", now=NOW, head_finished=True) == Turn(drop="finished")
    assert turn(Head("a", 1, NOW - STALE_AFTER - 1), "b", now=NOW) == Turn(drop="stale")
    # Stopped for longer than that: late from the restart on, not an orphan yet.
    assert turn(Head("a", 1, NOW - 2 * STALE_AFTER), "b", now=NOW, since=NOW - 5) == Turn(until=NOW + MAX_RECHECK)


def test_a_follower_looks_again_at_least_a_second_on_and_less_often_behind_a_late_head() -> None:
    assert wait_until(NOW + 0.2, NOW) == NOW + MIN_WAIT
    assert wait_until(NOW - 0.5, NOW) == NOW + MIN_WAIT
    assert wait_until(NOW - 20, NOW) == NOW + 20
    assert wait_until(NOW - 500, NOW) == NOW + MAX_RECHECK
    assert key_text(b"\x00user-1") == "00757365722d31"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def queues(tmp_path: Path, finished: set[str] | None = None, channel: str = "sms",
           store: Store | None = None) -> tuple[OrderQueues, Clock]:
    clock = Clock()
    done = finished if finished is not None else set()
    store = store or SqliteStore(str(tmp_path / "ledger.sqlite3"))
    return OrderQueues(store, channel=channel, finished=done.__contains__, log=LOG, clock=clock), clock


def test_the_sqlite_queue_keeps_parking_order_and_an_id_keeps_its_place(tmp_path: Path) -> None:
    check_parking_order(queues(tmp_path)[0])


def check_parking_order(q: OrderQueues) -> None:
    """The queue's SQL, whichever storage runs it (tests/integration/test_order_postgres.py: PostgreSQL)."""
    assert q.turn(b"k", "a") == (None, False)  # an empty queue: go, nothing queued
    q.park(b"k", "a", NOW + 5)
    assert q.turn(b"k", "a") == (None, True)  # the head goes
    assert q.turn(b"k", "b") == (NOW + 5, True)  # appended behind it
    assert q.turn(b"k", "c") == (NOW + 5, True)
    q.park(b"k", "a", NOW + 30)  # failed again: keeps its place, due moved
    assert q.turn(b"k", "c") == (NOW + 30, True)
    assert q.turn(b"other", "x") == (None, False)  # other keys never wait
    q.pop(b"k", "a")
    assert q.turn(b"k", "c")[1] and q.turn(b"k", "b") == (None, True)  # b was parked before c
    q.pop(b"k", "b")
    assert q.turn(b"k", "c") == (None, True)
    q.touch(b"k", "c", NOW + 99)
    q.touch(b"k", "nobody", NOW + 99)  # not queued: nothing
    assert q.turn(b"k", "d") == (NOW + 99, True)
    q.pop(b"k", "c")
    q.pop(b"k", "d")
    assert q.turn(b"k", "e") == (None, False)


def test_the_queue_holds_across_a_reopened_store_and_is_per_channel(tmp_path: Path) -> None:
    q, _ = queues(tmp_path)
    q.park(b"k", "a", NOW + 5)
    again, _ = queues(tmp_path)
    assert again.turn(b"k", "b") == (NOW + 5, True)
    other_channel, _ = queues(tmp_path, channel="email")
    assert other_channel.turn(b"k", "b") == (None, False)
    q.park(b"k", "b", NOW + 10)
    assert q._store.prune(NOW + 6) >= 1  # with the ledger's records: a's due is past the retention
    assert q.turn(b"k", "b") == (None, True)


def test_a_finished_or_stale_head_is_dropped_when_seen(tmp_path: Path) -> None:
    finished: set[str] = set()
    q, clock = queues(tmp_path, finished)
    q.park(b"k", "sent-already", NOW + 5)
    q.park(b"k", "orphan", NOW + 5)
    q.park(b"k", "waiting", NOW + 2 * STALE_AFTER)
    finished.add("sent-already")
    clock.now = NOW + 5 + STALE_AFTER + 1
    assert q.turn(b"k", "late") == (NOW + 2 * STALE_AFTER, True)  # both dropped; the live head is waited for
    q.pop(b"k", "waiting")
    assert q.turn(b"k", "late") == (None, True)


def test_a_run_of_dead_heads_longer_than_one_look_waits_for_the_next(tmp_path: Path) -> None:
    finished = {f"x{n}" for n in range(MAX_DROPS + 2)}
    q, _ = queues(tmp_path, finished)
    for notification_id in sorted(finished, key=lambda i: int(i[1:])):
        q.park(b"k", notification_id, NOW)
    assert q.turn(b"k", "new") == (NOW + MIN_WAIT, True)
    assert q.turn(b"k", "new") == (None, True)  # the next look clears the rest: it is the head


class Message:
    def __init__(self, key: bytes | None) -> None:
        self._key = key

    def key(self) -> bytes | None:
        return self._key

    def offset(self) -> int:
        return 7


def job(notification_id: str, key: bytes | None = b"k", *, delayed: bool = False) -> Job:
    state = DelayState(attempts=1, due=NOW, hop_due=NOW, source_topic="t", source_partition=0, source_offset=1,
                       first_failed_at=NOW, last_error="") if delayed else None
    return Job(Message(key), ("t", 0), ("t", 0), 0, notification=Notification(id=notification_id, channel="sms"),
               delayed=state)


def test_the_channel_side_parks_retries_holds_followers_and_pops_outcomes(tmp_path: Path) -> None:
    q, _ = queues(tmp_path)
    order = StrictOrder(q, log=LOG, clock=Clock())
    head, follower, other = job("a"), job("b"), job("c", b"other")
    assert order.turn(head) is None and not head.queued
    order.parked(head, NOW + 5)  # it failed: to the tiers
    assert head.queued and head.handed_over
    order.finished(head)  # the tier write's finish is no outcome: still the head
    assert order.turn(follower) == NOW + 5 and follower.queued
    order.held(follower, NOW + 5, ORDERING)
    order.finished(follower)
    assert order.turn(other) is None
    order.finished(other)  # never queued: no write
    back = job("a", delayed=True)
    assert order.turn(back) is None and back.queued
    order.finished(back)  # delivered: popped, the follower is the head
    assert q.turn(b"k", "b") == (None, True)


def test_an_expired_tier_record_pops_and_a_quiet_hours_hold_moves_the_due(tmp_path: Path) -> None:
    q, _ = queues(tmp_path)
    order = StrictOrder(q, log=LOG, clock=Clock())
    q.park(b"k", "a", NOW + 5)
    held = job("a", delayed=True)
    order.held(held, NOW + 600, "quiet_hours")
    assert q.turn(b"k", "b") == (NOW + 600, True)
    order.finished(job("a", delayed=True))  # dead-lettered as expired on arrival, before any look
    assert q.turn(b"k", "b") == (None, True)


def test_an_unreadable_queue_holds_the_notification_back_and_a_failed_write_is_only_logged(tmp_path: Path) -> None:
    q, _ = queues(tmp_path)
    clock = Clock()
    order = StrictOrder(q, log=LOG, clock=clock)
    q._store.close()  # every read and write now fails
    assert order.turn(job("a")) == NOW + LOOK_FAILED_WAIT
    broken = job("b")
    order.parked(broken, NOW + 5)
    order.finished(job("c", delayed=True))


class SlowServer(SqliteStore):
    """A storage on the network (like PostgreSQL) whose writes wait until the test lets them through."""

    blocking = True

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.let_through = threading.Event()

    def order_park(self, *args: Any) -> None:
        assert self.let_through.wait(10), "the test never let the write through"
        super().order_park(*args)


def test_a_storage_on_the_network_is_written_off_the_loop_and_a_later_look_sees_the_write(tmp_path: Path) -> None:
    store = SlowServer(str(tmp_path / "ledger.sqlite3"))
    q, clock = queues(tmp_path, store=store)
    order = StrictOrder(q, log=LOG, clock=clock)
    head, follower = job("a"), job("b")

    async def park_then_look() -> float | None:
        order.parked(head, NOW + 5)  # returns at once: the server has not taken the write yet
        assert q.turn(b"k", "a") == (None, False), "the loop waited for the park"
        looking = asyncio.ensure_future(order.look(follower))  # queued behind the park
        await asyncio.sleep(0)
        store.let_through.set()
        return await asyncio.wait_for(looking, 10)

    assert asyncio.run(park_then_look()) == NOW + 5
    order.close()
    assert q.turn(b"k", "b") == (NOW + 5, True)


def test_strict_ordering_needs_the_ledger(tmp_path: Path) -> None:
    text = ("kafka: {bootstrap_servers: 'localhost:9092'}\nchannels:\n  sms:\n    topics: [t]\n    handler: log\n"
            "    ordering: strict\n")
    loaded, findings = check_text(text, str(tmp_path / "n.yaml"), {})
    assert findings == [] and loaded.channels["sms"].ordering == "strict"
    _, findings = check_text(text + "    ledger: off\n", str(tmp_path / "n.yaml"), {})
    assert [(f.key_path, f.message) for f in findings] == [(
        "channels.sms.ordering",
        "ordering: strict needs the delivery ledger (its per-key queues live there); remove ledger: off")]
    _, findings = check_text(text.replace("strict", "sorted"), str(tmp_path / "n.yaml"), {})
    assert [f.key_path for f in findings] == ["channels.sms.ordering"]
    loaded, _ = check_text(text.replace("    ordering: strict\n", ""), str(tmp_path / "n.yaml"), {})
    assert loaded.channels["sms"].ordering == "default"
