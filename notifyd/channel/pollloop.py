"""The channel process's consumer: poll, dispatch, store offsets, pause, rebalance, drain.

An asyncio loop runs in the main thread; every consumer call that can wait runs on one
I/O thread, so the loop keeps delivering while ``consume`` waits, and the rebalance
callbacks (which librdkafka runs inside ``consume`` and ``close``) can wait for the
loop to finish the revoked partitions' work before their offsets are committed. Only
when nothing is running does the loop take already-fetched messages itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from notifyd.channel import fetching, lifecycle
from notifyd.channel.delayreader import DelayReader
from notifyd.channel.delivery import Deliverer
from notifyd.channel.fetching import BATCH_SIZE, LOGGED_BY_LIBRDKAFKA, POLL_TIMEOUT, commit_offsets, fetch_ready
from notifyd.channel.health import REASON_MEMORY_LIMIT, ProcessChecks
from notifyd.channel.job import Job, consumed, finish_all
from notifyd.channel.lag import LagGauge, starts_at_end
from notifyd.channel.offsets import OffsetTracker
from notifyd.channel.outage import BrokerOutage
from notifyd.channel.rebalance import Rebalancer
from notifyd.exitcodes import ExitCode

PROBE_INTERVAL = 5.0  # while every broker is down: how often a metadata request checks
PAUSE_AFTER = 1.0  # seconds the read-ahead buffer stays full before the partitions are paused


class StopRequest:
    """A flag a signal handler may set: a plain attribute write, no locks."""

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True


class PollLoop:
    """Consumes one channel's topics and feeds a ``Deliverer`` until asked to stop."""

    def __init__(self, *, consumer_config: dict[str, Any], topics: tuple[str, ...], deliverer_factory:
                 Callable[..., Deliverer], producer: Any, status: lifecycle.StatusReporter, stop: StopRequest,
                 checks: ProcessChecks, shutdown_timeout: float, concurrency: int, metrics: Any, channel: str,
                 log: Any, delay_topics: tuple[str, ...] = (), delay_consumer_config: dict[str, Any] | None = None,
                 rebalance_listener: Any = None) -> None:
        self._topics, self._producer, self._status, self._stop, self._checks = topics, producer, status, stop, checks
        self._shutdown_timeout, self._log, self._channel = shutdown_timeout, log, channel
        self._buffer_limit = concurrency + BATCH_SIZE
        self._min_batch = max(1, self._buffer_limit // 4)
        self._full_since: float | None = None
        self._tracker = OffsetTracker()
        self._deliverer = deliverer_factory(on_finished=self._finished, on_finished_all=self._finished_all,
                                            is_current=self._is_current)
        self._consumer = Consumer({**consumer_config, "error_cb": self._on_error})
        self._io = ThreadPoolExecutor(1, thread_name_prefix="notifyd-poll")
        self._delays = DelayReader(
            consumer_config=delay_consumer_config or consumer_config, topics=delay_topics, tracker=self._tracker,
            deliverer=self._deliverer, producer=producer, room=self._delay_room, busy=self._busy,
            revoke_timeout=shutdown_timeout, metrics=metrics, channel=channel, log=log) if delay_topics else None
        self._received = metrics.received.labels(channel)
        self._inflight = metrics.inflight.labels(channel)
        self._lag = LagGauge(metrics.consumer_lag, channel, from_end=starts_at_end(consumer_config))
        self._paused = False
        self._outage = BrokerOutage(status=status, log=log)
        self._client_log = consumer_config.get("logger")  # librdkafka's lines, held back during an outage
        self._rebalancer = Rebalancer(tracker=self._tracker, commit=self._commit_now, busy=self._busy,
                                      serve_dlq=producer.poll, revoke_timeout=shutdown_timeout, log=log,
                                      assigned=self._assigned, released=self._lag.removed, topics=topics,
                                      listener=rebalance_listener)  # flow control's share of the rate
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_deadline = 0.0  # none yet: a stop that skipped the drain waits for nothing

    async def run(self) -> int:
        """Poll until stopped, then drain and leave the group; returns the exit code."""
        self._loop = self._rebalancer.loop = asyncio.get_running_loop()
        self._room = asyncio.Event()
        rebalancer = self._rebalancer
        self._consumer.subscribe(list(self._topics), on_assign=rebalancer.on_assign, on_revoke=rebalancer.on_revoke,
                                 on_lost=rebalancer.on_lost)
        if self._delays is not None:
            self._delays.start()
        with self._outage.filtering(self._client_log):
            try:
                exit_code = await self._poll_until_stopped()
                if self._delays is not None:
                    self._delays.stop()  # no new delayed work while draining
                await self._drain()
            finally:
                if self._delays is not None:  # once the deliveries have drained; no join wait if none can come
                    await self._delays.finish(until=0.0 if self._outage.active else self._drain_deadline)
            await fetching.close_consumer(self._consumer, after=self._io, log=self._log)
        self._io.shutdown(wait=False)
        return exit_code

    async def _poll_until_stopped(self) -> int:
        await self._poll_once()
        self._status.send(lifecycle.EVENT_READY)
        self._log.info("consuming", topics=list(self._topics))
        next_probe = time.monotonic() + PROBE_INTERVAL
        while not self._stop.requested:
            await self._poll_once()
            self._housekeeping()
            if self._lag.due():  # owned as the rebalancer sees it: a revocation in progress counts as gone
                await self._lag.update(self._consumer, self._tracker, list(self._rebalancer.owned), self._call)
            if time.monotonic() >= next_probe:
                next_probe = time.monotonic() + PROBE_INTERVAL
                await self._outage.probe(lambda: self._call(self._consumer.list_topics, None, 0.5))
            reason = self._checks.stop_reason()
            if reason is not None:
                self._log.warning("stopping", reason=reason)
                return ExitCode.RECYCLE if reason == REASON_MEMORY_LIMIT else ExitCode.OK
        return ExitCode.OK

    async def _poll_once(self) -> None:
        """Fetch a batch if the read-ahead buffer has room; otherwise wait for room.

        A full buffer first just stops fetching: pausing would make librdkafka drop its
        prefetched messages, and a resume then costs a fetch round trip per batch. Only
        when the buffer stays full (slow handlers) are the partitions paused, so that
        consume() keeps serving the group's callbacks.
        """
        room = self._room_left()
        full_too_long = self._full_too_long(room)  # always called: it must see room come back
        if room >= self._min_batch or full_too_long:
            # Paused until a whole batch fits again, so a slow handler does not flip
            # pause/resume (each resume a fetch round trip) at every delivery.
            await self._set_paused(full_too_long)
            self._accept(await self._fetch_batch(max(1, min(BATCH_SIZE, room))))
            await asyncio.sleep(0)  # a turn for the rest of the loop (the batch's tasks, metrics flushes)
            return
        self._room.clear()
        try:
            await asyncio.wait_for(self._room.wait(), POLL_TIMEOUT)
        except TimeoutError:
            pass

    def _full_too_long(self, room: int) -> bool:
        now = time.monotonic()
        if room >= self._min_batch:
            self._full_since = None
        elif self._full_since is None:
            self._full_since = now
        return self._full_since is not None and now - self._full_since >= PAUSE_AFTER

    def _accept(self, messages: list[Message]) -> None:
        jobs = consumed(messages, self._tracker, on_error=self._consumer_error)
        if jobs:
            self._received.inc(len(jobs))
            self._deliverer.submit(jobs)

    def _consumer_error(self, message: Message) -> None:
        error, topic = message.error(), message.topic()
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART and topic:
            self._rebalancer.topic_missing(topic)
        if error.fatal():
            raise KafkaException(error)
        self._log.warning("consumer error", error=str(error))

    def _housekeeping(self) -> None:
        if self._delays is not None:
            self._delays.raise_if_crashed()
        self._producer.poll()  # DLQ and delay-topic acknowledgements
        self._store(self._tracker.take_moved())
        self._inflight.set(self._deliverer.running)
        self._status.heartbeat(inflight=self._deliverer.running)

    def _store(self, offsets: dict[tuple[str, int], int]) -> None:
        if self._delays is not None:
            delayed = {p: o for p, o in offsets.items() if p[0] in self._delays.topics}
            if delayed:
                self._delays.store(delayed)
                offsets = {p: o for p, o in offsets.items() if p not in delayed}
        if not offsets:
            return
        try:
            self._consumer.store_offsets(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()])
        except KafkaException as exc:  # a partition revoked meanwhile; its new owner redelivers
            self._log.info("offsets not stored", error=str(exc))

    async def _set_paused(self, pause: bool) -> None:
        if pause == self._paused and not (pause and self._rebalancer.assignment_changed):
            return
        self._paused, self._rebalancer.assignment_changed = pause, False
        assignment = self._consumer.assignment()
        if assignment:
            await self._call(self._consumer.pause if pause else self._consumer.resume, assignment)
            if not self._stop.requested:
                self._log.info("consumption paused: deliveries are behind" if pause else "consumption resumed",
                               unfinished=self._tracker.unfinished())

    async def _drain(self) -> None:
        self._status.send(lifecycle.EVENT_DRAINING)
        deadline = self._drain_deadline = time.monotonic() + self._shutdown_timeout
        self._log.info("draining", unfinished=self._tracker.unfinished())
        # A stop during the group's first join waits for its assignment too (Rebalancer.joining),
        # unless every broker is down: then none can come.
        while time.monotonic() < deadline and (
                self._busy(None) or (self._rebalancer.joining and not self._outage.active)):
            await self._set_paused(True)
            await self._serve_callbacks()
            self._housekeeping()
        left = self._tracker.unfinished()
        if self._busy(None):
            self._log.warning("shutdown timeout passed with deliveries running; they will be redelivered",
                              unfinished=left)
        elif left:
            self._log.info("stopping with work waiting for retries; it will be redelivered", unfinished=left)
        await self._commit(self._tracker.committable(self._owned()))
        self._rebalancer.revoke_timeout = 0.0  # leaving the group revokes: nothing is left worth waiting for

    async def _serve_callbacks(self) -> None:
        """One ``consume`` for the group's callbacks; a message it returns is dropped (never stored: read again)."""
        for message in await self._call(self._consumer.consume, 1, POLL_TIMEOUT):
            if message.error() is not None:  # a missing topic ends a first join that waits for it
                self._consumer_error(message)

    def _busy(self, partitions: set[tuple[str, int]] | None) -> bool:
        """Deliveries running or DLQ and delay writes unacknowledged (those of any partition: cheap and rare)."""
        return self._deliverer.busy(partitions) or self._producer.pending() > 0

    def _owned(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self._consumer.assignment()]

    async def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if offsets:
            await self._call(self._commit_now, offsets)

    def _commit_now(self, offsets: dict[tuple[str, int], int]) -> None:
        commit_offsets(self._consumer, offsets, self._log)

    def _delay_room(self) -> int:
        """The delay reader's room: the buffer's, plus a batch of its own.

        Without it a backlog on the source topics kept the buffer full, and retries that
        were due waited behind the whole backlog (5.4 s late on average in bench case 8).
        """
        return self._room_left() + BATCH_SIZE

    def _room_left(self) -> int:
        """How many more messages the read-ahead buffer takes (source and delay topics together)."""
        return self._buffer_limit - self._tracker.unfinished()

    def _on_error(self, error: KafkaError) -> None:
        code = error.code()
        if code == KafkaError._ALL_BROKERS_DOWN:
            self._outage.begin(str(error))
        elif code not in LOGGED_BY_LIBRDKAFKA:
            self._log.warning("kafka client error", error=str(error))

    def _assigned(self, _partitions: list[tuple[str, int]]) -> None:
        self._lag.assigned()
        owned = len(self._rebalancer.owned)
        missing = sorted(self._rebalancer.missing_topics) if not owned else []
        self._status.send(lifecycle.EVENT_ASSIGNED, partitions=owned, missing_topics=missing)

    def _finished(self, job: Job) -> None:
        self._tracker.finish(job.partition, job.message.offset(), job.generation)
        self._room.set()

    def _finished_all(self, jobs: list[Job]) -> None:
        finish_all(jobs, self._tracker)
        self._room.set()

    def _is_current(self, job: Job) -> bool:
        return self._tracker.generation(job.partition) == job.generation

    async def _fetch_batch(self, size: int) -> list[Message]:
        """Up to ``size`` messages, taken on the loop itself when that is safe and they are there.

        A hop to the I/O thread and back costs ~10% of a no-op channel's throughput. With
        nothing running, a rebalance callback that ``consume`` serves here has no work to
        wait for (``Rebalancer`` then releases at once), and ``consume(size, 0)`` returns
        without waiting; when it finds nothing, the wait happens on the I/O thread.
        """
        if not self._busy(None):
            messages = self._consumer.consume(size, 0)
            if messages:
                return messages
        return await self._call(self._fetch, size)

    def _fetch(self, size: int) -> list[Message]:
        return fetch_ready(self._consumer, size, POLL_TIMEOUT)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await self._loop.run_in_executor(self._io, fn, *args)
