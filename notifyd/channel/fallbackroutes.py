"""The two routes of ``notifyd.channel.fallback``, and building a channel's failover from its settings.

``ChannelRoute`` produces the record to the fallback channel's first topic through the
channel's acknowledged hand-off; ``HandlerRoute`` tries a second handler, built in this
process, once. Both finish the job's offset only when the notification is safe: on the
broker's acknowledgement, or once the handler delivered it (else the DLQ takes it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

from notifyd.api import Handler, PermanentError, SkipNotification
from notifyd.channel.blocking import BlockingPool
from notifyd.channel.fallback import DeadLetter, Failover, Route
from notifyd.channel.handoff import HandOff
from notifyd.channel.job import Job, where
from notifyd.channel.producer import AckedProducer, Headers
from notifyd.config.settings import ChannelSettings, Config
from notifyd.handlers import resolve_handler
from notifyd.metrics import fallback_metrics
from notifyd.recipients.preparation import Preparer, make_preparer, needs_preparation
from notifyd.records.dlqheaders import FALLBACK_REASONS


class ChannelRoute:
    """Hands the original record (plus where it came from) to another channel's first topic."""

    def __init__(self, handoff: HandOff, *, target: str, on_finished: Callable[[Job], None],
                 dead_letter: DeadLetter, log: Any) -> None:
        self.target, self._handoff, self._on_finished = target, handoff, on_finished
        self._dead_letter, self._log = dead_letter, log

    def hand_off(self, job: Job, reason: str, added: Headers) -> None:
        """Produce ``job``'s record with ``added`` headers; finished once the broker has it."""
        message = job.message

        def too_large(error: str) -> None:  # refused forever: the DLQ's own omission rule takes it
            self._log.error("the fallback channel's topic refuses the record as too large; dead-lettering it",
                            **where(job), topic=self._handoff.topic, error=error)
            self._dead_letter(job, PermanentError(f"fallback topic refused the record: {error}"), added)

        self._handoff.send(job, value=message.value(), headers=list(message.headers() or ()) + added,
                           on_written=lambda: self._on_finished(job), on_too_large=too_large)


class HandlerRoute:
    """Tries a second handler once; delivered, the job is finished, else it is dead-lettered naming it."""

    def __init__(self, handler: Handler, *, target: str, channel: str, prepare: Preparer, pool: BlockingPool,
                 timeout: float, on_finished: Callable[[Job], None], dead_letter: DeadLetter, log: Any) -> None:
        self.target, self._handler, self._channel, self._prepare, self._pool = target, handler, channel, prepare, pool
        self._timeout, self._on_finished, self._dead_letter, self._log = timeout, on_finished, dead_letter, log
        self._attempts = fallback_metrics().fallback_attempts
        self._tasks: set[asyncio.Task[None]] = set()

    def hand_off(self, job: Job, reason: str, added: Headers) -> None:
        """Try the handler in a task of its own; the job settles when it is done."""
        task = asyncio.get_running_loop().create_task(self._try(job, added))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _try(self, job: Job, added: Headers) -> None:
        try:
            async with asyncio.timeout(self._timeout):
                await self._send(job)
        except SkipNotification:
            self._on_finished(job)
        except Exception as exc:  # TimeoutError included: the DLQ takes it, naming this provider
            self._attempts.labels(self._channel, self.target, "failure").inc()
            self._log.warning("the fallback handler failed too", **where(job), provider=self.target,
                              error_class=type(exc).__name__)
            self._dead_letter(job, exc, added, provider=self.target)
        else:
            self._attempts.labels(self._channel, self.target, "success").inc()
            self._log.info("delivered through the fallback", **where(job), provider=self.target)
            self._on_finished(job)

    async def _send(self, job: Job) -> None:
        notification = job.notification._with_attempt(job.attempts + 1)
        if not inspect.iscoroutinefunction(self._handler.send):
            await self._pool.run(lambda: self._handler.send(self._prepare(notification)))
            return
        if needs_preparation(notification):
            notification = await self._pool.run(self._prepare, notification)
        await self._handler.send(notification)


def build_inline_handler(config: Config, settings: ChannelSettings) -> tuple[Handler, Preparer] | None:
    """The fallback handler of ``settings`` and its preparer (addresses by its own recipient field); None if none."""
    fallback = settings.fallback
    if fallback is None or fallback.handler is None:
        return None
    handler = resolve_handler(fallback.handler)(**dict(fallback.options))
    as_fallback = dataclasses.replace(settings, handler=fallback.handler, options=fallback.options,
                                      recipient=fallback.recipient)
    return handler, make_preparer(dataclasses.replace(config, channels={settings.name: as_fallback}), settings.name)


def touch_fallback(settings: ChannelSettings) -> Any:
    """Create the channel's failover series at 0 (so ``rate()`` sees them before the first); the hand-off counter."""
    metrics, fallback = fallback_metrics(), settings.fallback
    for reason in FALLBACK_REASONS:
        metrics.handed_off.labels(settings.name, fallback.channel or fallback.handler, reason)
    if fallback.handler is not None:
        for result in ("success", "failure"):
            metrics.fallback_attempts.labels(settings.name, fallback.handler, result)
    return metrics.handed_off


def failover_factory(settings: ChannelSettings, *, producer: AckedProducer, inline: tuple[Handler, Preparer] | None,
                     pool: BlockingPool, log: Any) -> Callable[..., Failover] | None:
    """What ``Deliverer`` calls with its callbacks to build the channel's ``Failover``; None without a fallback."""
    fallback = settings.fallback
    if fallback is None:
        return None
    counter = touch_fallback(settings)

    def build(*, on_finished: Callable[[Job], None], is_current: Callable[[Job], bool],
              dead_letter: DeadLetter) -> Failover:
        route: Route
        if fallback.channel is not None:
            handoff = HandOff(producer, fallback.topic, what="fallback", log=log, is_current=is_current)
            route = ChannelRoute(handoff, target=fallback.channel, on_finished=on_finished,
                                 dead_letter=dead_letter, log=log)
        else:
            handler, prepare = inline
            route = HandlerRoute(handler, target=fallback.handler, channel=settings.name, prepare=prepare,
                                 pool=pool, timeout=settings.timeout, on_finished=on_finished,
                                 dead_letter=dead_letter, log=log)
        return Failover(route, channel=settings.name, dead_letter=dead_letter, counter=counter, log=log)

    return build
