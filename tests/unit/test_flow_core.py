"""The flow-control cores, on a clock the test moves: token bucket, share, AIMD, breaker, policy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from notifyd.api import PermanentError, RetryableError, SkipNotification
from notifyd.channel.flow import aimd
from notifyd.channel.flow.breaker import CLOSED, FAILURE, HALF_OPEN, NEUTRAL, OPEN, SUCCESS, CircuitBreaker
from notifyd.channel.flow.bucket import TokenBucket
from notifyd.channel.flow.gate import is_throttling, verdict_of
from notifyd.channel.flow.policy import GO, MAX_BORROW, PROBE, WAIT, FlowPolicy
from notifyd.channel.flow.share import ShareKeeper, share_of
from notifyd.config.settings import BreakerPolicy, RateLimit


def test_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(10.0, 3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.05) is False
    assert bucket.take(0.1) is True


def test_bucket_reservations_queue_one_after_the_other() -> None:
    bucket = TokenBucket(10.0, 1.0, now=0.0)
    delays = [bucket.reserve(0.0) for _ in range(4)]
    assert delays == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert bucket.wait(0.0) == pytest.approx(0.4)


def test_bucket_over_a_long_run_gives_exactly_the_rate() -> None:
    bucket = TokenBucket(14.0, 20.0, now=0.0)
    now, granted = 0.0, 0
    while now < 100.0:
        now += 0.001
        granted += bucket.take(now)
    assert granted == pytest.approx(20 + 14 * 100, abs=2)


def test_bucket_rate_change_keeps_saved_tokens_up_to_the_new_burst() -> None:
    bucket = TokenBucket(10.0, 10.0, now=0.0)
    bucket.set_rate(1.0, 2.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [True, True, False]


def test_bucket_takes_what_it_has_up_to_the_count_and_takes_back_what_was_not_used() -> None:
    bucket = TokenBucket(10.0, 5.0, now=0.0)
    assert bucket.take_up_to(3, 0.0) == 3
    assert bucket.take_up_to(10, 0.0) == 2
    assert bucket.take_up_to(10, 0.0) == 0
    bucket.give_back(4)
    assert bucket.take_up_to(10, 0.0) == 4
    assert bucket.take_up_to(10, 0.25) == 2  # the rate refilled 2.5: whole tokens only
    bucket.give_back(100)
    assert bucket.take_up_to(100, 0.25) == 5  # never beyond the burst


def test_bucket_owing_reserved_tokens_admits_no_batch() -> None:
    bucket = TokenBucket(10.0, 1.0, now=0.0)
    bucket.reserve(0.0), bucket.reserve(0.0)
    assert bucket.take_up_to(5, 0.05) == 0


@pytest.mark.parametrize(("owned", "total", "members", "share"), [
    (2, 6, 3, 1 / 3), (6, 6, 3, 1.0), (1, 4, 2, 0.25), (0, 6, 3, 1 / 3), (3, 0, 2, 0.5),
])
def test_share_follows_the_partitions(owned: int, total: int, members: int, share: float) -> None:
    assert share_of(owned, total, members=members) == pytest.approx(share)


class _Loop:
    def call_soon_threadsafe(self, fn, *args):
        fn(*args)


class _Consumer:
    def __init__(self, partitions: dict[str, int]) -> None:
        self._partitions = partitions

    def list_topics(self, topic: str, _timeout: float) -> SimpleNamespace:
        found = SimpleNamespace(error=None, partitions=dict.fromkeys(range(self._partitions[topic])))
        return SimpleNamespace(topics={topic: found})


def test_share_keeper_counts_increments_in_and_out() -> None:
    shares: list[float] = []
    keeper = ShareKeeper(topics=["a", "b"], members=3, apply=shares.append, loop=_Loop())
    consumer = _Consumer({"a": 4, "b": 2})
    tp = lambda t, p: SimpleNamespace(topic=t, partition=p)
    keeper.assigned(consumer, [tp("a", 0), tp("a", 1), tp("a", 2), tp("b", 0), tp("b", 1), tp("a", 3)])
    keeper.revoked(consumer, [tp("a", 2), tp("a", 3), tp("b", 1), tp("a", 1)])
    keeper.assigned(consumer, [tp("a", 3)])
    assert shares == pytest.approx([1.0, 2 / 6, 3 / 6])


def test_aimd_halves_once_per_burst_of_answers_and_recovers_additively() -> None:
    state = aimd.Aimd()
    assert state.throttled(10.0, 2.0) is True
    assert state.throttled(10.01, 2.0) is False  # the other in-flight answers of the same moment
    assert state.pause_left(10.5) == pytest.approx(1.51)  # the echo's Retry-After counts
    assert state.factor(11.0) == 0.5  # recovery starts when the pause ends
    assert state.factor(12.0 + 2.0) == pytest.approx(0.5 + 2 * aimd.STEP)
    assert state.factor(100.0) == 1.0


def test_aimd_keeps_halving_while_answers_keep_coming_but_not_below_the_floor() -> None:
    state = aimd.Aimd()
    now = 0.0
    for _ in range(20):
        state.throttled(now, None)
        now += aimd.COOLDOWN
    assert state.factor(now) >= aimd.FLOOR


def _policy(**overrides: float) -> BreakerPolicy:
    return BreakerPolicy(**{"consecutive_failures": 5, "failure_ratio": 0.5, "window": 30.0, "min_attempts": 10,
                            "probe_interval": 5.0, **overrides})


def test_breaker_opens_after_failures_in_a_row() -> None:
    breaker = CircuitBreaker(_policy())
    for i in range(4):
        breaker.record(FAILURE, float(i), probe=False)
    assert breaker.state == CLOSED
    assert breaker.record(FAILURE, 4.0, probe=False) == OPEN
    assert breaker.admit(4.0) == pytest.approx(5.0)


def test_breaker_counts_successes_at_once_as_it_counts_them_one_by_one() -> None:
    one_by_one, at_once = CircuitBreaker(_policy()), CircuitBreaker(_policy())
    for breaker in (one_by_one, at_once):
        for i in range(4):
            breaker.record(FAILURE, 1.0, probe=False)
    for _ in range(3):
        one_by_one.record(SUCCESS, 2.0, probe=False)
    at_once.record_successes(3, 2.0)
    for breaker in (one_by_one, at_once):  # the successes ended the run of failures
        assert breaker.record(FAILURE, 2.5, probe=False) is None and breaker.state == CLOSED
    assert vars(one_by_one) == vars(at_once)


def test_breaker_opens_on_the_failure_ratio_over_the_window() -> None:
    breaker = CircuitBreaker(_policy(consecutive_failures=100))
    for i in range(20):
        breaker.record(FAILURE if i % 2 else SUCCESS, i * 0.5, probe=False)
    assert breaker.state == OPEN


def test_breaker_forgets_failures_older_than_the_window() -> None:
    breaker = CircuitBreaker(_policy(consecutive_failures=100, window=10.0))
    for i in range(9):
        breaker.record(FAILURE, 0.0, probe=False)
    for i in range(9):
        breaker.record(SUCCESS, 20.0 + i, probe=False)
    breaker.record(FAILURE, 30.0, probe=False)
    assert breaker.state == CLOSED


def test_breaker_neutral_outcomes_are_no_verdict() -> None:
    breaker = CircuitBreaker(_policy())
    for i in range(50):
        breaker.record(NEUTRAL, float(i), probe=False)
    assert breaker.state == CLOSED


def test_breaker_probes_one_at_a_time_and_closes_on_success() -> None:
    breaker = CircuitBreaker(_policy(consecutive_failures=1))
    breaker.record(FAILURE, 0.0, probe=False)
    assert breaker.admit(1.0) == pytest.approx(4.0)
    assert breaker.admit(5.0) == 0.0 and breaker.state == HALF_OPEN
    assert breaker.admit(5.0) > 0.0  # a second attempt waits while the probe runs
    breaker.record(FAILURE, 5.5, probe=False)  # an attempt from before: ignored
    assert breaker.state == HALF_OPEN
    breaker.record(FAILURE, 6.0, probe=True)
    assert breaker.state == OPEN and breaker.admit(6.0) == pytest.approx(5.0)
    assert breaker.admit(11.0) == 0.0
    breaker.record(SUCCESS, 11.2, probe=True)
    assert breaker.state == CLOSED and breaker.admit(11.2) == 0.0


def test_breaker_probe_with_a_permanent_answer_probes_again_at_once() -> None:
    breaker = CircuitBreaker(_policy(consecutive_failures=1))
    breaker.record(FAILURE, 0.0, probe=False)
    breaker.admit(5.0)
    breaker.record(NEUTRAL, 5.1, probe=True)
    assert breaker.state == OPEN and breaker.admit(5.1) == 0.0


def test_verdicts_of_outcomes() -> None:
    assert verdict_of(None) == SUCCESS
    assert verdict_of(PermanentError("no")) == NEUTRAL
    assert verdict_of(SkipNotification("opted_out")) == NEUTRAL
    assert verdict_of(RetryableError("503")) == FAILURE
    assert verdict_of(ValueError("bug")) == FAILURE
    assert is_throttling(RetryableError("429", throttled=True))
    assert not is_throttling(RetryableError("503", retry_after=3.0))
    assert not is_throttling(None)


def test_policy_without_limits_admits_everything() -> None:
    policy = FlowPolicy(None, _policy(), now=0.0)
    assert all(policy.admit_now(0.0) for _ in range(1000))
    assert policy.rate(0.0) is None


def test_policy_rate_is_the_members_share() -> None:
    policy = FlowPolicy(RateLimit(per_second=30.0, burst=3), None, now=0.0)
    policy.set_share(1 / 3, 0.0)
    assert policy.rate(0.0) == pytest.approx(10.0)
    assert [policy.admit_now(0.0) for _ in range(2)] == [True, False]  # burst 3 * 1/3 = 1
    step = policy.next_step(0.0)
    assert step.kind == GO and step.delay == pytest.approx(0.1)


def test_policy_waits_rather_than_borrow_far_ahead() -> None:
    policy = FlowPolicy(RateLimit(per_second=1.0, burst=1), None, now=0.0)
    assert policy.admit_now(0.0)
    assert policy.next_step(0.0) == (WAIT, MAX_BORROW)  # the next token is a second away
    assert policy.next_step(0.6) == (GO, pytest.approx(0.4))


def test_policy_throttling_pauses_then_slows_the_bucket() -> None:
    policy = FlowPolicy(RateLimit(per_second=100.0, burst=1), None, now=0.0)
    policy.aimd.throttled(0.0, 2.0)
    assert not policy.admit_now(1.0)
    assert policy.next_step(1.0) == (WAIT, pytest.approx(1.0))
    assert policy.rate(2.0) == pytest.approx(50.0)
    assert policy.admit_now(2.0)
    assert policy.next_step(2.0) == (GO, pytest.approx(0.02))


def test_policy_open_circuit_admits_only_the_probe() -> None:
    policy = FlowPolicy(None, _policy(consecutive_failures=1, probe_interval=3.0), now=0.0)
    policy.breaker.record(FAILURE, 0.0, probe=False)
    assert not policy.admit_now(0.5)
    assert policy.next_step(0.5) == (WAIT, pytest.approx(2.5))
    assert policy.next_step(3.0) == (PROBE, 0.0)
    assert policy.next_step(3.0).kind == WAIT
