"""The channel's admission rule: breaker, throttling pause and token bucket, in that order.

Pure: a clock reading comes in, a decision comes out. ``admit_now`` answers the common
case (nothing holds the channel back) without borrowing; ``next_step`` tells a waiting
attempt what to do next.
"""

from __future__ import annotations

from typing import NamedTuple

from notifyd.channel.flow.aimd import Aimd
from notifyd.channel.flow.breaker import CLOSED, CircuitBreaker
from notifyd.channel.flow.bucket import TokenBucket
from notifyd.config.settings import BreakerPolicy, RateLimit

GO, PROBE, WAIT = "go", "probe", "wait"
# Seconds ahead an attempt may borrow its token: a rate that recovers meanwhile then
# helps the attempts still waiting, instead of being promised away at the slow rate.
MAX_BORROW = 0.5


class Step(NamedTuple):
    """What a waiting attempt does: GO after ``delay`` (its token is taken), PROBE now, or WAIT and ask again."""

    kind: str
    delay: float


class FlowPolicy:
    """Rate limit (optional), AIMD throttling response and circuit breaker (optional) of one process."""

    def __init__(self, rate_limit: RateLimit | None, breaker: BreakerPolicy | None, *, now: float) -> None:
        self.limit = rate_limit.per_second if rate_limit else None
        self._burst = float(rate_limit.burst or max(1.0, rate_limit.per_second)) if rate_limit else 1.0
        self.share = 1.0
        self.aimd = Aimd()
        self.breaker = CircuitBreaker(breaker) if breaker else None
        self.bucket = TokenBucket(self.limit, self._burst, now=now) if self.limit else None
        self._factor = 1.0

    def admit_now(self, now: float) -> bool:
        """Whether an attempt may start at once; takes its token if so (the hot path: kept lean)."""
        if self._held_back(now):
            return False
        return self.bucket is None or self.bucket.take(now)

    def admit_up_to(self, count: int, now: float) -> int:
        """How many of the next ``count`` attempts may start at once; their tokens are taken."""
        if self._held_back(now):
            return 0
        return count if self.bucket is None else self.bucket.take_up_to(count, now)

    def give_back(self, count: int) -> None:
        """Tokens taken by ``admit_up_to`` for attempts that did not start."""
        if self.bucket is not None and count:
            self.bucket.give_back(count)

    def _held_back(self, now: float) -> bool:
        """Whether the circuit or a throttling pause holds every attempt back; follows the AIMD factor if not."""
        if (self.breaker is not None and self.breaker.state != CLOSED) or now < self.aimd.paused_until:
            return True
        if self.bucket is not None and (self._factor != 1.0 or self.aimd.slowed):
            self._tune(now)
        return False

    def next_step(self, now: float) -> Step:
        """The next move of an attempt that could not start at once."""
        if self.breaker is not None and self.breaker.state != CLOSED:
            wait = self.breaker.admit(now)
            return Step(PROBE, 0.0) if wait == 0.0 else Step(WAIT, wait)
        pause = self.aimd.pause_left(now)
        if pause > 0.0:
            return Step(WAIT, pause)
        if self.bucket is None:
            return Step(GO, 0.0)
        self._tune(now)
        wait = self.bucket.wait(now)
        if wait > MAX_BORROW:  # far off (a slowed rate): ask again later rather than hold a token that long
            return Step(WAIT, MAX_BORROW)
        return Step(GO, self.bucket.reserve(now))

    def set_share(self, share: float, now: float) -> None:
        """This member's share of the channel's rate (its share of the partitions)."""
        self.share = share
        self._retune(now)

    def rate(self, now: float) -> float | None:
        """The attempts per second this process allows now; None when unlimited."""
        if self.limit is None:
            return None
        return self.limit * self.share * self.aimd.factor(now)

    def _tune(self, now: float) -> None:
        """Follow the AIMD factor as it recovers (cheap when it stays at 1)."""
        factor = self.aimd.factor(now)
        if factor != self._factor:
            self._factor = factor
            self._retune(now)

    def _retune(self, now: float) -> None:
        if self.bucket is None:
            return
        rate = max(self.limit * self.share * self._factor, 1e-6)
        burst = max(1.0, self._burst * self.share)
        self.bucket.set_rate(rate, burst, now=now)
