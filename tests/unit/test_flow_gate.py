"""The flow gate on a real event loop: held attempts, forgiven failures, the probe, a revoked job."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from notifyd.api import PermanentError, RetryableError, SkipNotification
from notifyd.channel.flow.gate import REVOKED, FlowGate
from notifyd.channel.flow.policy import FlowPolicy
from notifyd.channel.flow.recipients import RecipientLimiter, recipient_of
from notifyd.config.settings import BreakerPolicy, RateLimit
from notifyd.recipients.hold import HeldBack


def make_gate(rate_limit: RateLimit | None = None, breaker: BreakerPolicy | None = None) -> FlowGate:
    registry = CollectorRegistry()
    metrics = SimpleNamespace(circuit_state=Gauge("c", "c", ["channel"], registry=registry),
                              rate_limit=Gauge("r", "r", ["channel"], registry=registry),
                              throttled=Counter("t", "t", ["channel"], registry=registry))
    return FlowGate(FlowPolicy(rate_limit, breaker, now=time.monotonic()), channel="c", metrics=metrics,
                    log=structlog.get_logger("test"))


class Provider:
    """Fails the first ``failures`` attempts (with ``error``), then accepts; notes each attempt."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, []

    async def attempt(self, job: Job) -> BaseException | None:
        job.attempts += 1
        self.calls.append(time.monotonic())
        if len(self.calls) <= self.failures:
            return self.error
        return None


class Job:
    """What the gate touches of a job: its attempt count (hashable, as channel jobs are)."""

    def __init__(self) -> None:
        self.attempts = 0


def run_jobs(gate: FlowGate, provider: Provider, count: int, *, current=lambda job: True):
    jobs = [Job() for _ in range(count)]
    waiting: set = set()

    async def main():
        return await asyncio.gather(*(gate.run(job, provider.attempt, waiting=waiting, is_current=current)
                                      for job in jobs))

    return jobs, asyncio.run(main())


def test_an_outage_burns_no_attempts_and_ends_with_a_probe() -> None:
    gate = make_gate(breaker=BreakerPolicy(consecutive_failures=3, probe_interval=0.05))
    provider = Provider(failures=6, error=RetryableError("503"))
    jobs, outcomes = run_jobs(gate, provider, 5)
    # The 2 failures before the circuit opened are those notifications' own: retried as usual.
    assert [type(o).__name__ for o in outcomes[:2]] == ["RetryableError"] * 2
    assert outcomes[2:] == [None] * 3
    assert [job.attempts for job in jobs[2:]] == [1] * 3  # only the successful attempt counts
    # After 3 failures the circuit opened: the rest went out one probe at a time.
    gaps = [b - a for a, b in zip(provider.calls[3:], provider.calls[4:7])]
    assert all(gap >= 0.04 for gap in gaps), gaps


def test_failures_before_the_circuit_opens_are_the_notifications_own() -> None:
    gate = make_gate(breaker=BreakerPolicy(consecutive_failures=10))
    provider = Provider(failures=1, error=RetryableError("503"))
    _, outcomes = run_jobs(gate, provider, 1)
    assert isinstance(outcomes[0], RetryableError)


def test_permanent_errors_pass_straight_through() -> None:
    gate = make_gate(breaker=BreakerPolicy(consecutive_failures=1))
    provider = Provider(failures=3, error=PermanentError("bad address"))
    _, outcomes = run_jobs(gate, provider, 3)
    assert all(isinstance(o, PermanentError) for o in outcomes)


def test_a_throttling_answer_pauses_everyone_for_its_retry_after() -> None:
    gate = make_gate(rate_limit=RateLimit(per_second=1000))
    provider = Provider(failures=1, error=RetryableError("429", retry_after=0.2, throttled=True))
    jobs, outcomes = run_jobs(gate, provider, 3)
    assert outcomes == [None] * 3 and [job.attempts for job in jobs] == [1, 1, 1]
    assert provider.calls[-1] - provider.calls[0] >= 0.19


def test_the_rate_limit_spaces_attempts() -> None:
    # Timed from the bucket's start, not from the first call: a first call that ran late
    # after its grant (a loaded machine) shortened the span by that much.
    started = time.monotonic()
    gate = make_gate(rate_limit=RateLimit(per_second=50, burst=1))
    provider = Provider(failures=0, error=RetryableError())
    run_jobs(gate, provider, 11)
    assert provider.calls[-1] - started >= 10 / 50 - 0.001  # asyncio may wake a timer a clock tick early


def test_a_job_whose_partition_went_while_it_waited_is_not_attempted() -> None:
    gate = make_gate(rate_limit=RateLimit(per_second=20, burst=1))
    provider = Provider(failures=0, error=RetryableError())
    _, outcomes = run_jobs(gate, provider, 3, current=lambda job: False)
    assert outcomes[0] is None and outcomes[1:] == [REVOKED, REVOKED]
    assert len(provider.calls) == 1


class InlineProvider:
    """A sync handler's attempts, as delivery runs them inline: ``errors[i]`` is the i-th attempt's outcome."""

    def __init__(self, errors: dict[int, BaseException]) -> None:
        self.errors, self.calls = errors, 0

    def attempt(self, job: Job) -> BaseException | None:
        job.attempts += 1
        self.calls += 1
        return self.errors.get(self.calls - 1)


NOT_NOW = object()


def run_tab(gate: FlowGate, provider: InlineProvider, count: int) -> list:
    """A batch delivered on the spot, on one tab, as ``AtOnce._deliver_at_once`` does."""
    gate.open_tab(count)
    try:
        return [gate.run_inline(Job(), provider.attempt, not_now=NOT_NOW) for _ in range(count)]
    finally:
        gate.close_tab()


def test_a_batch_on_one_tab_is_held_to_the_tokens_there_and_gives_back_the_rest() -> None:
    gate = make_gate(rate_limit=RateLimit(per_second=0.001, burst=5))
    provider = InlineProvider({})
    assert run_tab(gate, provider, 8) == [None] * 5 + [NOT_NOW] * 3
    assert provider.calls == 5
    assert run_tab(gate, provider, 1) == [NOT_NOW]  # all five spent: the tab took none ahead
    rested = make_gate(rate_limit=RateLimit(per_second=0.001, burst=5))
    rested.open_tab(3)
    rested.close_tab()  # nothing attempted: every token goes back
    assert run_tab(rested, InlineProvider({}), 6) == [None] * 5 + [NOT_NOW]


def test_a_failure_on_a_tab_is_counted_after_the_successes_before_it() -> None:
    # Two failures in a row open this circuit: the successes between them must reach the breaker first.
    gate = make_gate(breaker=BreakerPolicy(consecutive_failures=2, min_attempts=1000))
    error = RetryableError("503")
    outcomes = run_tab(gate, InlineProvider({1: error, 3: error}), 5)
    assert outcomes == [None, error, None, error, None]
    assert gate.try_pass()  # still closed
    opened = run_tab(gate, InlineProvider({0: error, 1: error}), 4)
    # The failure that opened it is the provider's (attempted again later), and the rest waits.
    assert opened == [error, NOT_NOW, NOT_NOW, NOT_NOW]


def test_a_throttling_answer_on_a_tab_holds_the_rest_of_the_batch() -> None:
    gate = make_gate(rate_limit=RateLimit(per_second=1000))
    provider = InlineProvider({1: RetryableError("429", retry_after=30, throttled=True)})
    jobs = [Job() for _ in range(4)]
    gate.open_tab(4)
    outcomes = [gate.run_inline(job, provider.attempt, not_now=NOT_NOW) for job in jobs]
    gate.close_tab()
    assert outcomes == [None, NOT_NOW, NOT_NOW, NOT_NOW] and provider.calls == 2
    assert jobs[1].attempts == 0  # the provider's answer, not the notification's: not counted


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_recipient_limiter_counts_each_notification_once_within_the_window() -> None:
    clock = FakeClock()
    limiter = RecipientLimiter(max_count=2, per=60.0, clock=clock)
    assert limiter.admit("user:u", "n1") and limiter.admit("user:u", "n2")
    assert not limiter.admit("user:u", "n3")
    assert limiter.admit("user:u", "n1")  # a retry of a counted one
    assert limiter.admit("user:v", "n4")
    clock.now += 60.5
    assert limiter.admit("user:u", "n3")


def test_recipient_of_prefers_the_user() -> None:
    assert recipient_of(SimpleNamespace(user_id="u", to="a@x")) == "user:u"
    assert recipient_of(SimpleNamespace(user_id=None, to="a@x")) == "to:a@x"


def test_the_gate_skips_notifications_over_the_recipient_limit() -> None:
    limited = Counter("limited", "l", registry=CollectorRegistry())
    gate = make_gate()
    gate._limiter, gate._limited = RecipientLimiter(max_count=2, per=60.0, clock=time.monotonic), limited
    provider = Provider(failures=0, error=RetryableError())
    jobs = [Job() for _ in range(3)]
    for index, job in enumerate(jobs):
        job.notification = SimpleNamespace(id=f"n{index}", user_id="u", to=None)

    async def main():
        return [await gate.run(job, provider.attempt, waiting=set(), is_current=lambda job: True) for job in jobs]

    outcomes = asyncio.run(main())
    assert outcomes[:2] == [None, None]
    assert isinstance(outcomes[2], SkipNotification) and outcomes[2].reason == "recipient_limit"
    assert len(provider.calls) == 2 and limited._value.get() == 1


def test_the_limiter_says_when_a_recipient_over_the_cap_has_room_again() -> None:
    clock = FakeClock()
    limiter = RecipientLimiter(max_count=2, per=60.0, clock=clock)
    assert limiter.free_in("user:u") == 0.0
    limiter.admit("user:u", "n1")
    clock.now += 10
    limiter.admit("user:u", "n2")
    assert not limiter.admit("user:u", "n3")
    assert limiter.free_in("user:u") == 50.0  # when n1 leaves the window
    clock.now += 50
    assert limiter.free_in("user:u") == 0.0 and limiter.admit("user:u", "n3")


def test_with_action_defer_the_gate_holds_back_what_is_over_the_recipient_limit() -> None:
    limited = Counter("limited_defer", "l", registry=CollectorRegistry())
    gate = make_gate()
    gate._limiter, gate._limited = RecipientLimiter(max_count=1, per=30.0, clock=time.monotonic), limited
    gate._defer_capped = True
    provider = Provider(failures=0, error=RetryableError())
    jobs = [Job() for _ in range(2)]
    for index, job in enumerate(jobs):
        job.notification = SimpleNamespace(id=f"n{index}", user_id="u", to=None)

    async def main():
        return [await gate.run(job, provider.attempt, waiting=set(), is_current=lambda job: True) for job in jobs]

    before = time.time()
    outcomes = asyncio.run(main())
    assert outcomes[0] is None and isinstance(outcomes[1], HeldBack)
    assert outcomes[1].reason == "recipient_limit" and not outcomes[1].attempted
    assert before + 29 < outcomes[1].until <= time.time() + 30
    assert len(provider.calls) == 1 and limited._value.get() == 0, "deferred, not skipped"
