"""The delay between delivery attempts."""

from __future__ import annotations

import random

import pytest

from notifyd.channel.backoff import compute_delay
from notifyd.config.settings import BackoffPolicy

STEADY = BackoffPolicy(initial=1.0, max=60.0, multiplier=2.0, jitter=False)


@pytest.mark.parametrize(("attempt", "expected"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (7, 60.0), (500, 60.0)])
def test_grows_exponentially_up_to_the_maximum(attempt: int, expected: float) -> None:
    assert compute_delay(STEADY, attempt, retry_after=None) == expected


def test_a_huge_multiplier_does_not_overflow() -> None:
    policy = BackoffPolicy(initial=1.0, max=30.0, multiplier=1e300, jitter=False)
    assert compute_delay(policy, 50, retry_after=None) == 30.0


def test_full_jitter_stays_between_zero_and_the_exponential_delay() -> None:
    policy = BackoffPolicy(initial=1.0, max=60.0, multiplier=2.0, jitter=True)
    rng = random.Random(7)
    delays = [compute_delay(policy, 3, retry_after=None, rng=rng) for _ in range(2000)]
    assert all(0.0 <= d <= 4.0 for d in delays)
    assert min(delays) < 0.5 and max(delays) > 3.5  # spread over the whole range, not clustered


def test_jitter_is_reproducible_with_a_seeded_rng() -> None:
    policy = BackoffPolicy(jitter=True)
    first = [compute_delay(policy, 2, retry_after=None, rng=random.Random(1)) for _ in range(3)]
    second = [compute_delay(policy, 2, retry_after=None, rng=random.Random(1)) for _ in range(3)]
    assert first == second


@pytest.mark.parametrize("policy", [STEADY, BackoffPolicy(jitter=True)])
def test_retry_after_overrides_the_policy(policy: BackoffPolicy) -> None:
    assert compute_delay(policy, 1, retry_after=120.0, rng=random.Random(0)) == 120.0
    assert compute_delay(policy, 5, retry_after=0.0) == 0.0


def test_a_negative_retry_after_means_now() -> None:
    assert compute_delay(STEADY, 1, retry_after=-3.0) == 0.0
