"""The gate a delivery passes before each attempt: waits for the rate, a throttling pause or the circuit.

Asyncio edge of ``FlowPolicy``. The common case costs one synchronous call
(``try_pass``); only an attempt held back awaits ``wait_turn``. Each outcome goes to
``observe``, which says whether the failure is the provider's (the circuit is open, or
the provider throttled) rather than the notification's: such an attempt is not
counted against the notification's retries, and it waits at the gate again, unless the
channel has a fallback (``divertible``): then, while the circuit is open, the job leaves
with a ``CircuitOpen`` outcome for ``notifyd.channel.fallback`` instead of waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from notifyd.api import PermanentError, SkipNotification
from notifyd.channel.flow.breaker import CLOSED, FAILURE, HALF_OPEN, NEUTRAL, OPEN, SUCCESS
from notifyd.channel.flow.policy import GO, PROBE, FlowPolicy
from notifyd.channel.flow.recipients import RecipientLimiter, recipient_of
from notifyd.ledger.guard import ClaimHeld
from notifyd.recipients.hold import HeldBack

STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
REASON_RECIPIENT_LIMIT = "recipient_limit"
REVOKED = object()  # FlowGate.run: the job's partition was revoked while it waited; not attempted
_DIVERT = object()  # FlowGate.wait_turn: the job goes to the channel's fallback instead
METRICS_INTERVAL = 1.0


class CircuitOpen(Exception):
    """``FlowGate.run``'s outcome for a job that goes to the channel's fallback while the circuit is open."""


def is_throttling(outcome: BaseException | None) -> bool:
    """Whether the provider asked to slow down (a handler marks such errors ``throttled``)."""
    return outcome is not None and getattr(outcome, "throttled", False) is True


def verdict_of(outcome: BaseException | None) -> str:
    """SUCCESS, FAILURE (transient: worth a retry) or NEUTRAL (the notification's own fault, or a skip)."""
    if outcome is None:
        return SUCCESS
    if isinstance(outcome, (PermanentError, SkipNotification, HeldBack, ClaimHeld)):
        return NEUTRAL
    return FAILURE


class FlowGate:
    """One channel process's gate; every method runs on the channel's event loop."""

    def __init__(self, policy: FlowPolicy, *, channel: str, metrics: Any, log: Any,
                 clock: Callable[[], float] = time.monotonic, limiter: RecipientLimiter | None = None,
                 limited: Any = None, defer_capped: bool = False) -> None:
        self._policy, self._log, self._clock = policy, log, clock
        self._limiter, self._limited = limiter, limited  # limited: the skipped{reason=recipient_limit} child
        self._defer_capped = defer_capped  # recipient_limit's action: defer, else drop
        self._state = metrics.circuit_state.labels(channel)
        self._rate = metrics.rate_limit.labels(channel)
        self._throttled = metrics.throttled.labels(channel)
        self._changed = asyncio.Event()
        # Set on a channel with a fallback: whether a job may go there while the circuit is open.
        self.divertible: Callable[[Any], bool] | None = None
        self._opened_at: float | None = None
        self._next_metrics = 0.0
        self._tab = 0  # inline attempts admitted ahead, with the batch being delivered (open_tab)
        self._tab_successes = 0  # of those, succeeded and not yet counted by the breaker
        self._report(clock())

    async def run(self, job: Any, attempt: Callable[[Any], Awaitable[BaseException | None]], *,
                  waiting: set[Any], is_current: Callable[[Any], bool]) -> BaseException | None | object:
        """``attempt(job)`` once the gate lets it through, again while its failure is the provider's.

        While it waits the job leaves ``waiting`` (the deliveries a rebalance or shutdown
        waits for), as a job waiting for a retry does; ``REVOKED`` if its partition went
        meanwhile. A repeated attempt does not count against the job's retries.
        """
        if self._limiter is not None and (capped := self._capped(job)) is not None:
            return capped
        while True:
            probe: bool | object = False
            if not self.try_pass():
                waiting.discard(job)
                probe = await self.wait_turn(job)
                if not is_current(job):
                    self.abandon(probe=probe is True)
                    return REVOKED
                waiting.add(job)
                if probe is _DIVERT:
                    return CircuitOpen("the channel's circuit is open")
            outcome = await attempt(job)
            if not self.observe(outcome, probe=probe is True):
                return outcome
            job.attempts -= 1
            if self._diverts(job, self._clock()):
                return CircuitOpen(f"the channel's circuit is open (last attempt: {type(outcome).__name__})")

    def run_inline(self, job: Any, attempt: Callable[[Any], BaseException | None], *,
                   not_now: object) -> BaseException | None | object:
        """``attempt(job)`` on the spot if the gate lets it through; ``not_now`` if it must wait or go again.

        For handlers called on the event loop: an attempt that cannot start at once, or
        whose failure was the provider's, goes to ``run`` in a task of its own.
        """
        if self._tab:  # admitted with its batch: a success costs a count
            self._tab -= 1
            outcome = attempt(job)
            if outcome is None:
                self._tab_successes += 1
                return None
            self.close_tab()  # the successes before it are counted first; what it changes holds the rest
        else:
            if self._limiter is not None and (capped := self._capped(job)) is not None:
                return capped
            if not self.try_pass():
                return not_now
            outcome = attempt(job)
        if not self.observe(outcome):
            return outcome
        job.attempts -= 1
        return not_now

    def open_tab(self, count: int) -> None:
        """Admit up to ``count`` inline attempts at once, for a batch delivered on the spot; ``close_tab`` after it.

        Passing the gate attempt by attempt (a clock reading, the policy's checks, the
        breaker's count) cost ~0.7 us an attempt in process, a seventh of a no-op delivery.
        A batch that nothing holds back pays it once. The tokens are taken now, as attempts
        passing one by one within the same moment would take them. A recipient limit
        is checked notification by notification, so its channel keeps doing that.
        """
        if self._limiter is None:
            self._tab = self._policy.admit_up_to(count, self._clock())

    def close_tab(self) -> None:
        """End the batch's tab: give back the tokens it did not use, count its successes."""
        now = self._clock()
        self._policy.give_back(self._tab)
        self._tab = 0
        if self._tab_successes:
            if self._policy.breaker is not None:
                self._policy.breaker.record_successes(self._tab_successes, now)
            self._tab_successes = 0
        if now >= self._next_metrics:
            self._report(now)

    def _capped(self, job: Any) -> SkipNotification | HeldBack | None:
        """The skip (or hold) of a notification over its recipient's ``recipient_limit``; None if within it."""
        notification = job.notification
        recipient = recipient_of(notification)
        if recipient is None or self._limiter.admit(recipient, notification.id):
            return None
        if self._defer_capped:  # the delay topics bring it back once the recipient's window has room
            return HeldBack(REASON_RECIPIENT_LIMIT, time.time() + self._limiter.free_in(recipient), attempted=False)
        self._limited.inc()
        self._log.debug("recipient limit reached; notification skipped", notification_id=notification.id)
        return SkipNotification(REASON_RECIPIENT_LIMIT, "over the channel's recipient_limit")

    def try_pass(self) -> bool:
        """Whether an attempt may start right now (its token taken); if not, await ``wait_turn``."""
        return self._policy.admit_now(self._clock())

    async def wait_turn(self, job: Any = None) -> bool | object:
        """Wait until an attempt may start; True if it is the circuit's probe.

        ``_DIVERT`` instead if the circuit is open and ``job`` may go to the channel's
        fallback (``divertible``) rather than wait for the provider.
        """
        while True:
            now = self._clock()
            if job is not None and self._diverts(job, now):
                return _DIVERT
            step = self._policy.next_step(now)
            if step.kind == PROBE:
                self._log.info("circuit half-open: probing the provider with one notification")
                self._report(now)
                return True
            if step.kind == GO:
                if step.delay > 0.0:
                    await asyncio.sleep(step.delay)
                return False
            await self._sleep_unless_changed(step.delay)

    def _diverts(self, job: Any, now: float) -> bool:
        """Whether ``job`` goes to the fallback now: the circuit is open and no probe is due (it would be the probe)."""
        breaker = self._policy.breaker
        if self.divertible is None or breaker is None or breaker.state == CLOSED:
            return False
        if breaker.state == OPEN and now >= breaker.next_probe:
            return False
        return self.divertible(job)

    def abandon(self, *, probe: bool) -> None:
        """An admitted attempt that will not run (its partition was revoked): give the probe back."""
        breaker = self._policy.breaker
        if probe and breaker is not None and breaker.state == HALF_OPEN:
            breaker.state, breaker.next_probe = OPEN, self._clock()
            self._wake()

    def observe(self, outcome: BaseException | None, *, probe: bool = False) -> bool:
        """Count an attempt's outcome; True if the failure is the provider's, not the notification's."""
        now = self._clock()
        if outcome is not None and is_throttling(outcome):
            self._on_throttling(outcome, now)
            self._record(SUCCESS if probe else NEUTRAL, now, probe=probe)  # the provider did answer
            return True
        verdict = SUCCESS if outcome is None else verdict_of(outcome)
        breaker = self._policy.breaker
        if breaker is not None:
            if breaker.state == CLOSED and verdict == SUCCESS:  # the hot path: no state to compare
                breaker.record(SUCCESS, now, probe=False)
            else:
                self._record(verdict, now, probe=probe)
        if now >= self._next_metrics:
            self._report(now)
        return verdict == FAILURE and breaker is not None and breaker.state != CLOSED

    def set_share(self, share: float) -> None:
        """This member's share of the channel's partitions, after a rebalance."""
        now = self._clock()
        if share != self._policy.share:
            self._policy.set_share(share, now)
            self._log.info("rate share updated", share=round(share, 4), rate=_rounded(self._policy.rate(now)))
            self._report(now)
            self._wake()

    def _record(self, verdict: str, now: float, *, probe: bool) -> None:
        breaker = self._policy.breaker
        if breaker is None:
            return
        before = breaker.state
        breaker.record(verdict, now, probe=probe)
        if breaker.state != before:
            self._circuit_changed(before, breaker.state, now)

    def _circuit_changed(self, before: str, after: str, now: float) -> None:
        if after == CLOSED:
            down = now - self._opened_at if self._opened_at is not None else 0.0
            self._opened_at = None
            self._log.warning("circuit closed: the provider answers again; consuming resumes", open_for=round(down, 3))
            self._wake()
        elif before == CLOSED:
            self._opened_at = now
            if self.divertible is not None:
                self._wake()  # the deliveries waiting for a token go to the fallback instead
            self._log.warning("circuit opened: the provider fails most attempts; consuming stops, probing every "
                              f"{self._policy.breaker.policy.probe_interval:g} s")
        else:
            self._log.info("circuit stays open: the probe failed")
        self._report(now)

    def _on_throttling(self, outcome: BaseException, now: float) -> None:
        self._throttled.inc()
        retry_after = getattr(outcome, "retry_after", None)
        if self._policy.aimd.throttled(now, retry_after):
            self._log.warning("provider throttling: the channel slows down",
                              pause=round(self._policy.aimd.pause_left(now), 3), rate=_rounded(self._policy.rate(now)))
        self._report(now)

    def _report(self, now: float) -> None:
        self._next_metrics = now + METRICS_INTERVAL
        breaker = self._policy.breaker
        self._state.set(STATE_VALUES[breaker.state] if breaker is not None else 0)
        rate = self._policy.rate(now)
        if rate is not None:
            self._rate.set(rate)

    async def _sleep_unless_changed(self, delay: float) -> None:
        changed = self._changed
        try:
            async with asyncio.timeout(delay):
                await changed.wait()
        except TimeoutError:
            pass

    def _wake(self) -> None:
        """Waiters ask again now (the circuit closed, the rate changed): set the event, start a new one."""
        self._changed.set()
        self._changed = asyncio.Event()


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 3)
