"""Consumer calls the poll loop and the delay reader share: taking fetched messages, committing, closing."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Executor, Future
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

BATCH_SIZE = 500
POLL_TIMEOUT = 0.1
# Connection failures librdkafka logs itself (a FAIL line, through the ``logger`` setting);
# error_cb gets each one again, which doubled every reconnect attempt of an outage.
LOGGED_BY_LIBRDKAFKA = frozenset({KafkaError._TRANSPORT, KafkaError._RESOLVE})
# A close takes well under a second: a last revocation and a LeaveGroup. The supervisor
# allows as long (STOP_GRACE) past the drain before it kills a stopping process anyway.
CLOSE_TIMEOUT = 5.0
LEAVE_TIMEOUT = 3.0  # of CLOSE_TIMEOUT: the revocation an unsubscribe starts; the close itself gets the rest


def fetch_ready(consumer: Consumer, size: int, timeout: float) -> list[Message]:
    """Up to ``size`` messages already fetched; else those that arrive with the first one within ``timeout``.

    ``consume(size, timeout)`` waits for ``size`` messages or the timeout, which at a
    moderate rate holds every message back for up to the whole timeout. The first
    message wakes the caller while the rest of its fetch response is being queued;
    taking those too saves a round trip through the event loop for each of them.
    """
    messages = consumer.consume(size, 0)
    if messages:
        return messages
    first = consumer.consume(1, timeout)
    return first + consumer.consume(size - 1, 0) if first and size > 1 else first


def commit_offsets(consumer: Consumer, offsets: dict[tuple[str, int], int], log: Any) -> None:
    """Commit ``offsets`` synchronously; a failure is logged (the work is redelivered), never raised."""
    try:
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError._NO_OFFSET:
            log.warning("commit failed; uncommitted work will be redelivered", error=str(exc))


async def close_consumer(consumer: Consumer, *, after: Executor | None, log: Any,
                         timeout: float = CLOSE_TIMEOUT) -> None:
    """Leave the group and close ``consumer``; after ``timeout``, give up waiting and say so.

    librdkafka's close waits for the group: a last revocation, the offsets, a LeaveGroup.
    Offsets are committed before this, so a close given up only leaves the partitions to
    the session timeout. The close runs on a daemon thread of its own, not an executor's:
    those are joined at interpreter exit, and a hung one would hold the process for ever.
    It still starts only once the calls queued on ``after`` (the consumer's I/O executor)
    have run, in order as before. A hang inside a rebalance callback holds the GIL, which
    no timeout here can undo: callers close only once the first join is over
    (``Rebalancer.joining``), and the group is left before the close (``leave_group``).
    """
    closed: Future[None] = Future()
    threading.Thread(target=_close_into, args=(consumer, closed, after), name="notifyd-close", daemon=True).start()
    try:
        await asyncio.wait_for(asyncio.wrap_future(closed), timeout)
    except TimeoutError:
        log.warning("the consumer did not close in time; its partitions move after the session timeout",
                    timeout=timeout)


def _close_into(consumer: Consumer, closed: Future[None], after: Executor | None) -> None:
    if not closed.set_running_or_notify_cancel():
        return
    try:
        if after is not None:
            after.submit(lambda: None).result()
        leave_group(consumer, LEAVE_TIMEOUT)
        consumer.close()
    except Exception as exc:  # handed to the waiting loop, which raises it
        closed.set_exception(exc)
    else:
        closed.set_result(None)


def leave_group(consumer: Consumer, timeout: float) -> None:
    """Unsubscribe, and serve the group's callbacks until nothing is assigned (or ``timeout``), before a close.

    A rebalance callback served inside ``close()`` has hung for good: confluent-kafka calls
    librdkafka's assign there with the GIL held (librdkafka #4527, #4884), and every thread
    of the process stopped with it. Served by ``consume``, which lets the GIL go, the last
    revocation, and an assignment still on its way, cannot do that; the close then has
    nothing left to revoke. This is the workaround librdkafka's maintainers give. Messages
    fetched meanwhile are dropped: their offsets are never stored, so they are read again.
    """
    consumer.unsubscribe()
    deadline = time.monotonic() + timeout
    while consumer.assignment() and time.monotonic() < deadline:
        consumer.consume(1, POLL_TIMEOUT)
